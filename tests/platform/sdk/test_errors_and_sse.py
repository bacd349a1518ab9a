"""The error tree built from API error bodies, and the Server-Sent Events decoder (no server needed)."""

from __future__ import annotations

import pytest

from imprun.sdk._http import SseDecoder, StreamEnd, log_event
from imprun.sdk.errors import (
    ConflictError,
    ForbiddenError,
    ImprunAPIError,
    InternalError,
    InvalidError,
    NotFoundError,
    QuotaExceededError,
    RateLimitedError,
    UnavailableError,
    api_error,
)
from imprun.sdk.models import LogEntry


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "not_found", NotFoundError),
        (409, "conflict", ConflictError),
        (400, "invalid", InvalidError),
        (422, "invalid", InvalidError),
        (503, "unavailable", UnavailableError),
        (502, "unavailable", UnavailableError),
        (429, "rate_limited", RateLimitedError),
        (403, "quota_exceeded", QuotaExceededError),
        (403, "forbidden", ForbiddenError),
    ],
)
def test_the_code_picks_the_class(status: int, code: str, cls: type[ImprunAPIError]) -> None:
    body = {"error": {"code": code, "message": "m", "details": [{"line": 2}], "requestId": "r1"}}
    error = api_error(status, body, retry_after=3)
    assert type(error) is cls
    assert (error.code, error.status, error.message, error.details, error.request_id) == (
        code,
        status,
        "m",
        [{"line": 2}],
        "r1",
    )
    assert error.retry_after == 3
    assert "r1" in str(error)


def test_a_body_without_the_error_shape_falls_back_to_the_status() -> None:
    error = api_error(500, "<html>Bad gateway</html>")
    assert isinstance(error, InternalError)
    assert error.message == "<html>Bad gateway</html>"
    assert isinstance(api_error(404, None), NotFoundError)


def test_sse_entries_comments_and_the_end_event() -> None:
    decoder = SseDecoder()
    lines = [
        ": keep-alive",
        "",
        "id: 1-0",
        'data: {"time": "t", "function": "f", "requestId": "r", "level": "info", "message": "hi"}',
        "",
        "event: end",
        'data: {"reason": "deleted", "message": "the environment was deleted"}',
        "",
    ]
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    assert [log_event(*e) for e in events] == [
        LogEntry(time="t", function="f", request_id="r", level="info", message="hi"),
        StreamEnd("the environment was deleted"),
    ]
