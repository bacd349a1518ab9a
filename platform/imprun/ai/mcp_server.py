"""The MCP server of the AI gateway: published functions as tools, over stateless Streamable HTTP.

Built on the official ``mcp`` SDK's low-level ``Server`` and its session manager in stateless,
JSON-response mode, so any replica can answer any request and nothing lives between requests. The
caller's key has already been turned into a ``KeyView`` by ``imprun.ai.http_app`` and put in the ASGI
scope's state; the handlers read it from the Starlette request the SDK hands them. ``tools/list``
pages through the view's tools in name order (the cursor is an offset); ``tools/call`` of a name the
view lacks is a protocol error (``INVALID_PARAMS``), while a function that fails — bad arguments,
an exception, a timeout — is a tool result with ``isError: true`` and the error as text. Host and
Origin are checked against loopback plus the configured hostnames (DNS-rebinding protection).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from imprun.ai.catalog import KeyView, ToolCatalog
from imprun.ai.dispatch import Caller, ToolInvoker, call_tool
from imprun.ai.tools import Tool

__all__ = ["CALLER_STATE", "KEY_VIEW_STATE", "McpEndpoint", "transport_security"]

log = logging.getLogger(__name__)

KEY_VIEW_STATE: Final = "imprun_key_view"
CALLER_STATE: Final = "imprun_caller"
"""Where ``imprun.ai.http_app`` puts the caller's ``KeyView`` in the ASGI scope's ``state``."""

DEFAULT_PAGE_SIZE: Final = 100
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")


def transport_security(allowed_hosts: Sequence[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection accepting loopback and ``allowed_hosts`` (any port, http or https)."""
    hosts = [*_LOOPBACK_HOSTS, *(h.strip() for h in allowed_hosts if h.strip())]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for host in hosts for pattern in (host, f"{host}:*")],
        allowed_origins=[
            pattern
            for host in hosts
            for scheme in ("http", "https")
            for pattern in (f"{scheme}://{host}", f"{scheme}://{host}:*")
        ],
    )


class McpEndpoint:
    """An ASGI app answering MCP at one path; run it inside ``async with endpoint.running():``."""

    def __init__(
        self,
        catalog: ToolCatalog,
        invoker: ToolInvoker,
        *,
        allowed_hosts: Sequence[str] = (),
        tool_timeout_seconds: float = 30.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        version: str = "",
    ) -> None:
        self._catalog = catalog
        self._invoker = invoker
        self._tool_timeout = tool_timeout_seconds
        self._page_size = page_size
        self._server: Server[Any] = Server(
            "imprun",
            version=version,
            instructions="Tools are the imprun functions published in the environments your API key is granted.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._manager = StreamableHTTPSessionManager(
            self._server,
            json_response=True,
            stateless=True,
            security_settings=transport_security(allowed_hosts),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self._manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)

    async def _tools(self, ctx: ServerRequestContext[Any]) -> list[Tool]:
        return await self._catalog.tools_of_async(_view(ctx))

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = await self._tools(ctx)
        start = _offset(params.cursor if params else None, len(tools))
        page = tools[start : start + self._page_size]
        following = start + self._page_size
        return types.ListToolsResult(
            tools=[_mcp_tool(tool) for tool in page],
            next_cursor=str(following) if following < len(tools) else None,
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tools = {tool.name: tool for tool in await self._tools(ctx)}
        tool = tools.get(params.name)
        if tool is None:
            raise MCPError(
                types.INVALID_PARAMS,
                f"Unknown tool {params.name!r}: it is not published in an environment this API key is "
                "granted. List the tools to see the available names.",
            )
        request_id = uuid.uuid4().hex
        outcome = await call_tool(
            self._invoker,
            tool,
            params.arguments or {},
            request_id,
            _caller(ctx),
            timeout_seconds=self._tool_timeout,
        )
        log.info(
            "mcp tools/call %s -> %s/%s/%s status=%s in %.1f ms (request %s)",
            tool.name, tool.gateway_id, tool.environment, tool.function,
            outcome.status, outcome.duration_ms, request_id,
        )  # fmt: skip
        structured = (
            outcome.body
            if isinstance(outcome.body, dict) and not outcome.is_error and _output_schema(tool) is not None
            else None
        )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=outcome.as_text())],
            structured_content=structured,
            is_error=outcome.is_error,
        )


def _view(ctx: ServerRequestContext[Any]) -> KeyView:
    view = _state(ctx, KEY_VIEW_STATE)
    if not isinstance(view, KeyView):  # only reachable if the endpoint is mounted without the key check
        raise MCPError(types.INVALID_REQUEST, "This MCP endpoint needs an API key.")
    return view


def _caller(ctx: ServerRequestContext[Any]) -> Caller:
    caller = _state(ctx, CALLER_STATE)
    if not isinstance(caller, Caller):  # set with the key view, so as unreachable as the check above
        raise MCPError(types.INVALID_REQUEST, "This MCP endpoint needs an API key.")
    return caller


def _state(ctx: ServerRequestContext[Any], name: str) -> Any:
    request = ctx.request
    return getattr(request, "scope", {}).get("state", {}).get(name) if request is not None else None


def _offset(cursor: str | None, total: int) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or int(cursor) > total:
        raise MCPError(
            types.INVALID_PARAMS, f"Invalid cursor {cursor!r}: pass the nextCursor of a previous page."
        )
    return int(cursor)


def _mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        output_schema=_output_schema(tool),
    )


def _output_schema(tool: Tool) -> dict[str, Any] | None:
    """MCP output schemas describe an object; other return types are announced as text only."""
    schema = tool.output_schema
    return dict(schema) if schema is not None and schema.get("type") == "object" else None
