"""The runtimes' MongoDB users: skipped (with one log line) on nx-27017, which keeps no users; URLs;
and the roles cover every command a runtime's reload hub sends to the system database."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

from imprun.store.mongo_users import (
    SHARED_RUNTIME_USER,
    GatewayMongoUsers,
    feed_privileges,
    gateway_user_name,
    shared_runtime_privileges,
    user_url,
)
from imprun.store.redis import connect_redis
from imprun.store.runtime_feed import RuntimeFeed
from ray_apps.reload_hub import ReloadHub
from runtime_actors.shared.names import (
    CONSUMERS,
    ENVIRONMENT_SETTINGS,
    ENVIRONMENTS,
    GENERATIONS,
    PART_ACCESS,
    PART_FUNCTIONS,
    PART_VARIABLES,
    PUBLISHED_FUNCTIONS,
    VARIABLES,
    gateway_database_name,
)
from tests.fixtures.services import RunningServices


def test_a_server_without_users_is_detected_and_every_call_is_a_no_op(
    services: RunningServices, caplog: pytest.LogCaptureFixture
) -> None:
    url = services.settings.mongo_url
    assert url is not None
    client: MongoClient[dict[str, object]] = MongoClient(url)
    users = GatewayMongoUsers(client, url, "imprun_sys", lambda gw: f"pw-{gw}")
    with caplog.at_level(logging.INFO, logger="imprun.store.mongo_users"):
        assert users.ensure("orders-api") is False
        assert users.ensure("billing") is False
        assert users.ensure_shared_runtime() is False
        users.grant_shared("orders-api")
        users.revoke_shared("orders-api")
        users.drop("orders-api")
    assert [r.message for r in caplog.records].count(
        "MongoDB at this URL keeps no users: gateways share the platform's connection"
    ) == 1
    assert users.url_for("orders-api") == url  # the runtime keeps the shared connection
    assert users.shared_runtime_url() == url
    client.close()


def test_user_urls_log_in_as_the_gateway_against_admin() -> None:
    assert gateway_user_name("orders-api") == "imprun-gw-orders-api"
    assert (
        user_url("mongodb://m1:27017,m2:27017/?replicaSet=rs0&authSource=other", "imprun-gw-a", "p/w@:")
        == "mongodb://imprun-gw-a:p%2Fw%40%3A@m1:27017,m2:27017/?replicaSet=rs0&authSource=admin"
    )
    assert user_url("mongodb://root:x@mongo", "u", "p") == "mongodb://u:p@mongo/?authSource=admin"


def test_the_shared_runtime_logs_in_as_its_own_user() -> None:
    url = "mongodb://root:x@m1:27017/?replicaSet=rs0"
    users = GatewayMongoUsers(None, url, "imprun_sys", lambda subject: f"pw-{subject}")  # type: ignore[arg-type]
    users._supported = True  # a server that keeps users (nx-27017 keeps none)
    assert users.shared_runtime_url() == (
        f"mongodb://{SHARED_RUNTIME_USER}:pw-shared+runtime@m1:27017/?replicaSet=rs0&authSource=admin"
    )
    assert users.url_for("shared") != users.shared_runtime_url()


class _SystemCommands(monitoring.CommandListener):
    """Every command sent to the databases being watched, from any client of this process."""

    def __init__(self) -> None:
        self.watched: set[str] = set()
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            if event.database_name in self.watched:
                self.commands.append((event.database_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Not recording the test's own writes (the control plane's, not the runtime's)."""
        with self._lock:
            watched, self.watched = self.watched, set()
        try:
            yield
        finally:
            with self._lock:
                self.watched = watched

    @contextmanager
    def watching(self, *databases: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        with self._lock:
            self.watched, self.commands = set(databases), []
        try:
            yield self.commands
        finally:
            with self._lock:
                self.watched = set()


_LISTENER = _SystemCommands()
monitoring.register(_LISTENER)  # clients made from now on report to it; it records only while watching


def _action(command: dict[str, Any]) -> tuple[str, str] | None:
    """The (collection, action) a command needs; None for a cursor's follow-ups (the cursor's own)."""
    name = next(iter(command))
    if name in ("getMore", "killCursors", "endSessions", "hello", "ismaster", "ping"):
        return None
    if name == "aggregate" and any("$changeStream" in stage for stage in command.get("pipeline", [])):
        return str(command[name]), "changeStream"
    return str(command[name]), name


def _allowed(privileges: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(p["resource"]["collection"], action) for p in privileges for action in p["actions"]}


def test_the_runtime_roles_cover_every_read_of_the_system_database(services: RunningServices) -> None:
    """A real reload hub (in-process) serves an environment and follows a change of each part: every
    command it sends to the system database must be one the feed role grants (a server with users
    refuses anything else). Only this test's databases are watched: other clients of the session
    (control planes of other modules) send commands of their own meanwhile."""
    assert services.settings.mongo_url and services.settings.redis_url
    sys_db, gw = f"imprun_sys_roles_{uuid.uuid4().hex[:6]}", f"roles-{uuid.uuid4().hex[:6]}"
    client: MongoClient[dict[str, Any]] = MongoClient(services.settings.mongo_url)
    gateway_db = client[gateway_database_name(gw)]
    gateway_db[PUBLISHED_FUNCTIONS].insert_one(
        {"environment": "dev", "name": "hello", "code": "", "version": 1}
    )
    gateway_db[CONSUMERS].insert_one({"credentialId": "c1", "environment": "dev", "active": True})
    gateway_db[ENVIRONMENT_SETTINGS].insert_one({"_id": "dev", "authType": "none"})
    client[sys_db][VARIABLES].insert_one({"_id": f"{gw}/dev/TOKEN", "gatewayId": gw, "environment": "dev"})
    feed = RuntimeFeed(client[sys_db], connect_redis(services.settings.redis_url))
    feed.changed(gw, "dev", PART_FUNCTIONS)
    hub = ReloadHub(services.settings.mongo_url, None, sys_db)

    async def serve_and_follow_each_part() -> None:
        snapshot = await hub.snapshot(gw, "dev")
        assert snapshot.documents and snapshot.variables
        for part in (PART_FUNCTIONS, PART_ACCESS, PART_VARIABLES):
            with _LISTENER.paused():
                await asyncio.to_thread(feed.changed, gw, "dev", part)
            changed = await hub.wait_changed(gw, "dev", snapshot.generation, timeout_s=10)
            assert changed is not None
            snapshot = changed

    try:
        with _LISTENER.watching(sys_db, gateway_database_name(gw)) as commands:
            asyncio.run(serve_and_follow_each_part())
            hub.close()
        needed = {action for db, command in commands if db == sys_db and (action := _action(command))}
        assert {(GENERATIONS, "find"), (GENERATIONS, "changeStream"), (VARIABLES, "find")} <= needed
        assert needed <= _allowed(feed_privileges(sys_db)), needed - _allowed(feed_privileges(sys_db))
        assert needed <= _allowed(shared_runtime_privileges(sys_db))
    finally:
        hub.close()
        client.drop_database(sys_db)
        client.drop_database(gateway_database_name(gw))
        client.close()


def test_the_shared_runtime_may_also_read_placements_and_nothing_else() -> None:
    extra = _allowed(shared_runtime_privileges("s")) - _allowed(feed_privileges("s"))
    assert extra == {(ENVIRONMENTS, "find")}
    assert {p["resource"]["db"] for p in shared_runtime_privileges("s")} == {"s"}
