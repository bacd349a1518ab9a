"""The MCP endpoint with the real ``mcp`` client over HTTP (uvicorn on a free port): paging, the key
view from the ASGI scope, tool errors as results, unknown tools as protocol errors, Host/Origin
checks. The catalog is a stand-in of its store-backed lookup; the end-to-end path (real catalog,
Serve dispatch) is tests/e2e/test_hometax_walkthrough.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from imprun.ai.catalog import KeyView
from imprun.ai.dispatch import Caller, ToolOutcome
from imprun.ai.mcp_server import CALLER_STATE, KEY_VIEW_STATE, McpEndpoint
from imprun.ai.tools import Tool
from tests.fixtures.polling import eventually
from tests.fixtures.services import free_port

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
TOOLS = [Tool(f"tool{i}", f"Tool number {i}.", SCHEMA, "gw", "prod", f"tool{i}") for i in range(5)]
VIEW = KeyView("hash", frozenset({("gw", "prod")}), frozenset({"app"}))


class StubCatalog:
    async def tools_of_async(self, view: KeyView) -> list[Tool]:
        assert view is VIEW
        return TOOLS


CALLER = Caller("imp_prod_test-key", "10.0.0.7")


class DoublingInvoker:
    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        if caller != CALLER:
            return ToolOutcome(
                500, {"error": {"code": "internal", "message": f"caller {caller}"}}, 1.0, "internal"
            )
        if arguments["n"] < 0:
            return ToolOutcome(500, {"error": {"code": "internal", "message": "negative n"}}, 1.0, "internal")
        return ToolOutcome(200, {"doubled": arguments["n"] * 2}, 1.0)


class App:
    """What ``AiGatewayHttp`` does for /mcp, minus the key lookup: put the view in the scope."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        scope.setdefault("state", {}).update({KEY_VIEW_STATE: VIEW, CALLER_STATE: CALLER})
        await self.endpoint(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        async with self.endpoint.running():
            await send({"type": "lifespan.startup.complete"})
            await receive()
        await send({"type": "lifespan.shutdown.complete"})


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    endpoint = McpEndpoint(
        StubCatalog(),  # type: ignore[arg-type]
        DoublingInvoker(),
        allowed_hosts=["tools.example.com"],
        page_size=2,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(App(endpoint), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert eventually(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(30)


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[McpClient]:
    http = httpx2.AsyncClient(timeout=30)
    async with http, McpClient(streamable_http_client(url, http_client=http)) as client:
        yield client


def test_tools_list_pages_in_name_order(mcp_url: str) -> None:
    async def all_pages() -> list[list[str]]:
        pages: list[list[str]] = []
        async with connected(mcp_url) as client:
            cursor = None
            while True:
                page = await client.list_tools(cursor=cursor)
                pages.append([t.name for t in page.tools])
                cursor = page.next_cursor
                if cursor is None:
                    return pages

    assert asyncio.run(all_pages()) == [["tool0", "tool1"], ["tool2", "tool3"], ["tool4"]]


def test_calls_errors_and_unknown_tools(mcp_url: str) -> None:
    async def calls() -> tuple[Any, Any, Any, str]:
        async with connected(mcp_url) as client:
            ok = await client.call_tool("tool3", {"n": 21})
            failed = await client.call_tool("tool3", {"n": -1})
            invalid = await client.call_tool("tool3", {"n": "x"})
            try:
                await client.call_tool("nope", {})
                unknown = "no error"
            except MCPError as exc:
                unknown = str(exc)
            return ok, failed, invalid, unknown

    ok, failed, invalid, unknown = asyncio.run(calls())
    assert ok.is_error is False and ok.content[0].text == '{"doubled": 42}'
    assert failed.is_error is True and "negative n" in failed.content[0].text
    assert invalid.is_error is True and "invalid arguments" in invalid.content[0].text
    assert "Unknown tool 'nope'" in unknown


def test_a_bad_cursor_is_a_protocol_error(mcp_url: str) -> None:
    async def bad_cursor() -> str:
        async with connected(mcp_url) as client:
            try:
                await client.list_tools(cursor="not-a-cursor")
            except MCPError as exc:
                return str(exc)
        return "no error"

    assert "Invalid cursor" in asyncio.run(bad_cursor())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "tools.example.com"}, 200),
        ({"host": "tools.example.com:8443", "origin": "https://tools.example.com:8443"}, 200),
        ({"host": "evil.example"}, 421),
        ({"origin": "http://evil.example"}, 403),
    ],
)
def test_host_and_origin_are_checked(mcp_url: str, headers: dict[str, str], status: int) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(
        mcp_url,
        json=request,
        headers={
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
            **headers,
        },
    )
    assert response.status_code == status, response.text
