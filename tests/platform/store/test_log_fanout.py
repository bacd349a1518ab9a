"""Log followers against the real redis-server: many followers of several streams share one
connection, each gets exactly the entries after its own position, and a stalled one is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from redis import asyncio as aioredis

from imprun.errors import Unavailable
from imprun.store.function_logs import FunctionLogStreams, log_stream_key
from imprun.store.log_fanout import READER_NAME, FanoutTail, LogFanout
from imprun.store.redis import Redis, connect_redis
from tests.fixtures.services import RunningServices


@pytest.fixture
def redis(services: RunningServices) -> Redis:
    assert services.settings.redis_url is not None
    return connect_redis(services.settings.redis_url)


def _write(redis: Redis, gw: str, env: str, messages: list[str]) -> list[str]:
    key = log_stream_key(gw, env)
    return [str(redis.xadd(key, {"function": "f", "message": m})) for m in messages]


def _readers(redis: Redis) -> int:
    return sum(1 for client in redis.client_list() if client.get("name") == READER_NAME)


def test_followers_share_one_connection_and_each_gets_its_own_entries(
    services: RunningServices, redis: Redis
) -> None:
    assert services.settings.redis_url is not None
    streams = FunctionLogStreams(redis, services.settings.redis_url, timeout=2.0, block_s=0.2)
    gw = f"fan-{uuid.uuid4().hex[:8]}"
    dev_ids = _write(redis, gw, "dev", ["d1", "d2"])

    async def scenario() -> tuple[dict[str, list[str]], int]:
        seen: dict[str, list[str]] = {}
        async with contextlib.AsyncExitStack() as stack:
            followers = {
                "dev-all": await stack.enter_async_context(streams.tail(gw, "dev", block_s=0.2)),
                "dev-after-d1": await stack.enter_async_context(
                    streams.tail(gw, "dev", block_s=0.2, after=dev_ids[0])
                ),
                **{
                    f"prod-{i}": await stack.enter_async_context(streams.tail(gw, "prod", block_s=0.2))
                    for i in range(4)
                },
            }
            await asyncio.to_thread(_write, redis, gw, "dev", ["d3"])
            await asyncio.to_thread(_write, redis, gw, "prod", ["p1", "p2"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sum(len(v) for v in seen.values()) < 3 + 2 + 4 * 2:
                for name, tail in followers.items():
                    seen.setdefault(name, []).extend(r.fields["message"] for r in await tail.read())
            readers = await asyncio.to_thread(_readers, redis)
        return seen, readers

    seen, readers = asyncio.run(scenario())
    assert seen["dev-all"] == ["d1", "d2", "d3"]
    assert seen["dev-after-d1"] == ["d2", "d3"]
    assert all(seen[f"prod-{i}"] == ["p1", "p2"] for i in range(4))
    assert readers == 1, "six followers of two streams, one connection"


def test_a_follower_that_stops_reading_is_dropped() -> None:
    async def scenario() -> None:
        stalled = FanoutTail("imprun:logs:gw/dev", "0-0", block_s=0.1, max_backlog=2)
        for i in range(3):  # three batches, never read: the third is one too many
            stalled.deliver([(f"{i + 1}-0", {"message": f"m{i}"})])
        stalled.deliver([("1-0", {"message": "m0"})])  # the reader may hand an entry twice
        assert stalled.overflowed
        assert [e[1]["message"] for e in await stalled.read_raw()] == ["m0"]
        assert [e[1]["message"] for e in await stalled.read_raw()] == ["m1"]
        with pytest.raises(Unavailable, match="fell too far behind"):
            await stalled.read_raw()
        assert await FanoutTail("k", "0-0", block_s=0.05, max_backlog=2).read_raw() == []

    asyncio.run(scenario())


def test_a_follower_arriving_while_the_reader_winds_down_is_served(
    services: RunningServices, redis: Redis
) -> None:
    """The last follower leaves; while the reader closes its connection, a new follower arrives."""
    assert services.settings.redis_url is not None
    url, gw = services.settings.redis_url, f"churn-{uuid.uuid4().hex[:8]}"
    key = log_stream_key(gw, "dev")

    async def scenario() -> list[str]:
        closing, release = asyncio.Event(), asyncio.Event()

        class SlowToClose(aioredis.Redis):
            async def aclose(self, close_connection_pool: bool | None = None) -> None:
                closing.set()
                await release.wait()
                await super().aclose(close_connection_pool)

        fanout = LogFanout(lambda: SlowToClose.from_url(url, decode_responses=True), block_s=0.05)
        async with fanout.tail(key, "0-0") as first:
            await asyncio.to_thread(_write, redis, gw, "dev", ["m0"])
            while not await first.read_raw():
                pass
        await closing.wait()  # the reader saw no follower left and is closing its connection
        after = (await asyncio.to_thread(_write, redis, gw, "dev", ["m1"]))[0]
        async with fanout.tail(key, "0-0") as second:
            release.set()
            seen: list[str] = []
            deadline = time.monotonic() + 5
            while after not in seen and time.monotonic() < deadline:
                seen += [str(entry[0]) for entry in await second.read_raw()]
        return seen

    assert len(asyncio.run(scenario())) == 2, "the new follower got both entries"
