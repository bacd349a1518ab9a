"""Live function logs: what ``GET /v1/api-gateways/{gw}/environments/{env}/logs`` does.

``FunctionLogService.entries`` answers the newest entries of an environment's log stream (at most
``limit``, optionally of one function and from ``since`` on), oldest first. ``follow`` checks the
same ownership up front, then yields ``LogEvent``s: first those newest entries, then every new entry
as it arrives (through the process's one log reader), a keep-alive when ``keepalive_s`` passed
without one, and — because an environment can be deleted under a follower — a re-check of the
gateway and environment every ``recheck_s``: once either is gone or being deleted, one final
``end`` event says so and the iteration stops. The same re-check asks ``signed_in`` (when given)
whether the follower's session still lives; once it was revoked or expired, a final ``end`` says
so. It also stops when the consumer stops iterating (the HTTP client went away).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from imprun.domain.logs import LogEvent, LogQuery, parse_since
from imprun.domain.phases import DesiredState, Phase
from imprun.lifecycle.commands import GatewayCommands
from imprun.store.function_logs import FunctionLogStreams, LogRecord
from imprun.store.lifecycle import environment_key
from imprun.store.users import UserRecord

__all__ = ["FunctionLogService"]

_GONE = (Phase.DELETING, Phase.DELETED)
_SIGNED_OUT = "the session following these logs ended (logged out, revoked or expired); log in again"


class FunctionLogService:
    def __init__(
        self,
        *,
        gateways: GatewayCommands,
        streams: FunctionLogStreams,
        clock: Callable[[], datetime],
        block_s: float = 1.0,
        keepalive_s: float = 15.0,
        recheck_s: float = 2.0,
    ) -> None:
        self._gateways = gateways
        self._streams = streams
        self._clock = clock
        self._block_s = block_s
        self._keepalive_s = keepalive_s
        self._recheck_s = recheck_s

    def entries(
        self, gateway_id: str, environment: str, user: UserRecord, query: LogQuery
    ) -> list[dict[str, Any]]:
        gw, env = self._place(gateway_id, environment, user)
        return [r.public() for r in self._newest(gw, env, query)]

    def follow(
        self,
        gateway_id: str,
        environment: str,
        user: UserRecord,
        query: LogQuery,
        signed_in: Callable[[], bool] | None = None,
    ) -> AsyncIterator[LogEvent]:
        """Check access now (raising before any byte is sent), then iterate lazily."""
        gw, env = self._place(gateway_id, environment, user)
        backlog = self._newest(gw, env, query)
        start = backlog[-1].id if backlog else self._streams.last_id(gw, env)
        return self._follow(gw, env, query.function, backlog, start, signed_in)

    async def _follow(
        self,
        gw: str,
        env: str,
        function: str | None,
        backlog: list[LogRecord],
        after: str,
        signed_in: Callable[[], bool] | None,
    ) -> AsyncIterator[LogEvent]:
        for record in backlog:
            yield _entry(record)
        loop = asyncio.get_running_loop()
        quiet_since = next_check = loop.time()  # the first check comes after the first read
        async with self._streams.tail(gw, env, block_s=self._block_s, after=after) as tail:
            while True:
                records = await tail.read()
                now = loop.time()
                for record in records:
                    after = record.id
                    if function is None or record.function == function:
                        quiet_since = now
                        yield _entry(record)
                if now >= next_check:
                    gone = await asyncio.to_thread(self._gone, gw, env)
                    if gone is not None:
                        yield LogEvent("end", {"reason": "deleted", "message": gone})
                        return
                    if signed_in is not None and not await asyncio.to_thread(signed_in):
                        yield LogEvent("end", {"reason": "signed-out", "message": _SIGNED_OUT})
                        return
                    next_check = now + self._recheck_s
                if now - quiet_since >= self._keepalive_s:
                    quiet_since = now
                    yield LogEvent("keepalive")

    def _newest(self, gw: str, env: str, query: LogQuery) -> list[LogRecord]:
        since = query.since
        since_ms = (
            None if since is None else max(0, int(parse_since(since, self._clock()).timestamp() * 1000))
        )
        return self._streams.newest(
            gw, env, limit=query.limit, function=query.function or None, since_ms=since_ms
        )

    def _place(self, gateway_id: str, environment: str, user: UserRecord) -> tuple[str, str]:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        return gateway.gateway_id, self._gateways.get_environment(gateway, environment).name

    def _gone(self, gw: str, env: str) -> str | None:
        """Why the environment's logs will never grow again, or None while it lives."""
        gateway = self._gateways.gateways.get(gw)
        if gateway is None or gateway.state is DesiredState.DELETED or gateway.phase in _GONE:
            return f"gateway {gw} was deleted; its logs end here"
        environment = self._gateways.environments.get(environment_key(gw, env))
        if environment is None or environment.state is DesiredState.DELETED or environment.phase in _GONE:
            return f"environment {gw}/{env} was deleted; its logs end here"
        return None


def _entry(record: LogRecord) -> LogEvent:
    return LogEvent("entry", record.public(), record.id)
