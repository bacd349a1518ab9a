"""The embedded Redis has a memory bound and never evicts platform keys (sessions, throttles) to
stay under it: full, it refuses writes instead."""

from __future__ import annotations

from imprun.store.redis import connect_redis
from tests.fixtures.services import RunningServices


def test_the_embedded_redis_is_bounded_and_evicts_nothing(services: RunningServices) -> None:
    assert services.settings.redis_url is not None
    redis = connect_redis(services.settings.redis_url)
    assert redis.config_get("maxmemory")["maxmemory"] == str(
        services.settings.embedded_redis_maxmemory_mb * 1024 * 1024
    )
    assert redis.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
