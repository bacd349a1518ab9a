"""The one seam between the SDK and HTTP: request specs, response decoding, error translation, SSE.

A route method builds a ``Spec`` (method, path, body, query, how to parse the answer); the sync
``Client`` and the ``AsyncClient`` both execute specs, so each route is written once. httpx's
transport errors become ``ImprunConnectionError`` naming the URL tried; an error status becomes the
typed ``ImprunAPIError`` subclass from the API's error body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from imprun.sdk.errors import ImprunConnectionError, api_error
from imprun.sdk.models import CallResult, LogEntry

T = TypeVar("T")


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Spec(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T] = _identity
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    auth: bool = True
    raw_text: bool = False


def segment(value: str) -> str:
    """One path segment (gateway, environment, application ids) percent-encoded."""
    return quote(value, safe="")


def function_path(name: str) -> str:
    """A function name keeps its ``/`` (nested names are a path on the server)."""
    return quote(name.strip("/"), safe="/")


def compact(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not None (optional body fields and query parameters)."""
    return {k: v for k, v in values.items() if v is not None}


def decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    retry = response.headers.get("retry-after")
    raise api_error(
        response.status_code, decode(response), retry_after=int(retry) if retry and retry.isdigit() else None
    )


def connection_error(exc: httpx.TransportError, url: str) -> ImprunConnectionError:
    reason = str(exc) or type(exc).__name__
    return ImprunConnectionError(url, reason)


def call_result(response: httpx.Response) -> CallResult:
    return CallResult(
        status=response.status_code,
        headers=dict(response.headers),
        body=decode(response),
        request_id=response.headers.get("x-request-id"),
    )


def data_plane_request(
    base: str,
    fn: str,
    *,
    method: str,
    body: Any,
    query: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    api_key: str | None,
) -> dict[str, Any]:
    """The keyword arguments of ``httpx`` ``request`` for a data-plane call of ``fn`` under ``base``."""
    request_headers = dict(headers or {})
    if api_key and "apikey" not in {k.lower() for k in request_headers}:
        request_headers["apikey"] = api_key
    return {
        "method": method.upper(),
        "url": f"{base.rstrip('/')}/{function_path(fn)}",
        "json": body,
        "params": dict(query) if query else None,
        "headers": request_headers,
    }


class SseDecoder:
    """Server-Sent Events, line by line: ``feed`` returns ``(event, data)`` when an event completes."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._event = "message"
                return None
            done = (self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return done
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def log_item(self, line: str) -> LogEntry | StreamEnd | None:
        """Feed one line of a followed log stream: an entry, the end, or None (nothing complete yet)."""
        event = self.feed(line)
        return log_event(*event) if event else None


@dataclass(frozen=True)
class StreamEnd:
    """The server closed a followed log stream on purpose (e.g. the environment was deleted)."""

    message: str


def log_event(event: str, data: str) -> LogEntry | StreamEnd | None:
    """A log entry, the end of the stream, or None for keep-alives and unknown events."""
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {"message": data}
    if event in ("end", "close", "error"):
        if isinstance(payload, dict):
            inner = payload.get("error")
            source: dict[str, Any] = inner if isinstance(inner, dict) else payload
            return StreamEnd(str(source.get("message", "")))
        return StreamEnd(str(payload))
    if event in ("message", "log") and isinstance(payload, dict):
        return LogEntry.model_validate(payload)
    return None


def log_entries(payload: Any) -> list[LogEntry]:
    """``GET …/logs`` without following: a list, or ``{"entries": [...]}``."""
    items = payload.get("entries", payload.get("items", [])) if isinstance(payload, dict) else payload
    return [LogEntry.model_validate(item) for item in items or []]
