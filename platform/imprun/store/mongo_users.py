"""A MongoDB user per gateway: ``readWrite`` on ``gatewayid_<gw>`` only, created and dropped with it.

In production a gateway's runtime connects with its own user, so a replica of one gateway cannot
read another gateway's database or the system database. The user ``imprun-gw-<gw>`` lives in the
``admin`` database with ``readWrite`` on its gateway database and one shared role,
``imprun-runtime-feed``, that may only read (and watch) ``<sys db>.runtime_generations``, which the
node's reload hub follows. Its password is derived, never stored: whoever builds this repository
passes ``password_for`` (the composition root derives it from the master key), and ``url_for``
gives the URL the gateway's runtime uses. A server without users (the embedded nx-27017 answers
``usersInfo`` without a ``users`` list, or refuses the command) makes every call a no-op, said once
in the log, and ``url_for`` the shared URL; the embedded path stays as fast as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final
from urllib.parse import quote_plus, urlsplit, urlunsplit

from pymongo.errors import OperationFailure

from imprun.domain.naming import gateway_db_name
from imprun.store.mongo import Mongo, mongo_errors
from runtime_actors.shared.names import GENERATIONS

__all__ = ["GatewayMongoUsers", "gateway_user_name", "user_url"]

log = logging.getLogger(__name__)

FEED_ROLE: Final = "imprun-runtime-feed"
_AUTH_DB: Final = "admin"
_USER_NOT_FOUND: Final = 11
_ROLE_EXISTS: Final = 51002
_USER_EXISTS: Final = 51003
_COMMAND_NOT_FOUND: Final = 59


def gateway_user_name(gateway_id: str) -> str:
    return f"imprun-gw-{gateway_id}"


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
        admin = self._client[_AUTH_DB]
        self._ensure_feed_role()
        user, password = gateway_user_name(gateway_id), self._password_for(gateway_id)
        roles = [
            {"role": "readWrite", "db": gateway_db_name(gateway_id)},
            {"role": FEED_ROLE, "db": _AUTH_DB},
        ]
        with mongo_errors():
            try:
                admin.command({"createUser": user, "pwd": password, "roles": roles})
            except OperationFailure as exc:
                if exc.code != _USER_EXISTS:
                    raise
                admin.command({"updateUser": user, "pwd": password, "roles": roles})
        return True

    def drop(self, gateway_id: str) -> None:
        """Drop the gateway's user; a missing user (or a server without users) is fine."""
        if not self.supported():
            return
        with mongo_errors():
            try:
                self._client[_AUTH_DB].command({"dropUser": gateway_user_name(gateway_id)})
            except OperationFailure as exc:
                if exc.code != _USER_NOT_FOUND:
                    raise

    def url_for(self, gateway_id: str) -> str:
        """The URL the gateway's runtime connects with: its own user's, or the shared one."""
        if not self.supported():
            return self._url
        return user_url(self._url, gateway_user_name(gateway_id), self._password_for(gateway_id))

    def _ensure_feed_role(self) -> None:
        privileges = [
            {
                "resource": {"db": self._sys_db_name, "collection": GENERATIONS},
                "actions": ["find", "changeStream"],
            }
        ]
        admin = self._client[_AUTH_DB]
        with mongo_errors():
            try:
                admin.command({"createRole": FEED_ROLE, "privileges": privileges, "roles": []})
            except OperationFailure as exc:
                if exc.code != _ROLE_EXISTS:
                    raise
                admin.command({"updateRole": FEED_ROLE, "privileges": privileges, "roles": []})
