"""The AI gateway's HTTP surface refuses bodies over its limit with a 413 in the API's error shape,
on ``/mcp`` before the MCP SDK reads anything and on the chat endpoint; smaller ones still work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from imprun.ai.catalog import KeyView
from imprun.ai.chat import ChatService
from imprun.ai.http_app import AiGatewayHttp
from imprun.ai.mcp_server import McpEndpoint
from imprun.ai.tools import Tool
from tests.platform.ai.test_mcp_server import TOOLS, DoublingInvoker

KEY = "imp_prod_" + "A" * 43
VIEW = KeyView("hash", frozenset({("gw", "prod")}), frozenset({"app"}))
LIMIT = 4096
MCP_HEADERS = {
    "apikey": KEY,
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
}


class StubCatalog:
    async def view_of_async(self, api_key: str) -> KeyView:
        return VIEW

    async def tools_of_async(self, view: KeyView) -> list[Tool]:
        return TOOLS


def _initialize(padding: int = 0) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1" + " " * padding},
        },
    }


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1024):
        yield b" " * 1024


def test_bodies_over_the_limit_are_413_and_smaller_ones_are_served() -> None:
    catalog = StubCatalog()
    endpoint = McpEndpoint(catalog, DoublingInvoker())  # type: ignore[arg-type]
    chat = ChatService({}, DoublingInvoker())
    app = AiGatewayHttp(catalog, endpoint, chat, max_request_bytes=LIMIT)  # type: ignore[arg-type]

    async def scenario() -> list[httpx.Response]:
        async with endpoint.running():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                return [
                    await http.post("/mcp", json=_initialize(padding=2 * LIMIT), headers=MCP_HEADERS),
                    await http.post("/mcp", content=_chunks(4 * LIMIT), headers=MCP_HEADERS),
                    await http.post("/ai-gateway/chat", content=b" " * (2 * LIMIT), headers={"apikey": KEY}),
                    await http.post("/mcp", json=_initialize(), headers=MCP_HEADERS),
                ]

    declared, streamed, chat_body, small = asyncio.run(scenario())
    for refused in (declared, streamed, chat_body):
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"]["code"] == "too_large"
        assert str(LIMIT) in refused.json()["error"]["message"]
    assert small.status_code == 200, small.text
    assert small.json()["result"]["serverInfo"]["name"] == "imprun"
