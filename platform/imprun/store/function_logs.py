"""Function logs in Redis: reading the per-environment streams the replicas write.

Each replica's supervisor appends ``{time, function, requestId, level, message}`` entries to the
stream ``imprun:logs:<gw>/<env>`` (``runtime_actors.replica.log_stream.RedisLogStream``) with an approximate
``MAXLEN`` — the environment's retention cap. ``FunctionLogStreams`` is the control plane's reader:
``newest`` pages backwards through a stream (``XREVRANGE``, optionally down to a ``since`` time and
for one function), ``last_id`` is where a follower starts, and ``tail`` subscribes one follower to
the process's ``LogFanout`` (every follower shares one ``redis.asyncio`` connection blocked in
``XREAD``, without holding a thread). Redis errors become ``Unavailable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from imprun.store.log_fanout import READER_NAME, FanoutTail, LogFanout
from imprun.store.redis import Redis, redis_errors
from runtime_actors.shared.names import LOG_STREAM_PREFIX

__all__ = ["FunctionLogStreams", "LogRecord", "LogTail", "log_stream_key"]

_PAGE: Final = 500
_FIELDS: Final = ("time", "function", "requestId", "level", "message")


def log_stream_key(gateway_id: str, environment: str) -> str:
    return f"{LOG_STREAM_PREFIX}{gateway_id}/{environment}"


@dataclass(frozen=True, slots=True)
class LogRecord:
    id: str
    """The stream entry id (``<ms>-<seq>``): ordered, and where a follower resumes."""
    fields: dict[str, str]

    @property
    def function(self) -> str:
        return self.fields.get("function", "")

    def public(self) -> dict[str, Any]:
        return {name: self.fields.get(name, "") for name in _FIELDS}


def _records(raw: Any) -> list[LogRecord]:
    return [LogRecord(str(entry_id), {str(k): str(v) for k, v in fields.items()}) for entry_id, fields in raw]


class FunctionLogStreams:
    def __init__(self, redis: Redis, redis_url: str, *, timeout: float, block_s: float = 1.0) -> None:
        self._redis = redis
        self._redis_url = redis_url
        self._timeout = timeout
        self._block_s = block_s
        self._fanout = LogFanout(self._connect_reader, block_s=block_s)

    def newest(
        self,
        gateway_id: str,
        environment: str,
        *,
        limit: int,
        function: str | None = None,
        since_ms: int | None = None,
    ) -> list[LogRecord]:
        """Up to ``limit`` newest entries (of ``function``, from ``since_ms`` on), oldest first."""
        key = log_stream_key(gateway_id, environment)
        low = "-" if since_ms is None else f"{since_ms}-0"
        high = "+"
        found: list[LogRecord] = []
        with redis_errors():
            while len(found) < limit:
                page = _records(self._redis.xrevrange(key, high, low, count=_PAGE))
                found.extend(r for r in page if function is None or r.function == function)
                if len(page) < _PAGE:
                    break
                high = f"({page[-1].id}"
        return list(reversed(found[:limit]))

    def last_id(self, gateway_id: str, environment: str) -> str:
        """The id of the newest entry, ``0-0`` for an empty stream: a follower reads after it."""
        with redis_errors():
            newest = self._redis.xrevrange(log_stream_key(gateway_id, environment), count=1)
        return str(newest[0][0]) if newest else "0-0"

    def forget(self, gateway_id: str, environments: Iterable[str]) -> None:
        """Delete the environments' log streams (a deleted gateway's logs outlive no one)."""
        keys = [log_stream_key(gateway_id, environment) for environment in environments]
        with redis_errors():
            self._redis.delete(*keys)

    @contextlib.asynccontextmanager
    async def tail(
        self, gateway_id: str, environment: str, *, block_s: float, after: str = "0-0"
    ) -> AsyncIterator[LogTail]:
        """A follower of the stream from ``after`` on, through the shared fan-out (left on exit)."""
        async with self._fanout.tail(log_stream_key(gateway_id, environment), after) as tail:
            tail.block_s = block_s
            yield LogTail(tail)

    def _connect_reader(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._redis_url,
            decode_responses=True,
            socket_timeout=self._block_s + self._timeout,
            socket_connect_timeout=self._timeout,
            client_name=READER_NAME,
        )


class LogTail:
    def __init__(self, tail: FanoutTail) -> None:
        self._tail = tail

    async def read(self) -> list[LogRecord]:
        """Entries after the follower's position, waiting up to the block time for one; [] when none came."""
        return _records(await self._tail.read_raw())
