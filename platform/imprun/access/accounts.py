"""``AccountService``: registration, sign-in, sessions, password changes and invites (``/v1/auth``).

Registration follows the platform's mode (``IMPRUN_REGISTRATION``): ``open`` to anyone, ``invite``
to holders of an unused invite an admin created, ``closed`` to no one — except that the first user
of an empty platform may always register, and becomes its admin (claimed once, atomically).
Attempts are counted per client address. A login is throttled per (user, client): failures past a
few free ones block that pair with a doubling back-off, so a stranger guessing a user's password
from one address cannot lock the user out of another; a second, looser counter per client address
caps how many accounts one address can try. Argon2id work runs in bounded ``PasswordHashing``
pools, one for registrations and one for sign-ins (logins, password changes), so a burst of
registrations never makes a login wait; the store calls run in threads, so the event loop never
waits on MongoDB, Redis or a hash.
A password change ends the user's other sessions; ``logout_everywhere`` ends all of them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, ParamSpec, TypeVar

import anyio.to_thread

from imprun.errors import Forbidden, NotFound, RateLimited, Unauthorized
from imprun.security.passwords import PasswordHashing, check_password_policy
from imprun.security.tokens import new_session_token
from imprun.store.invites import InviteRecord, InviteRepository
from imprun.store.sessions import Session, SessionStore
from imprun.store.throttle import FailureBackoff, WindowCounter
from imprun.store.users import UserRecord, UserRepository

__all__ = ["AccountService", "IssuedInvite", "RegistrationMode", "SignIn"]

RegistrationMode = Literal["open", "invite", "closed"]
INVITE_PREFIX = "impi_"

P = ParamSpec("P")
T = TypeVar("T")


async def _blocking(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await anyio.to_thread.run_sync(lambda: work(*args, **kwargs))


@dataclass(frozen=True)
class SignIn:
    """A new session: the token is shown to its holder once and stored only as a digest."""

    token: str = field(repr=False)
    session: Session


@dataclass(frozen=True)
class IssuedInvite:
    invite: InviteRecord
    code: str = field(repr=False)


@dataclass(frozen=True)
class SignInLimits:
    """What the throttles allow; see the module docstring."""

    registrations: WindowCounter
    failures: FailureBackoff
    client_failures: WindowCounter


class AccountService:
    def __init__(
        self,
        *,
        users: UserRepository,
        invites: InviteRepository,
        sessions: SessionStore,
        hashing: PasswordHashing,
        registration_hashing: PasswordHashing,
        limits: SignInLimits,
        mode: RegistrationMode,
        invite_ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._users = users
        self._invites = invites
        self._sessions = sessions
        self.hashing = hashing
        self.registration_hashing = registration_hashing
        self._limits = limits
        self.mode: RegistrationMode = mode
        self._invite_ttl = invite_ttl
        self._clock = clock

    # ---- registration --------------------------------------------------------------------------

    async def register(self, username: str, password: str, *, invite: str | None, client: str) -> UserRecord:
        check_password_policy(password, username=username)
        await _blocking(self._admit_registration, invite, client)
        password_hash = await self.registration_hashing.hash(password)
        return await _blocking(self._create_user, username, password_hash, invite)

    def _admit_registration(self, invite: str | None, client: str) -> None:
        registrations = self._limits.registrations
        wait = registrations.retry_after(client)
        if wait:
            raise RateLimited(
                f"too many registrations from this address; try again in {wait} s", retry_after=wait
            )
        registrations.record(client)
        if self.mode == "open" or not self._users.any_exist():
            return
        if self.mode == "closed":
            raise Forbidden("registration is closed on this platform; ask an administrator for an account")
        if not invite:
            raise Forbidden(
                "registration needs an invite on this platform: ask an administrator for one "
                "(POST /v1/auth/invites) and send it as `invite`"
            )

    def _create_user(self, username: str, password_hash: str, invite: str | None) -> UserRecord:
        user_id = self._users.new_id()
        admin = not self._users.any_exist() and self._users.claim_first_admin(user_id)
        used: InviteRecord | None = None
        if not admin and self.mode == "closed":
            raise Forbidden("registration is closed on this platform; ask an administrator for an account")
        if not admin and self.mode == "invite":
            used = self._invites.consume(invite or "", user_id=user_id, at=self._clock())
            if used is None:
                raise Forbidden(
                    "the invite is unknown, already used or expired; ask an administrator for a new one"
                )
        try:
            return self._users.create(username, password_hash, user_id=user_id, admin=admin)
        except BaseException:
            if admin:
                self._users.release_first_admin(user_id)
            if used is not None:
                self._invites.release(used.invite_id, user_id)
            raise

    # ---- sign-in and sessions ------------------------------------------------------------------

    async def login(self, username: str, password: str, *, client: str) -> SignIn:
        user = await _blocking(self._admit_login, username, client)
        matched = await self.hashing.verify(user.password_hash if user else None, password)
        if user is None or not matched:
            await _blocking(self._record_failure, username, client)
            raise Unauthorized("wrong username or password")
        if self.hashing.needs_rehash(user.password_hash):
            new_hash = await self.hashing.hash(password)
            await _blocking(self._users.set_password_hash, user.id, new_hash)
        return await _blocking(self._start_session, username, client, user.id)

    def _admit_login(self, username: str, client: str) -> UserRecord | None:
        wait = max(
            self._limits.failures.retry_after(_pair(username, client)),
            self._limits.client_failures.retry_after(client),
        )
        if wait:
            raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after=wait)
        return self._users.by_username(username)

    def _record_failure(self, username: str, client: str) -> None:
        self._limits.failures.record_failure(_pair(username, client))
        self._limits.client_failures.record(client)

    def _start_session(self, username: str, client: str, user_id: str) -> SignIn:
        self._limits.failures.reset(_pair(username, client))
        token = new_session_token()
        return SignIn(token, self._sessions.create(token, user_id))

    async def change_password(
        self, user: UserRecord, current: str, new: str, *, token: str, client: str
    ) -> int:
        """Set ``new`` after checking ``current``; ends every other session. Returns how many ended."""
        await _blocking(self._admit_login, user.username, client)
        if not await self.hashing.verify(user.password_hash, current):
            await _blocking(self._record_failure, user.username, client)
            raise Unauthorized("the current password is wrong")
        check_password_policy(new, username=user.username)
        new_hash = await self.hashing.hash(new)
        await _blocking(self._users.set_password_hash, user.id, new_hash)
        return await _blocking(self._sessions.revoke_all, user.id, keep=token)

    def logout(self, token: str) -> None:
        self._sessions.revoke(token)

    def logout_everywhere(self, user: UserRecord) -> int:
        return self._sessions.revoke_all(user.id)

    def session_user(self, token: str) -> UserRecord | None:
        user_id = self._sessions.resolve(token)
        return self._users.by_id(user_id) if user_id else None

    # ---- invites -------------------------------------------------------------------------------

    def create_invite(self, admin: UserRecord) -> IssuedInvite:
        _require_admin(admin, "create invites")
        code = INVITE_PREFIX + secrets.token_urlsafe(24)
        now = self._clock()
        invite = self._invites.insert(code, created_by=admin.id, at=now, expires_at=now + self._invite_ttl)
        return IssuedInvite(invite, code)

    def list_invites(self, admin: UserRecord) -> list[InviteRecord]:
        _require_admin(admin, "list invites")
        return self._invites.all()

    def delete_invite(self, admin: UserRecord, invite_id: str) -> None:
        _require_admin(admin, "delete invites")
        if not self._invites.delete(invite_id):
            raise NotFound(f"no invite {invite_id!r}; list them with GET /v1/auth/invites")


def _pair(username: str, client: str) -> str:
    """The back-off subject of one user seen from one client (no raw username in a Redis key)."""
    return hashlib.sha256(username.encode()).hexdigest()[:32] + ":" + client


def _require_admin(user: UserRecord, action: str) -> None:
    if not user.admin:
        raise Forbidden(f"only an administrator may {action}")
