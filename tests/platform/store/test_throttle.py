"""Sign-in throttles against the real redis-server: the doubling back-off and the fixed window."""

from __future__ import annotations

import uuid

from imprun.store.redis import connect_redis
from imprun.store.throttle import FailureBackoff, WindowCounter
from tests.fixtures.services import RunningServices


def test_failures_past_the_free_ones_double_the_lockout_up_to_the_cap(services: RunningServices) -> None:
    assert services.settings.redis_url is not None
    redis = connect_redis(services.settings.redis_url)
    backoff = FailureBackoff(
        redis, prefix=f"test:{uuid.uuid4().hex}:", free=2, memory_seconds=60, max_lockout_seconds=10
    )
    assert [backoff.record_failure("u:c") for _ in range(8)] == [0, 0, 1, 2, 4, 8, 10, 10]
    assert 1 <= backoff.retry_after("u:c") <= 10
    assert backoff.retry_after("u:other") == 0
    backoff.reset("u:c")
    assert backoff.retry_after("u:c") == 0
    assert backoff.record_failure("u:c") == 0, "a success forgets the failures"


def test_a_window_counter_blocks_past_its_limit(services: RunningServices) -> None:
    assert services.settings.redis_url is not None
    counter = WindowCounter(
        connect_redis(services.settings.redis_url),
        prefix=f"test:{uuid.uuid4().hex}:",
        limit=2,
        window_seconds=60,
    )
    assert counter.retry_after("c") == 0
    counter.record("c")
    counter.record("c")
    assert 1 <= counter.retry_after("c") <= 60
