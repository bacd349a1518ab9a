"""``runtime_actors.replica.admission.limiter`` against the session's real redis-server (and through ``KeyAuthGate``).

Windows are 1 or 2 s so recovery is observed for real: the tests poll with a deadline, never sleep a
fixed time and hope. Every test uses its own counter names, so they share the one Redis safely.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis

from runtime_actors.replica.admission.key_auth import KeyAuthGate
from runtime_actors.replica.admission.limiter import RATE_LIMIT_PREFIX, RedisRateLimiter
from runtime_actors.replica.http import RequestHead
from runtime_actors.shared.rate_limit import RateLimit, WindowKind
from tests.fixtures.services import RunningServices, free_port

pytestmark = pytest.mark.services


@pytest.fixture
def redis_url(services: RunningServices) -> str:
    assert services.settings.redis_url
    return services.settings.redis_url


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def limiter_on(redis_url: str) -> RedisRateLimiter:
    """A limiter that waits for Redis as long as a loaded CI machine may need: these tests are about
    counting, and a timeout would make it fail open (that is tested on its own, with a dead Redis)."""
    return RedisRateLimiter(redis_url, timeout_s=10.0)


def counter() -> str:
    return f"gw-{uuid.uuid4().hex[:8]}/dev/cred-1"


async def hits(limiter: RedisRateLimiter, name: str, limit: RateLimit, n: int) -> list[bool]:
    return [(await limiter.hit(name, limit)).allowed for _ in range(n)]


async def recovers(limiter: RedisRateLimiter, name: str, limit: RateLimit, deadline_s: float) -> float:
    """Seconds until a hit is allowed again (polling every 50 ms), or fail after ``deadline_s``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if (await limiter.hit(name, limit)).allowed:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} still limited after {deadline_s} s")


@pytest.mark.parametrize("window", list(WindowKind))
def test_n_requests_pass_then_refusals_say_when_to_retry_then_the_window_recovers(
    redis_url: str, window: WindowKind
) -> None:
    async def scenario() -> None:
        limiter, name, limit = limiter_on(redis_url), counter(), RateLimit(3, 1.0, window)

        assert await hits(limiter, name, limit, 3) == [True, True, True]
        refused = await limiter.hit(name, limit)

        assert not refused.allowed and not refused.fail_open
        assert refused.remaining == 0
        assert 1 <= refused.retry_after_s <= 2
        waited = await recovers(limiter, name, limit, deadline_s=5.0)
        print(
            f"{window} window of 1 s recovered after {waited:.2f} s (Retry-After said {refused.retry_after_s})"
        )
        assert waited <= refused.retry_after_s + 0.5
        await limiter.close()

    run(scenario)


@pytest.mark.parametrize("window", list(WindowKind))
def test_concurrent_hits_from_two_replicas_share_one_count_exactly(
    redis_url: str, window: WindowKind
) -> None:
    async def scenario() -> None:
        replicas = [limiter_on(redis_url), limiter_on(redis_url)]
        name, limit = counter(), RateLimit(20, 30.0, window)

        decisions = await asyncio.gather(*(replicas[i % 2].hit(name, limit) for i in range(60)))

        assert sum(d.allowed for d in decisions) == 20
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))
        for replica in replicas:
            await replica.close()

    run(scenario)


def test_counters_are_separate_per_caller_and_per_window_setting(redis_url: str) -> None:
    async def scenario() -> None:
        limiter = limiter_on(redis_url)
        first, second = counter(), counter()
        limit = RateLimit(1, 30.0)

        assert await hits(limiter, first, limit, 2) == [True, False]
        assert await hits(limiter, second, limit, 1) == [True]
        assert await hits(limiter, first, RateLimit(1, 20.0), 1) == [True]  # a changed limit starts afresh
        await limiter.close()

    run(scenario)


def test_counters_expire_in_redis(redis_url: str) -> None:
    name = counter()

    async def scenario() -> None:
        limiter = limiter_on(redis_url)
        await limiter.hit(name, RateLimit(5, 2.0))
        await limiter.hit(name, RateLimit(5, 2.0, WindowKind.SLIDING))
        await limiter.close()

    run(scenario)
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"{RATE_LIMIT_PREFIX}{name}:*")
    assert len(keys) == 2  # fixed: one counter; sliding: this window's (the previous one was never hit)
    assert all(0 < client.pttl(key) <= 4000 for key in keys)
    client.close()


def test_when_redis_is_down_requests_pass_and_redis_is_not_asked_on_every_call() -> None:
    async def scenario() -> None:
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
        limit = RateLimit(1, 1.0)
        started = time.monotonic()

        decisions = [await limiter.hit("gw/dev/c", limit) for _ in range(200)]

        assert all(d.allowed and d.fail_open for d in decisions)
        assert 1 <= limiter.errors < 10  # a failure opens a growing backoff in which Redis is not asked
        assert time.monotonic() - started < 2.0
        await limiter.close()

    run(scenario)


def test_the_gate_answers_429_with_retry_after_from_the_real_counter(redis_url: str) -> None:
    pepper, key = secrets.token_bytes(32), f"imp_dev_{secrets.token_urlsafe(32)}"
    gateway = f"gw-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        gate = KeyAuthGate(gateway, "dev", pepper, limiter_on(redis_url))
        gate.update(
            {
                "consumers": [
                    {
                        "credentialId": "cred-1",
                        "environment": "dev",
                        "lookupHash": hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest(),
                        "active": True,
                        "rateLimit": {"count": 2, "windowSeconds": 2},
                    }
                ],
                "environment": None,
            }
        )
        head = RequestHead("GET", "/hello", "", {"apikey": key})

        assert [await gate.admit(head, "r") for _ in range(2)] == [None, None]
        limited = await gate.admit(head, "r")

        assert limited is not None and limited.status == 429
        assert json.loads(limited.body)["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        deadline = time.monotonic() + 5
        while await gate.admit(head, "r") is not None:
            assert time.monotonic() < deadline, "never recovered"
            await asyncio.sleep(0.05)
        await gate.close()

    run(scenario)
    client = redis.Redis.from_url(redis_url)
    assert client.keys(f"{RATE_LIMIT_PREFIX}{gateway}/dev/cred-1:*")
    assert not any(key.encode() in k for k in client.keys("*"))
    client.close()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (None, None),
        ({"count": 10, "windowSeconds": 60}, RateLimit(10, 60.0)),
        ({"count": 5, "windowSeconds": 0.5, "window": "sliding"}, RateLimit(5, 0.5, WindowKind.SLIDING)),
    ],
)
def test_rate_limit_documents_parse(document: dict[str, Any] | None, expected: RateLimit | None) -> None:
    assert RateLimit.from_document(document) == expected


@pytest.mark.parametrize(
    "document",
    [
        {"count": 0, "windowSeconds": 60},
        {"count": 10, "windowSeconds": 0},
        {"count": "10", "windowSeconds": 60},
        {"count": True, "windowSeconds": 60},
        {"count": 10},
        {"count": 10, "windowSeconds": 60, "window": "leaky"},
        {"count": 10, "windowSeconds": 10**9},
        [10, 60],
    ],
)
def test_malformed_rate_limit_documents_are_refused(document: Any) -> None:
    with pytest.raises(ValueError):
        RateLimit.from_document(document)
