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
without an ACL file is said once in the log (its users last until it restarts, and the control
plane makes them again when it starts and on each placement).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

from redis.exceptions import RedisError, ResponseError

from imprun.errors import Unavailable
from imprun.store.mongo_users import SHARED_RUNTIME_SUBJECT, SHARED_RUNTIME_USER, gateway_user_name
from imprun.store.redis import Redis
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
        self.ensure_shared_runtime()
        self._acl(
            f"to grant gateway {gateway_id}'s keys to {SHARED_RUNTIME_USER}",
            lambda: self._client.acl_setuser(
                SHARED_RUNTIME_USER, enabled=True, keys=gateway_key_patterns(gateway_id)
            ),
        )

    def revoke_shared(self, gateway_id: str) -> None:
        """Take the gateway's keys away from the shared runtime; a missing user is fine."""
        found = self._acl(
            f"to read user {SHARED_RUNTIME_USER}",
            lambda: self._client.acl_getuser(SHARED_RUNTIME_USER),
            save=False,
        )
        if not found:
            return
        patterns = [p.removeprefix("~") for p in _field(found, "keys").split()]
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
        found = self._acl(
            f"to read user {SHARED_RUNTIME_USER}",
            lambda: self._client.acl_getuser(SHARED_RUNTIME_USER),
            save=False,
        )
        if not found:
            return None
        prefix = f"~{LOG_STREAM_PREFIX}"
        return {
            p.removeprefix(prefix).removesuffix("/*")
            for p in _field(found, "keys").split()
            if p.startswith(prefix)
        }

    def url_for(self, gateway_id: str) -> str:
        return redis_user_url(self._url, gateway_user_name(gateway_id), self._password_for(gateway_id))

    def shared_runtime_url(self) -> str:
        return redis_user_url(self._url, SHARED_RUNTIME_USER, self._password_for(SHARED_RUNTIME_SUBJECT))

    def _warn_if_default_is_open(self) -> None:
        """Runtime users confine nothing while anyone may log in as ``default`` without a password."""
        default = self._client.acl_getuser("default") or {}
        flags = _field(default, "flags").replace("[", " ").replace("]", " ").replace(",", " ").split()
        if "on" in flags and "nopass" in flags:
            log.warning(
                "Redis lets anyone log in as 'default' without a password: the runtimes' own users "
                "confine nothing until it has one (see manifests/README.md)"
            )
        self._default_checked = True

    def _acl(self, what: str, call: Callable[[], Any], *, save: bool = True) -> Any:
        """Run an ACL command, then (``save``) write the users to the server's ACL file so they
        survive a restart (a server without one is said once)."""
        try:
            if not self._default_checked:
                self._warn_if_default_is_open()
            result = call()
            if save and self._saves:
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
        except ResponseError as exc:
            raise Unavailable(f"Redis refused {what}: {exc}") from exc
        except RedisError as exc:
            raise Unavailable("Redis is unreachable; retry shortly (see /readyz)") from exc
        return result


def _field(reply: object, name: str) -> str:
    """A field of ``ACL GETUSER``'s reply (a flat list of names and values, or a dict)."""
    if isinstance(reply, dict):
        value = reply.get(name)
    else:
        items = list(reply) if isinstance(reply, list | tuple) else []
        value = dict(zip(items[::2], items[1::2], strict=False)).get(name)
    if isinstance(value, list | tuple):  # Redis 6 lists the patterns; 7 gives them as one string
        value = " ".join(v.decode() if isinstance(v, bytes) else str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode()
    return str(value or "")
