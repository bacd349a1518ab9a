"""The runtimes' Redis users: one per gateway, and one for the shared tier whose keys follow placement.

Redis holds the platform's sessions and throttles next to the runtimes' log streams and rate-limit
counters. A runtime that logged in as the platform could write ``imprun:session:<digest>`` and so
sign in as anyone; in production (KubeRay) each runtime therefore logs in as a Redis ACL user that
may touch only its own keys:

- ``imprun-gw-<gw>``: the gateway's log streams (``imprun:logs:<gw>/…``) and rate-limit counters
  (``imprun:ratelimit:<gw>/…``), and the reload channel (``imprun:reload``, subscribe only);
- ``imprun-shared-runtime``: the same for every gateway with an environment placed on the shared
  tier (``grant_shared`` adds a gateway's key patterns before the placement, ``revoke_shared`` takes
  them away), plus the ``imprun:shared:loaded`` report.

Both may run only the commands the runtime sends (``RUNTIME_COMMANDS``): no ``KEYS``, ``SCAN``,
``CONFIG``, ``FLUSHALL``, ``CLIENT KILL`` or ``ACL``. Passwords are derived (``password_for``, from
the master key), never stored. After each change the users are written to the server's ACL file
(``ACL SAVE``; the manifests run Redis with ``--aclfile``), so a restarted Redis keeps them; a server
without an ACL file is said once in the log (its users last until it restarts; the control plane's
``lifecycle.logins_sync`` pass makes missing ones again within seconds).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

from redis.exceptions import RedisError, ResponseError

from imprun.errors import Unavailable
from imprun.store.mongo_users import SHARED_RUNTIME_SUBJECT, SHARED_RUNTIME_USER, gateway_user_name
from imprun.store.redis import Redis, redis_errors
from runtime_actors.shared.names import (
    LOG_STREAM_PREFIX,
    RATE_LIMIT_PREFIX,
    RELOAD_CHANNEL,
    SHARED_LOADED_KEY,
)

__all__ = [
    "RUNTIME_COMMANDS",
    "SHARED_RUNTIME_USER",
    "RuntimeRedisUsers",
    "gateway_key_patterns",
    "key_patterns",
    "redis_user_url",
]

log = logging.getLogger(__name__)


RUNTIME_COMMANDS: Final = (
    # connecting (redis-py: AUTH, SELECT for a database other than 0; it ignores a refused CLIENT SETINFO)
    "auth",
    "hello",
    "ping",
    "select",
    # log streams: append in batches, trim to the retention and the size quota
    "xadd",
    "xtrim",
    "xlen",
    "memory|usage",
    # rate limits: two Lua scripts and what they call
    "evalsha",
    "eval",
    "script|load",
    "incr",
    "pttl",
    "pexpire",
    "get",
    "time",
    # the reload hub's wake-ups
    "subscribe",
    "unsubscribe",
)
SHARED_COMMANDS: Final = ("hset", "hdel")
"""The shared runtime's report of what each replica has loaded (``imprun:shared:loaded``)."""

_ACL_FILE_MISSING: Final = "ACL file"
_LOCK_KEY: Final = "imprun:lock:shared-runtime-acl"
_LOCK_TTL_MS: Final = 10_000
_LOCK_WAIT_S: Final = 5.0


def gateway_key_patterns(gateway_id: str) -> list[str]:
    """The keys a gateway's runtime may touch: its log streams and rate-limit counters."""
    return [f"{LOG_STREAM_PREFIX}{gateway_id}/*", f"{RATE_LIMIT_PREFIX}{gateway_id}/*"]


def redis_user_url(redis_url: str, user: str, password: str) -> str:
    """``redis_url`` logging in as ``user``, its host, database and options kept."""
    parts = urlsplit(redis_url)
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, ""))


class RuntimeRedisUsers:
    """Creates, drops and hands out the runtimes' ACL users of the Redis at ``redis_url``."""

    def __init__(self, client: Redis, redis_url: str, password_for: Callable[[str], str]) -> None:
        self._client = client
        self._url = redis_url
        self._password_for = password_for
        self._saves = True
        self._default_checked = False
        self._shared_ready = False  # the shared runtime's user was set up by this process

    def supported(self) -> bool:
        """Redis 6 and later keep ACL users (the manifests run 7.4)."""
        return True

    def ensure(self, gateway_id: str) -> None:
        """Create (or reset to exactly its rules and password) the gateway's user."""
        user, password = gateway_user_name(gateway_id), self._password_for(gateway_id)
        self._set_up(user, password, RUNTIME_COMMANDS, gateway_key_patterns(gateway_id), reset=True)

    def drop(self, gateway_id: str) -> None:
        """Delete the gateway's user; a missing one is fine."""
        user = gateway_user_name(gateway_id)
        self._acl(f"to delete user {user}", lambda: self._client.acl_deluser(user))

    def ensure_shared_runtime(self) -> None:
        """Create the shared runtime's user (or reset its password and commands, keeping the key
        patterns of the gateways already granted)."""
        password = self._password_for(SHARED_RUNTIME_SUBJECT)
        commands = (*RUNTIME_COMMANDS, *SHARED_COMMANDS)
        self._set_up(SHARED_RUNTIME_USER, password, commands, [SHARED_LOADED_KEY], reset=False)
        self._shared_ready = True

    def _set_up(
        self, user: str, password: str, commands: Sequence[str], keys: list[str], *, reset: bool
    ) -> None:
        """``user`` on, with ``password``, only ``commands``, the reload channel and ``keys`` (added to
        the ones it has unless ``reset``)."""
        self._acl(
            f"to set up user {user}",
            lambda: self._client.acl_setuser(
                user,
                enabled=True,
                reset=reset,
                reset_passwords=not reset,
                passwords=[f"+{password}"],
                categories=["-@all"],
                commands=[f"+{c}" for c in commands],
                keys=keys,
                channels=[RELOAD_CHANNEL],
            ),
        )

    def grant_shared(self, gateway_id: str) -> None:
        """Let the shared runtime touch the gateway's keys (before one of its environments is placed
        on the shared tier); granting twice is fine."""
        if not self._shared_ready:
            self.ensure_shared_runtime()
        with self._exclusive():
            self._acl(
                f"to grant gateway {gateway_id}'s keys to {SHARED_RUNTIME_USER}",
                lambda: self._client.acl_setuser(
                    SHARED_RUNTIME_USER, enabled=True, keys=gateway_key_patterns(gateway_id)
                ),
            )

    def revoke_shared(self, gateway_id: str) -> None:
        """Take the gateway's keys away from the shared runtime; a missing user is fine. Read and
        rewrite under a lock that grants take too, so a grant in between is never lost."""
        with self._exclusive():
            patterns = self._shared_patterns()
            if patterns is None:
                return
            kept = [p for p in patterns if p not in gateway_key_patterns(gateway_id)]
            if kept != patterns:
                self._acl(
                    f"to revoke gateway {gateway_id}'s keys from {SHARED_RUNTIME_USER}",
                    lambda: self._client.acl_setuser(
                        SHARED_RUNTIME_USER, enabled=True, reset_keys=True, keys=kept
                    ),
                )

    def shared_grants(self) -> set[str] | None:
        """The gateways whose keys the shared runtime may touch; None when it has no user."""
        patterns = self._shared_patterns()
        if patterns is None:
            self._shared_ready = False
            return None
        return {
            p.removeprefix(LOG_STREAM_PREFIX).removesuffix("/*")
            for p in patterns
            if p.startswith(LOG_STREAM_PREFIX)
        }

    def gateway_users(self) -> set[str]:
        """The gateways that have a user here."""
        names = self._acl("to list its users", self._client.acl_users, save=False)
        prefix = gateway_user_name("")
        return {str(name).removeprefix(prefix) for name in names if str(name).startswith(prefix)}

    def _shared_patterns(self) -> list[str] | None:
        found = self._acl(
            f"to read user {SHARED_RUNTIME_USER}",
            lambda: self._client.acl_getuser(SHARED_RUNTIME_USER),
            save=False,
        )
        return key_patterns(found) if found else None

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Changes of the shared user's keys, one at a time across control planes (a short Redis lock;
        after ``_LOCK_WAIT_S`` without it, go ahead rather than stall the reconcile loop)."""
        token = secrets.token_hex(8)
        deadline = time.monotonic() + _LOCK_WAIT_S
        held = False
        with redis_errors():
            while not (held := bool(self._client.set(_LOCK_KEY, token, nx=True, px=_LOCK_TTL_MS))):
                if time.monotonic() > deadline:
                    log.warning("the shared runtime's Redis user is locked for too long; changing it anyway")
                    break
                time.sleep(0.02)
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(RedisError):
                    if self._client.get(_LOCK_KEY) == token:
                        self._client.delete(_LOCK_KEY)

    def url_for(self, gateway_id: str) -> str:
        return redis_user_url(self._url, gateway_user_name(gateway_id), self._password_for(gateway_id))

    def shared_runtime_url(self) -> str:
        return redis_user_url(self._url, SHARED_RUNTIME_USER, self._password_for(SHARED_RUNTIME_SUBJECT))

    def _warn_if_default_is_open(self) -> None:
        """Runtime users confine nothing while anyone may log in as ``default`` without a password."""
        flags = _flags(self._client.acl_getuser("default") or {})
        if {"on", "nopass"} <= flags:
            log.warning(
                "Redis lets anyone log in as 'default' without a password: the runtimes' own users "
                "confine nothing until it has one (see manifests/README.md)"
            )
        self._default_checked = True

    def _acl(self, what: str, call: Callable[[], Any], *, save: bool = True) -> Any:
        """Run an ACL command, then (``save``) write the users to the server's ACL file so they
        survive a restart (a server without one is said once)."""
        with redis_errors():
            try:
                if not self._default_checked:
                    self._warn_if_default_is_open()
                result = call()
                if save and self._saves:
                    self._save()
            except ResponseError as exc:
                raise Unavailable(f"Redis refused {what}: {exc}") from exc
        return result

    def _save(self) -> None:
        try:
            self._client.acl_save()
        except ResponseError as exc:
            if _ACL_FILE_MISSING not in str(exc):
                raise
            self._saves = False
            log.warning(
                "Redis keeps no ACL file: the runtimes' users are lost when it restarts until "
                "the control plane makes them again (run redis-server with --aclfile)"
            )


def key_patterns(user: object) -> list[str]:
    """The key patterns of an ``ACL GETUSER`` reply, without their ``~`` (Redis 7 gives them as one
    string with it, Redis 6 as a list without; redis-py passes either on)."""
    if isinstance(user, dict):
        keys = user.get("keys")
    else:
        items = list(user) if isinstance(user, list | tuple) else []
        keys = dict(zip(items[::2], items[1::2], strict=False)).get("keys")
    if isinstance(keys, bytes | str):
        keys = keys.split()
    names = [k.decode() if isinstance(k, bytes) else str(k) for k in keys or []]
    return [part.removeprefix("~") for name in names for part in name.split()]


def _flags(user: object) -> set[str]:
    flags = user.get("flags") if isinstance(user, dict) else None
    return {f.decode() if isinstance(f, bytes) else str(f) for f in flags or []}
