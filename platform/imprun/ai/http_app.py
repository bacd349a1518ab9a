"""The AI gateway's HTTP surface: ``/mcp`` and ``/ai-gateway/chat`` behind one API-key check.

A plain ASGI app (the Serve deployment in ``ray_apps.ai_gateway`` is its ingress, at route prefix
``/`` so it also answers every path no environment claims — with a 404 in the API's error shape).
Both endpoints take a grant's key (``apikey`` or ``Authorization: Bearer``): a missing, malformed,
unknown or revoked key is a 401 before anything else runs; a key whose grants open no environment
sees no tools. A body over ``max_request_bytes`` is a 413 on both, read before the MCP SDK sees it.
Errors use the API's shape, ``{"error": {code, message, details?, requestId?}}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from imprun.ai.catalog import ToolCatalog, presented_key
from imprun.ai.chat import ChatService, parse_chat_request
from imprun.ai.dispatch import Caller
from imprun.ai.mcp_server import CALLER_STATE, KEY_VIEW_STATE, McpEndpoint
from imprun.errors import ImprunError, Internal, Invalid, NotFound, TooLarge
from runtime_actors.shared.errors import REQUEST_ID_HEADER, error_body, request_id_of

__all__ = ["CHAT_PATH", "HEALTH_PATH", "MCP_PATH", "AiGatewayHttp"]

log = logging.getLogger(__name__)

MCP_PATH: Final = "/mcp"
CHAT_PATH: Final = "/ai-gateway/chat"
HEALTH_PATH: Final = "/ai-gateway/_health"


class AiGatewayHttp:
    def __init__(
        self, catalog: ToolCatalog, mcp: McpEndpoint, chat: ChatService, *, max_request_bytes: int = 1_048_576
    ) -> None:
        self._catalog = catalog
        self._mcp = mcp
        self._chat = chat
        self._max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = request_id_of(request.headers)
        path = scope["path"].rstrip("/") or "/"
        try:
            if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
                response: Response = JSONResponse({"status": "ok", "service": "ai-gateway"})
            elif path == MCP_PATH:
                key = presented_key(request.headers)
                view = await self._catalog.view_of_async(key)
                body = await _read_body(request, self._max_request_bytes)
                scope.setdefault("state", {}).update(
                    {KEY_VIEW_STATE: view, CALLER_STATE: _caller(request, key)}
                )
                await self._mcp(scope, _replaying(body, receive), send)
                return
            elif path == CHAT_PATH:
                response = await self._chat_response(request, request_id)
            else:
                raise NotFound(
                    f"Nothing is served at {scope['path']}: the AI gateway answers {MCP_PATH} and {CHAT_PATH}."
                )
        except ImprunError as exc:
            response = error_response(exc, request_id)
        except Exception:
            log.exception("AI gateway failed on %s %s (request %s)", request.method, path, request_id)
            response = error_response(
                Internal("The AI gateway failed; the request id is in its logs."), request_id
            )
        response.headers[REQUEST_ID_HEADER] = request_id
        await response(scope, receive, send)

    async def _chat_response(self, request: Request, request_id: str) -> Response:
        if request.method != "POST":
            raise Invalid(f"{CHAT_PATH} takes POST, not {request.method}.", status=405)
        key = presented_key(request.headers)
        view = await self._catalog.view_of_async(key)
        body = await _json_body(request, self._max_request_bytes)
        chat_request = parse_chat_request(body, cap=self._chat.max_tool_calls)
        self._chat.checked_provider(chat_request)  # 503/403 before any tool is read
        tools = await self._catalog.tools_of_async(view)
        answer = await self._chat.chat(
            chat_request, tools, request_id, _caller(request, key), view.application_ids
        )
        return JSONResponse(answer)


def _caller(request: Request, key: str) -> Caller:
    return Caller(key, request.client.host if request.client else "")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the already-read ``body``, then waits for the disconnect."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _json_body(request: Request, limit: int) -> Any:
    body = await _read_body(request, limit)
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise Invalid(f"The body is not valid JSON: {exc}.") from exc


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The request body is over the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(exc: ImprunError, request_id: str) -> JSONResponse:
    body = error_body(
        exc.code, exc.message, details=exc.details, request_id=request_id if exc.status >= 500 else None
    )
    return JSONResponse(body, status_code=exc.status, headers=exc.headers())
