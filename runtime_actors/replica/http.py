"""HTTP as the replica sees it: the request head, the response, and the translations between them and
the worker's ``Invocation``/``InvocationResult``.

``translate_result`` turns a worker's result into a response in API.md's error shape (a 5xx carries
``requestId``); ``tenant_headers`` removes the platform's credentials (``apikey``, ``Authorization:
Bearer imp_…``) from what tenant code sees; ``invocation_from_dict`` builds a debug run's request and
``tool_invocation`` an AI-gateway tool call's. No framework: ``ray_apps.environment`` adapts Starlette.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runtime_actors.shared.errors import (
    ERROR_STATUS,
    REQUEST_ID_HEADER,
    code_of_status,
    error_body,
    error_json,
)
from runtime_actors.shared.messages import Invocation, InvocationResult

__all__ = [
    "BodyTooLarge",
    "HttpResponse",
    "RequestHead",
    "error_message",
    "error_response",
    "invocation_from_dict",
    "json_body",
    "read_limited",
    "tenant_headers",
    "timed_out",
    "tool_invocation",
    "translate_result",
]

_CREDENTIAL_HEADERS: Final = frozenset({"apikey"})
_PLATFORM_KEY_PREFIX: Final = "imp_"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What arrives before the body: ``route`` is the path below ``/<gw>/<env>`` (``/`` at least)."""

    method: str
    route: str
    query_string: str
    headers: Mapping[str, str]  # lower-cased names
    client: str = ""
    """The peer address the replica sees (behind an ingress: the ingress's); "" when unknown."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class BodyTooLarge(Exception):
    pass


async def read_limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """Join an async iterator of body chunks, raising ``BodyTooLarge`` as soon as it passes ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


def tenant_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers tenant code sees: without ``apikey`` nor an ``Authorization: Bearer imp_…`` key.

    Any other ``Authorization`` (a function's own scheme: Basic, a user's JWT…) is left to the function.
    """
    visible = {k: v for k, v in headers.items() if k not in _CREDENTIAL_HEADERS}
    authorization = visible.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip().startswith(_PLATFORM_KEY_PREFIX):
            del visible["authorization"]
    return visible


def error_response(
    status: int, code: str, message: str, request_id: str, details: Any = None
) -> HttpResponse:
    """A JSON error response; a 5xx names its ``requestId`` (inside the error and beside it)."""
    body = error_body(code, message, details=details, request_id=request_id if status >= 500 else None)
    if status >= 500:
        body["requestId"] = request_id
    return HttpResponse(
        status,
        json.dumps(body).encode(),
        {"content-type": "application/json", REQUEST_ID_HEADER: request_id},
    )


def translate_result(result: InvocationResult, request_id: str) -> HttpResponse:
    """The HTTP response for a worker's result; errors get API.md's shape (5xx with ``requestId``)."""
    if result.error is None:
        headers = dict(result.headers)
        headers[REQUEST_ID_HEADER] = request_id
        return HttpResponse(result.status, result.body, headers)
    status = result.status if result.status >= 400 else ERROR_STATUS.get(result.error, 500)
    code = result.error if result.error in ERROR_STATUS else code_of_status(status)
    message, details = _worker_error(result.body)
    return error_response(
        status, code, message or _DEFAULT_MESSAGES.get(code, "The function failed."), request_id, details
    )


_DEFAULT_MESSAGES: Final = {
    "timeout": "The function did not finish within its timeout.",
    "internal": "The function raised an exception; see the logs for this requestId.",
}


def _worker_error(body: bytes) -> tuple[str, Any]:
    """Message and details from a worker's error body (API error shape, JSON or plain text)."""
    if not body:
        return "", None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:2000], None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or ""), error.get("details")
        return str(error), None
    return str(parsed), None


def error_message(response: HttpResponse) -> str:
    message, _ = _worker_error(response.body)
    return message


def timed_out(timeout: float) -> InvocationResult:
    """The result of a call the pool did not answer within ``timeout`` seconds."""
    return InvocationResult(
        504, {}, error_json("timeout", f"The function did not finish within {timeout:g} s."), error="timeout"
    )


def invocation_from_dict(values: Mapping[str, Any], request_id: str) -> Invocation:
    """An ``Invocation`` from a debug request ``{method?, path?, query?, headers?, body?}``."""
    body = values.get("body")
    if body is None:
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    query = {
        str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
        for k, v in (values.get("query") or {}).items()
    }
    headers = {str(k).lower(): str(v) for k, v in (values.get("headers") or {}).items()}
    if body is not None and not isinstance(body, (bytes, str)):
        headers.setdefault("content-type", "application/json")
    return Invocation(
        method=str(values.get("method") or "GET").upper(),
        path=str(values.get("path") or ""),
        query=query,
        headers=tenant_headers(headers),
        body=payload,
        request_id=request_id,
        function=str(values.get("function") or "debug"),
    )


def tool_invocation(
    name: str, methods: frozenset[str] | None, arguments: Mapping[str, Any], request_id: str
) -> Invocation:
    """An AI-gateway tool call as a request: the arguments POSTed as JSON, or in the query when the
    function takes only GET."""
    if methods is None or "POST" in methods or "GET" not in methods:
        return Invocation(
            method="POST",
            path="",
            query={},
            headers={"content-type": "application/json", REQUEST_ID_HEADER: request_id},
            body=json.dumps(dict(arguments)).encode(),
            request_id=request_id,
            function=name,
        )
    return Invocation(
        method="GET",
        path="",
        query={k: [v if isinstance(v, str) else json.dumps(v)] for k, v in arguments.items()},
        headers={"content-type": "application/json", REQUEST_ID_HEADER: request_id},
        body=b"",
        request_id=request_id,
        function=name,
    )


def json_body(response: HttpResponse) -> Any:
    """A response body for a JSON answer (debug runs, tool calls): parsed when it is JSON, else text."""
    text = response.body.decode("utf-8", "replace")
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return text
