"""Where invocation logs go: the environment's Redis stream ``imprun:logs:<gw>/<env>``, or nowhere.

``RedisLogStream.append`` only queues (it runs on the request path); one background task writes the
batches. The control plane reads the stream back (``imprun.store.function_logs``). A stream keeps at
most ``max_len`` entries and, approximately, ``max_bytes`` of Redis memory (the log volume quota):
after writing, at most every ``check_seconds``, the writer asks Redis how much memory the stream
uses and trims the oldest entries to bring it back under the quota, so one tenant's chatty functions
cannot fill the Redis that sessions and rate limits share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from runtime_actors.shared.messages import LogEntry
from runtime_actors.shared.names import LOG_STREAM_PREFIX

__all__ = ["DiscardLogs", "RedisLogStream", "iso_time"]

logger = logging.getLogger(__name__)


class DiscardLogs:
    """The sink when no Redis is configured."""

    def start(self) -> None:
        pass

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        pass

    async def close(self) -> None:
        pass


class RedisLogStream:
    """Appends ``{time, function, requestId, level, message}`` entries to ``imprun:logs:<gw>/<env>``.

    ``append`` only queues; one task writes batches with ``XADD … MAXLEN ~ max_len`` in a pipeline.
    When Redis is down or the queue is full, entries are dropped (and counted): logs never slow calls.
    """

    def __init__(
        self,
        redis_url: str,
        key: str,
        *,
        max_len: int = 10_000,
        max_bytes: int | None = None,
        check_seconds: float = 5.0,
        queue_size: int = 10_000,
    ) -> None:
        self.stream = LOG_STREAM_PREFIX + key
        self.dropped = 0
        self._redis_url = redis_url
        self._max_len = max_len
        self._max_bytes = max_bytes
        self._check_seconds = check_seconds
        self._checked_at = float("-inf")
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(queue_size)
        self._client: aioredis.Redis | None = None
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._redis_url, socket_timeout=5.0)
        self._writer = asyncio.create_task(self._write_forever(self._client), name=f"logs {self.stream}")

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        for entry in entries:
            fields = {
                "time": iso_time(entry.time),
                "function": function,
                "requestId": request_id,
                "level": entry.level,
                "message": entry.message,
            }
            try:
                self._queue.put_nowait(fields)
            except asyncio.QueueFull:
                self.dropped += 1

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._client is not None:
            await self._client.aclose()

    async def _write_forever(self, client: aioredis.Redis) -> None:
        retry = 0.05
        while True:
            batch = [await self._queue.get()]
            while len(batch) < 500 and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for fields in batch:
                        pipe.xadd(self.stream, fields, maxlen=self._max_len, approximate=True)  # type: ignore[arg-type]
                    await pipe.execute()
                await self._keep_under_quota(client)
                retry = 0.05
            except Exception as exc:  # Redis down, or anything else: drop this batch, keep the writer
                self.dropped += len(batch)
                logger.warning(
                    "logs: cannot write to %s (%s); dropped %d entries", self.stream, exc, len(batch)
                )
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _keep_under_quota(self, client: aioredis.Redis) -> None:
        """Trim the oldest entries when the stream's memory is over ``max_bytes`` (checked at most
        every ``check_seconds``), keeping the newest share that fits with a tenth to spare."""
        now = time.monotonic()
        if self._max_bytes is None or now - self._checked_at < self._check_seconds:
            return
        self._checked_at = now
        try:
            used = await client.memory_usage(self.stream, samples=0) or 0
            if used <= self._max_bytes:
                return
            length = await client.xlen(self.stream)
            keep = int(length * self._max_bytes / used * 0.9)
            await client.xtrim(self.stream, maxlen=keep, approximate=False)
        except Exception as exc:  # the entries are written; the next check tries again
            logger.warning("logs: cannot check the size of %s: %s", self.stream, exc)
            return
        logger.info(
            "logs: %s held %d bytes, over its quota of %d: kept the newest %d of %d entries",
            self.stream,
            used,
            self._max_bytes,
            keep,
            length,
        )


def iso_time(timestamp: float) -> str:
    """``2026-01-02T03:04:05.678Z``: how log entries carry their time."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
