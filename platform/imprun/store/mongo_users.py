"""The runtimes' MongoDB users: one per gateway, and one for the shared tier whose grants follow placement.

In production a gateway's runtime connects with its own user, so a replica of one gateway cannot
read another gateway's database or the system database. The user ``imprun-gw-<gw>`` lives in the
``admin`` database with ``readWrite`` on its gateway database and one shared role,
``imprun-runtime-feed``, that may only read what the node's reload hub reads of the system database:
``runtime_generations`` (read and watched) and the sealed ``environment_variables``.

The shared runtime (the shared tier's replicas) logs in as ``imprun-shared-runtime``: the role
``imprun-shared-runtime`` adds reading the ``environments`` records (whether an environment is placed
on the shared tier) to the feed's, and it holds ``readWrite`` on exactly the gateway databases with an
environment placed there (``grant_shared`` before the placement, ``revoke_shared`` once none is
left). It never reaches a dedicated gateway's database or the platform's own collections.

Passwords are derived, never stored: whoever builds this repository passes ``password_for`` (the
composition root derives it from the master key), and ``url_for`` / ``shared_runtime_url`` give the
URLs the runtimes use. A server without users (the embedded nx-27017 answers ``usersInfo`` without a
``users`` list, or refuses the command) makes every call a no-op, said once in the log, and every URL
the shared one; the embedded path stays as fast as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote_plus, urlsplit, urlunsplit

from pymongo.errors import OperationFailure

from imprun.domain.naming import gateway_db_name
from imprun.store.mongo import Mongo, mongo_errors
from runtime_actors.shared.names import ENVIRONMENTS, GENERATIONS, VARIABLES

__all__ = [
    "SHARED_RUNTIME_SUBJECT",
    "SHARED_RUNTIME_USER",
    "GatewayMongoUsers",
    "feed_privileges",
    "gateway_user_name",
    "shared_runtime_privileges",
    "user_url",
]

log = logging.getLogger(__name__)

FEED_ROLE: Final = "imprun-runtime-feed"
SHARED_RUNTIME_ROLE: Final = "imprun-shared-runtime"
SHARED_RUNTIME_USER: Final = "imprun-shared-runtime"
SHARED_RUNTIME_SUBJECT: Final = "shared runtime"
"""What ``password_for`` derives the shared runtime's password from (never a gateway id: it has a space)."""
_AUTH_DB: Final = "admin"
_USER_NOT_FOUND: Final = 11
_ROLE_EXISTS: Final = 51002
_USER_EXISTS: Final = 51003
_COMMAND_NOT_FOUND: Final = 59


def gateway_user_name(gateway_id: str) -> str:
    """The name of a gateway runtime's login (a MongoDB user, and a Redis ACL user)."""
    return f"imprun-gw-{gateway_id}"


def feed_privileges(sys_db_name: str) -> list[dict[str, Any]]:
    """What every runtime's reload hub reads of the system database (``runtime_actors.hub``)."""
    return [
        {"resource": {"db": sys_db_name, "collection": GENERATIONS}, "actions": ["find", "changeStream"]},
        {"resource": {"db": sys_db_name, "collection": VARIABLES}, "actions": ["find"]},
    ]


def shared_runtime_privileges(sys_db_name: str) -> list[dict[str, Any]]:
    """The feed's, and the environment records a shared replica checks placement in."""
    records = {"resource": {"db": sys_db_name, "collection": ENVIRONMENTS}, "actions": ["find"]}
    return [*feed_privileges(sys_db_name), records]


def user_url(mongo_url: str, user: str, password: str) -> str:
    """``mongo_url`` logging in as ``user`` (authenticated against ``admin``), other options kept."""
    parts = urlsplit(mongo_url)
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("authSource="))
    query = "&".join(filter(None, (query, f"authSource={_AUTH_DB}")))
    credentials = f"{quote_plus(user)}:{quote_plus(password)}"
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path or "/", query, ""))


class GatewayMongoUsers:
    """Creates, drops and hands out the per-gateway MongoDB users of the server at ``mongo_url``."""

    def __init__(
        self, client: Mongo, mongo_url: str, sys_db_name: str, password_for: Callable[[str], str]
    ) -> None:
        self._client = client
        self._url = mongo_url
        self._sys_db_name = sys_db_name
        self._password_for = password_for
        self._supported: bool | None = None
        self._shared_ready = False  # the shared runtime's role and user were made by this process

    def supported(self) -> bool:
        """Whether the server keeps users; asked once (``usersInfo``), then remembered."""
        if self._supported is None:
            with mongo_errors():
                try:
                    reply = self._client[_AUTH_DB].command({"usersInfo": 1})
                    self._supported = isinstance(reply.get("users"), list)
                except OperationFailure as exc:
                    if exc.code != _COMMAND_NOT_FOUND:
                        raise
                    self._supported = False
            if not self._supported:
                log.info("MongoDB at this URL keeps no users: gateways share the platform's connection")
        return self._supported

    def ensure(self, gateway_id: str) -> bool:
        """Create (or reset the roles and password of) the gateway's user; False when unsupported."""
        if not self.supported():
            return False
        self._ensure_feed_role()
        user, password = gateway_user_name(gateway_id), self._password_for(gateway_id)
        roles = [
            {"role": "readWrite", "db": gateway_db_name(gateway_id)},
            {"role": FEED_ROLE, "db": _AUTH_DB},
        ]
        if self._admin({"createUser": user, "pwd": password, "roles": roles}, unless=_USER_EXISTS) is None:
            self._admin({"updateUser": user, "pwd": password, "roles": roles})
        return True

    def drop(self, gateway_id: str) -> None:
        """Drop the gateway's user; a missing user (or a server without users) is fine."""
        if not self.supported():
            return
        self._admin({"dropUser": gateway_user_name(gateway_id)}, unless=_USER_NOT_FOUND)

    def url_for(self, gateway_id: str) -> str:
        """The URL the gateway's runtime connects with: its own user's, or the shared one."""
        if not self.supported():
            return self._url
        return user_url(self._url, gateway_user_name(gateway_id), self._password_for(gateway_id))

    def ensure_shared_runtime(self) -> bool:
        """Create the shared runtime's role and user (or reset their privileges and password, keeping
        the gateway databases already granted); False when unsupported."""
        if not self.supported():
            return False
        self._ensure_role(SHARED_RUNTIME_ROLE, shared_runtime_privileges(self._sys_db_name))
        role = [{"role": SHARED_RUNTIME_ROLE, "db": _AUTH_DB}]
        password = self._password_for(SHARED_RUNTIME_SUBJECT)
        create = {"createUser": SHARED_RUNTIME_USER, "pwd": password, "roles": role}
        if self._admin(create, unless=_USER_EXISTS) is None:
            self._admin({"updateUser": SHARED_RUNTIME_USER, "pwd": password})
            self._admin({"grantRolesToUser": SHARED_RUNTIME_USER, "roles": role})
        self._shared_ready = True
        return True

    def grant_shared(self, gateway_id: str) -> None:
        """Let the shared runtime reach the gateway's database (before one of its environments is
        placed on the shared tier); granting twice is fine."""
        if not self._shared_ready and not self.ensure_shared_runtime():
            return
        roles = [{"role": "readWrite", "db": gateway_db_name(gateway_id)}]
        self._admin({"grantRolesToUser": SHARED_RUNTIME_USER, "roles": roles})

    def revoke_shared(self, gateway_id: str) -> None:
        """Take the gateway's database away from the shared runtime (none of its environments is
        placed there any more); a missing grant or user is fine."""
        if not self.supported():
            return
        roles = [{"role": "readWrite", "db": gateway_db_name(gateway_id)}]
        self._admin({"revokeRolesFromUser": SHARED_RUNTIME_USER, "roles": roles}, unless=_USER_NOT_FOUND)

    def gateway_users(self) -> set[str]:
        """The gateways that have a user here (none on a server without users)."""
        if not self.supported():
            return set()
        reply = self._admin({"usersInfo": 1}) or {}
        prefix = gateway_user_name("")
        names = (str(user.get("user", "")) for user in reply.get("users") or [])
        return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}

    def shared_grants(self) -> set[str] | None:
        """The gateways whose databases the shared runtime may reach; None when it has no user (or
        the server keeps none)."""
        if not self.supported():
            return None
        reply = self._admin({"usersInfo": {"user": SHARED_RUNTIME_USER, "db": _AUTH_DB}}) or {}
        users = reply.get("users") or []
        if not users:
            self._shared_ready = False
            return None
        prefix = gateway_db_name("")
        return {
            str(role["db"]).removeprefix(prefix)
            for role in users[0].get("roles", [])
            if role.get("role") == "readWrite" and str(role.get("db", "")).startswith(prefix)
        }

    def shared_runtime_url(self) -> str:
        """The URL the shared runtime connects with: its own user's, or the shared one."""
        if not self.supported():
            return self._url
        return user_url(self._url, SHARED_RUNTIME_USER, self._password_for(SHARED_RUNTIME_SUBJECT))

    def _ensure_feed_role(self) -> None:
        self._ensure_role(FEED_ROLE, feed_privileges(self._sys_db_name))

    def _ensure_role(self, role: str, privileges: list[dict[str, Any]]) -> None:
        command = {"privileges": privileges, "roles": []}
        if self._admin({"createRole": role, **command}, unless=_ROLE_EXISTS) is None:
            self._admin({"updateRole": role, **command})

    def _admin(self, command: dict[str, Any], *, unless: int | None = None) -> dict[str, Any] | None:
        """Run ``command`` on the ``admin`` database; None when it failed with the code ``unless``
        (the user exists already, was not found, …)."""
        with mongo_errors():
            try:
                reply: dict[str, Any] = self._client[_AUTH_DB].command(command)
            except OperationFailure as exc:
                if unless is None or exc.code != unless:
                    raise
                return None
        return reply
