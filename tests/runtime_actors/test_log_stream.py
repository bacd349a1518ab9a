"""The replicas' log writer against the real redis-server: an environment's stream stays under its
log volume quota, keeping the newest entries."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from runtime_actors.replica.log_stream import RedisLogStream
from runtime_actors.shared.messages import LogEntry
from tests.fixtures.services import RunningServices

pytestmark = pytest.mark.services

QUOTA = 128 * 1024


def test_a_stream_over_its_volume_quota_keeps_its_newest_entries_under_it(services: RunningServices) -> None:
    assert services.settings.redis_url is not None
    key = f"quota-{uuid.uuid4().hex[:8]}/dev"
    writer = RedisLogStream(
        services.settings.redis_url, key, max_len=10_000, max_bytes=QUOTA, check_seconds=0
    )

    async def write() -> None:
        writer.start()
        for n in range(400):  # about 800 KiB of messages
            writer.append("chatty", f"r{n}", [LogEntry(float(n), "info", f"{n:04d} " + "x" * 2000)])
            if n % 50 == 49:
                await asyncio.sleep(0)  # let the writer take a batch
        await writer.close()

    asyncio.run(write())
    client = redis.Redis.from_url(services.settings.redis_url)
    try:
        used = client.memory_usage(writer.stream, samples=0)
        assert used is not None and used <= QUOTA
        entries = client.xrange(writer.stream)
        assert 0 < len(entries) < 400
        assert entries[-1][1][b"message"].startswith(b"0399 "), "the newest entry is kept"
        assert writer.dropped == 0
    finally:
        client.delete(writer.stream)
        client.close()
