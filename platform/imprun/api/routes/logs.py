"""``GET /v1/api-gateways/{gw}/environments/{env}/logs``: an environment's function logs.

Entries are ``{time, function, requestId, level, message}``, oldest first. Query: ``function`` (one
function's entries), ``since`` (an ISO-8601 time or an age such as ``5m``), ``limit`` (the newest N,
1 to 1000, default 100). Without ``follow`` the answer is JSON ``{"entries": [...]}``. With
``follow=true`` it is Server-Sent Events (``text/event-stream``): the same newest entries, then each
new one as it is written, each as ``id: <stream id>`` + ``data: <entry JSON>``; a ``: keep-alive``
comment when nothing happened for a while; and, if the environment is deleted or the caller's
session ends meanwhile, a final ``event: end`` whose data is ``{reason, message}`` before the
stream closes. A user follows at most ``IMPRUN_LOG_FOLLOWERS_PER_USER`` streams at once (429 past).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from imprun.api.deps import BearerToken, CurrentUser, FunctionLogs, LogFollowers, Sessions
from imprun.domain.logs import LogEvent, LogQuery

router = APIRouter(prefix="/v1/api-gateways", tags=["logs"])

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class LogEntryPublic(BaseModel):
    time: str
    function: str
    requestId: str
    level: str
    message: str


class LogEntriesPublic(BaseModel):
    entries: list[LogEntryPublic]


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": LogEntriesPublic,
        "description": "JSON without `follow`; with `follow=true`, Server-Sent Events of the same entries.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get("/{gw}/environments/{env}/logs", response_model=None, responses=_ANSWERS)
def environment_logs(
    gw: str,
    env: str,
    user: CurrentUser,
    token: BearerToken,
    function_logs: FunctionLogs,
    log_followers: LogFollowers,
    sessions: Sessions,
    function: str | None = Query(default=None, max_length=128),
    since: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
    follow: bool = False,
) -> LogEntriesPublic | Response:
    logs, query = function_logs, LogQuery(function, since, limit)
    if not follow:
        return LogEntriesPublic.model_validate({"entries": logs.entries(gw, env, user, query)})
    release = log_followers.acquire(user.id)  # 429 past IMPRUN_LOG_FOLLOWERS_PER_USER
    try:
        events = logs.follow(gw, env, user, query, lambda: sessions.resolve(token) == user.id)
    except BaseException:
        release()
        raise
    return StreamingResponse(
        _server_sent(events, release), media_type="text/event-stream", headers=_SSE_HEADERS
    )


async def _server_sent(events: AsyncIterator[LogEvent], release: Callable[[], None]) -> AsyncIterator[str]:
    try:
        async for event in events:
            if event.kind == "keepalive":
                yield ": keep-alive\n\n"
            elif event.kind == "end":
                yield f"event: end\ndata: {json.dumps(event.data)}\n\n"
            else:
                yield f"id: {event.id}\ndata: {json.dumps(event.data)}\n\n"
    finally:
        release()
