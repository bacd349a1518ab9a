"""``/v1/auth``: register, login, logout, sessions, password, me, and the admin's invites.

The rules (registration modes, throttles, the bounded hashing pool) are ``imprun.access.accounts``;
routes that hash a password are ``async`` so a request waiting for a hashing slot holds no thread.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from imprun.access.accounts import RegistrationMode
from imprun.api.deps import Accounts, BearerToken, ClientAddress, CurrentUser
from imprun.store.invites import InviteRecord

router = APIRouter(prefix="/v1/auth", tags=["auth"])

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"


class RegisterRequest(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="3 to 64 letters, digits, '_', '.', '-'")
    password: str = Field(min_length=1, max_length=1024)
    invite: str | None = Field(
        default=None, max_length=128, description="An admin's invite code (registration mode `invite`)."
    )


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(BaseModel):
    currentPassword: str = Field(min_length=1, max_length=1024)
    newPassword: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    id: str
    username: str
    admin: bool = False


class LoginResponse(BaseModel):
    token: str
    expiresAt: datetime


class SessionsEnded(BaseModel):
    ended: int = Field(description="How many sessions were ended.")


class InvitePublic(BaseModel):
    id: str
    createdAt: datetime
    expiresAt: datetime
    usedBy: str | None
    usedAt: datetime | None


class IssuedInvitePublic(InvitePublic):
    code: str = Field(description="Shown only now: pass it to POST /v1/auth/register as `invite`.")


class RegistrationPublic(BaseModel):
    mode: RegistrationMode


def _invite_public(invite: InviteRecord) -> InvitePublic:
    return InvitePublic(
        id=invite.invite_id,
        createdAt=invite.created_at,
        expiresAt=invite.expires_at,
        usedBy=invite.used_by,
        usedAt=invite.used_at,
    )


@router.get("/registration")
def registration(accounts: Accounts) -> RegistrationPublic:
    return RegistrationPublic(mode=accounts.mode)


@router.post("/register", status_code=201)
async def register(body: RegisterRequest, accounts: Accounts, client: ClientAddress) -> UserPublic:
    user = await accounts.register(body.username, body.password, invite=body.invite, client=client)
    return UserPublic(id=user.id, username=user.username, admin=user.admin)


@router.post("/login")
async def login(body: LoginRequest, accounts: Accounts, client: ClientAddress) -> LoginResponse:
    signed_in = await accounts.login(body.username, body.password, client=client)
    return LoginResponse(token=signed_in.token, expiresAt=signed_in.session.expires_at)


@router.post("/logout", status_code=204, response_model=None)
def logout(accounts: Accounts, token: BearerToken) -> Response:
    accounts.logout(token)
    return Response(status_code=204)


@router.delete("/sessions")
def end_all_sessions(user: CurrentUser, accounts: Accounts) -> SessionsEnded:
    """Ends every session of the caller, this one included."""
    return SessionsEnded(ended=accounts.logout_everywhere(user))


@router.post("/password")
async def change_password(
    body: PasswordChange, user: CurrentUser, token: BearerToken, accounts: Accounts, client: ClientAddress
) -> SessionsEnded:
    """Sets a new password; every other session of the caller ends, this one stays."""
    ended = await accounts.change_password(
        user, body.currentPassword, body.newPassword, token=token, client=client
    )
    return SessionsEnded(ended=ended)


@router.get("/me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, admin=user.admin)


@router.post("/invites", status_code=201)
def create_invite(user: CurrentUser, accounts: Accounts) -> IssuedInvitePublic:
    issued = accounts.create_invite(user)
    return IssuedInvitePublic(**_invite_public(issued.invite).model_dump(), code=issued.code)


@router.get("/invites")
def list_invites(user: CurrentUser, accounts: Accounts) -> list[InvitePublic]:
    return [_invite_public(invite) for invite in accounts.list_invites(user)]


@router.delete("/invites/{invite_id}", status_code=204, response_model=None)
def delete_invite(invite_id: str, user: CurrentUser, accounts: Accounts) -> Response:
    accounts.delete_invite(user, invite_id)
    return Response(status_code=204)
