"""Every log follower of a control-plane process reads through one Redis connection.

A follower used to hold a connection of its own, blocked in ``XREAD``; a few hundred followers were
a few hundred connections. ``LogFanout`` runs one reader task per event loop while anyone follows:
it issues one ``XREAD BLOCK`` over every followed stream, from the furthest-behind position each
stream's followers need, and hands each follower (a ``FanoutTail``) the entries after its own
position. A follower joining mid-read is picked up when that read returns (within the block time).
The reader stops, and closes its connection, when the last follower leaves. A follower that stops
reading while entries pile up past ``max_backlog`` batches is dropped with ``Unavailable``, so a
stalled client cannot make the process buffer a stream without bound. Redis errors reach every
follower as ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from imprun.errors import Unavailable

__all__ = ["FanoutTail", "LogFanout", "stream_position"]

READER_NAME: Final = "imprun-log-fanout"
_PAGE: Final = 500


def stream_position(entry_id: str) -> tuple[int, int]:
    """A stream id ``<ms>-<seq>`` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class FanoutTail:
    """One follower's view of one stream: ``read`` waits up to the block time for entries after it."""

    key: str
    after: str
    block_s: float
    max_backlog: int
    batches: asyncio.Queue[list[Any] | Exception] = field(default_factory=asyncio.Queue)
    delivered: str = ""
    """How far the reader has handed entries to this follower (it may not have read them yet)."""
    overflowed: bool = False

    def __post_init__(self) -> None:
        self.delivered = self.delivered or self.after

    def deliver(self, batch: list[Any] | Exception) -> None:
        if self.overflowed:
            return
        if self.batches.qsize() >= self.max_backlog:
            self.overflowed = True
            batch = Unavailable("the log stream fell too far behind its reader; follow it again")
        elif not isinstance(batch, Exception):
            batch = [e for e in batch if stream_position(str(e[0])) > stream_position(self.delivered)]
            if not batch:
                return
            self.delivered = str(batch[-1][0])
        self.batches.put_nowait(batch)

    async def read_raw(self) -> list[Any]:
        """The next entries (``(id, fields)`` pairs) after this follower's position; [] after the
        block time."""
        try:
            batch = await asyncio.wait_for(self.batches.get(), self.block_s)
        except TimeoutError:
            return []
        if isinstance(batch, Exception):
            raise batch
        if batch:
            self.after = str(batch[-1][0])
        return batch


class LogFanout:
    def __init__(
        self, connect: Callable[[], aioredis.Redis], *, block_s: float = 1.0, max_backlog: int = 1000
    ) -> None:
        self._connect = connect
        self._block_s = block_s
        self._max_backlog = max_backlog
        self._tails: set[FanoutTail] = set()
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def tail(self, key: str, after: str) -> AsyncIterator[FanoutTail]:
        tail = FanoutTail(key, after, self._block_s, self._max_backlog)
        self._tails.add(tail)
        loop = asyncio.get_running_loop()
        if self._reader is None or self._reader.get_loop() is not loop:
            self._reader = loop.create_task(self._read(), name=READER_NAME)
        try:
            yield tail
        finally:
            self._tails.discard(tail)

    def _positions(self) -> dict[Any, Any]:
        """Per followed stream, the position of its furthest-behind follower."""
        positions: dict[Any, Any] = {}
        for tail in self._tails:
            known = positions.get(tail.key)
            if known is None or stream_position(tail.delivered) < stream_position(known):
                positions[tail.key] = tail.delivered
        return positions

    async def _read(self) -> None:
        client: aioredis.Redis | None = None
        try:
            client = self._connect()
            while self._tails:
                answer = await client.xread(
                    self._positions(), count=_PAGE, block=max(1, int(self._block_s * 1000))
                )
                streams = answer.items() if isinstance(answer, dict) else (answer or [])
                for key, entries in streams:
                    for tail in [t for t in self._tails if t.key == str(key)]:
                        tail.deliver(list(entries))
        except Exception as exc:  # never leave followers waiting on a reader that is gone
            failure = Unavailable("Redis is unreachable; the log stream stopped (retry shortly)")
            failure.__cause__ = exc
            for tail in list(self._tails):
                tail.deliver(failure)
        finally:
            # Cleared before the first await below: a follower arriving from now on starts a new reader.
            if self._reader is asyncio.current_task():
                self._reader = None
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
