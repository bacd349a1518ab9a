"""The runtimes' Redis ACL users, on a real ``redis-server`` with an ACL file: the runtime's own code
works logged in as them, and nothing else does (another gateway's keys, the platform's sessions,
administration); users follow placement and survive a restart of Redis."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from imprun.store.mongo_users import GatewayMongoUsers
from imprun.store.redis import connect_redis
from imprun.store.redis_users import SHARED_RUNTIME_USER, RuntimeRedisUsers, key_patterns, redis_user_url
from imprun.store.runtime_logins import RuntimeLogins
from runtime_actors.hub.wakeups import ReloadChannelListener
from runtime_actors.replica.admission.limiter import RedisRateLimiter
from runtime_actors.replica.log_stream import RedisLogStream
from runtime_actors.shared.messages import LogEntry
from runtime_actors.shared.names import RELOAD_CHANNEL, SHARED_LOADED_KEY
from runtime_actors.shared.rate_limit import RateLimit, WindowKind
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices, free_port

pytestmark = pytest.mark.services

ADMIN = "admin-password"


@dataclass
class AclRedis:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://default:{ADMIN}@127.0.0.1:{self.port}/0"

    def start(self, *, acl_file: bool = True) -> None:
        args = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
        ]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        if acl_file:
            args += ["--aclfile", str(self.directory / "users.acl")]
        else:
            args += ["--requirepass", ADMIN]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert eventually(self._answers, timeout=20), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def _answers(self) -> bool:
        try:
            return bool(connect_redis(self.url, timeout=0.5).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    (tmp_path / "users.acl").write_text(f"user default on >{ADMIN} ~* &* +@all\n")
    server = AclRedis(tmp_path, free_port())
    server.start()
    yield server
    server.stop()


def users_of(server: AclRedis) -> RuntimeRedisUsers:
    return RuntimeRedisUsers(connect_redis(server.url), server.url, lambda subject: f"pw-{subject}")


def as_user(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2.0, decode_responses=True)


async def write_log_and_count(url: str, key: str) -> tuple[int, int]:
    """The runtime's own log stream (its size check included) and rate limiter, logged in as ``url``:
    (entries dropped or size checks failed, limiter errors)."""
    logs = RedisLogStream(url, key, max_bytes=1, check_seconds=0)  # over quota at once: trims
    failed_checks = _Warnings("runtime_actors.replica.log_stream")
    logs.start()
    logs.append("hello", "req-1", [LogEntry(0.0, "info", "hi")])
    await logs.close()
    failed_checks.stop()
    limiter = RedisRateLimiter(url)
    for window in WindowKind:
        for _ in range(3):
            limit = RateLimit(count=2, window_seconds=60, window=window)
            decision = await limiter.hit(f"{key}/ip:127.0.0.1", limit)
        assert decision.allowed is False  # the third of two: counted, so the counters are reachable
    await limiter.close()
    return logs.dropped + len(failed_checks.messages), limiter.errors


class _Warnings(logging.Handler):
    """The warnings one logger gives while attached."""

    def __init__(self, logger: str) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger(logger)
        self._logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def stop(self) -> None:
        self._logger.removeHandler(self)


def test_a_gateways_runtime_reaches_its_own_keys_and_nothing_else(acl_redis: AclRedis) -> None:
    users = users_of(acl_redis)
    users.ensure("orders")
    users.ensure("billing")
    url = users.url_for("orders")
    assert url == f"redis://imprun-gw-orders:pw-orders@127.0.0.1:{acl_redis.port}/0"
    assert asyncio.run(write_log_and_count(url, "orders/dev")) == (0, 0)
    admin = connect_redis(acl_redis.url)
    assert admin.exists("imprun:logs:orders/dev")  # written, then trimmed to its quota

    woken: list[str] = []
    listener = ReloadChannelListener(lambda: redis.Redis.from_url(url), woken.append)
    listener.start()
    try:
        assert eventually(listener.connected.is_set, timeout=10)
        assert eventually(lambda: admin.publish(RELOAD_CHANNEL, "orders/dev") > 0 and "orders/dev" in woken)
    finally:
        listener.close()

    runtime = as_user(url)
    forbidden = [
        lambda: runtime.set("imprun:session:0123", "admin-user-id"),  # a forged session
        lambda: runtime.get("imprun:session:0123"),
        lambda: runtime.xadd("imprun:logs:billing/dev", {"message": "x"}),  # another gateway's logs
        lambda: runtime.xrange("imprun:logs:orders/dev"),  # reading logs back is the platform's
        lambda: runtime.incr("imprun:ratelimit:billing/dev/ip:1:fixed:60000"),
        lambda: runtime.keys("*"),
        lambda: runtime.flushall(),
        lambda: runtime.config_get("*"),
        lambda: runtime.acl_list(),
        lambda: runtime.client_kill_filter(skipme=True),
        lambda: runtime.publish(RELOAD_CHANNEL, "orders/dev"),
        lambda: runtime.eval("return redis.call('GET', KEYS[1])", 1, "imprun:session:0123"),
    ]
    for attempt in forbidden:
        with pytest.raises((NoPermissionError, ResponseError), match=r"(?i)permission"):
            attempt()

    users.drop("orders")
    users.drop("orders")
    with pytest.raises(AuthenticationError):
        as_user(url).ping()
    assert as_user(users.url_for("billing")).ping()


def test_the_shared_runtime_reaches_exactly_the_gateways_placed_on_it(acl_redis: AclRedis) -> None:
    users = users_of(acl_redis)
    users.ensure_shared_runtime()
    url = users.shared_runtime_url()
    assert url.startswith(f"redis://{SHARED_RUNTIME_USER}:")
    shared = as_user(url)
    assert shared.hset(SHARED_LOADED_KEY, "replica-1", "{}") == 1
    with pytest.raises(NoPermissionError):
        shared.xadd("imprun:logs:orders/dev", {"message": "x"})

    users.grant_shared("orders")
    users.grant_shared("orders")
    users.grant_shared("billing")
    assert asyncio.run(write_log_and_count(url, "orders/dev")) == (0, 0)
    assert asyncio.run(write_log_and_count(url, "billing/prod")) == (0, 0)

    users.revoke_shared("orders")
    with pytest.raises(NoPermissionError):
        shared.xadd("imprun:logs:orders/dev", {"message": "x"})
    assert shared.xadd("imprun:logs:billing/dev", {"message": "x"})
    users.ensure_shared_runtime()  # a control plane starting again keeps the grants
    assert shared.xadd("imprun:logs:billing/dev", {"message": "x"})
    assert shared.hdel(SHARED_LOADED_KEY, "replica-1") == 1
    with pytest.raises(NoPermissionError):
        shared.get("imprun:session:0123")


def test_users_survive_a_restart_of_redis(acl_redis: AclRedis) -> None:
    users = users_of(acl_redis)
    users.ensure("orders")
    users.grant_shared("billing")
    acl_redis.stop()
    acl_redis.start()
    assert as_user(users.url_for("orders")).xadd("imprun:logs:orders/dev", {"message": "x"})
    assert as_user(users.shared_runtime_url()).xadd("imprun:logs:billing/dev", {"message": "x"})


def test_a_redis_without_an_acl_file_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = AclRedis(tmp_path, free_port())
    server.start(acl_file=False)
    try:
        users = users_of(server)
        with caplog.at_level(logging.WARNING, logger="imprun.store.redis_users"):
            users.ensure("orders")
            users.grant_shared("orders")
        assert [r.message for r in caplog.records].count(
            "Redis keeps no ACL file: the runtimes' users are lost when it restarts until "
            "the control plane makes them again (run redis-server with --aclfile)"
        ) == 1
        assert as_user(users.url_for("orders")).xadd("imprun:logs:orders/dev", {"message": "x"})
        assert not any("lets anyone" in r.message for r in caplog.records)  # default has a password
    finally:
        server.stop()


def test_user_urls_keep_the_host_database_and_options() -> None:
    assert (
        redis_user_url("redis://:old@redis.imprun-system.svc:6379/2?ssl_cert_reqs=none", "u", "p/w")
        == "redis://u:p%2Fw@redis.imprun-system.svc:6379/2?ssl_cert_reqs=none"
    )


def test_logins_sync_the_shared_runtime_to_the_gateways_wanted(
    acl_redis: AclRedis, services: RunningServices
) -> None:
    """``RuntimeLogins.sync_shared`` on a real Redis (nx-27017 keeps no users: its side is skipped)."""
    assert services.settings.mongo_url
    mongo: MongoClient[dict[str, Any]] = MongoClient(services.settings.mongo_url)
    redis_users = users_of(acl_redis)
    logins = RuntimeLogins(
        GatewayMongoUsers(mongo, services.settings.mongo_url, "s", lambda s: "p"), redis_users
    )
    assert redis_users.shared_grants() is None  # no user yet: the first sync makes it
    logins.sync_shared(lambda: {"orders", "billing"})
    assert redis_users.shared_grants() == {"orders", "billing"}
    shared = as_user(redis_users.shared_runtime_url())
    assert shared.xadd("imprun:logs:orders/dev", {"message": "x"})
    logins.sync_shared(lambda: {"billing", "search"})
    assert redis_users.shared_grants() == {"billing", "search"}
    with pytest.raises(NoPermissionError):
        shared.xadd("imprun:logs:orders/dev", {"message": "x"})
    logins.drop("billing")  # a deleted gateway: its own user and the shared grant go
    assert redis_users.shared_grants() == {"search"}
    assert logins.gateway_redis_url("search") == redis_users.url_for("search")
    mongo.close()


def test_a_redis_open_to_anyone_as_default_is_warned_about(
    services: RunningServices, caplog: pytest.LogCaptureFixture
) -> None:
    """The session's embedded Redis lets ``default`` in without a password, as ``imprun up`` runs it."""
    assert services.settings.redis_url
    users = RuntimeRedisUsers(connect_redis(services.settings.redis_url), services.settings.redis_url, str)
    with caplog.at_level(logging.WARNING, logger="imprun.store.redis_users"):
        users.ensure("warned-gw")
        users.drop("warned-gw")
    assert sum("lets anyone log in as 'default'" in r.message for r in caplog.records) == 1


def test_key_patterns_are_read_from_redis_6_and_7_replies() -> None:
    redis7 = {"flags": ["on"], "keys": "~imprun:shared:loaded ~imprun:logs:a/* ~imprun:ratelimit:a/*"}
    redis6 = {"flags": ["on"], "keys": [b"imprun:shared:loaded", b"imprun:logs:a/*", b"imprun:ratelimit:a/*"]}
    expected = ["imprun:shared:loaded", "imprun:logs:a/*", "imprun:ratelimit:a/*"]
    assert key_patterns(redis7) == key_patterns(redis6) == expected
    assert key_patterns({"keys": ""}) == []


def test_missing_gateway_users_are_made_again(acl_redis: AclRedis, services: RunningServices) -> None:
    """A release without runtime users, or a Redis restarted without its ACL file."""
    assert services.settings.mongo_url
    mongo: MongoClient[dict[str, Any]] = MongoClient(services.settings.mongo_url)
    redis_users = users_of(acl_redis)
    logins = RuntimeLogins(
        GatewayMongoUsers(mongo, services.settings.mongo_url, "s", lambda s: "p"), redis_users
    )
    redis_users.ensure("orders")
    assert redis_users.gateway_users() == {"orders"}
    logins.ensure_missing(["orders", "billing"])
    assert redis_users.gateway_users() == {"orders", "billing"}
    assert as_user(redis_users.url_for("billing")).xadd("imprun:logs:billing/dev", {"message": "x"})
    mongo.close()
