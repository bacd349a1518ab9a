"""The seed's walkthrough end to end: a tax function over HTTP with a key, over MCP with the real
``mcp`` client, and through the chat endpoint with each provider adaptor (scripted LLM servers).

It runs on ``live_stack`` — a control plane over HTTP whose reconcilers also keep the cluster's
``ai-gateway`` application deployed, its providers pointing at the scripted LLM server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pymongo import MongoClient

from tests.e2e.conftest import small_bundle
from tests.fixtures.live_stack import LiveStack
from tests.fixtures.llm_servers import HttpError, ScriptedLLMServer, Text, ToolCalls
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices

CALCULATE_TAX = '''\
def main(income: float, deductions: float = 0):
    """Korean-style flat income tax: 22 % of the taxable income.

    Args:
        income: Gross yearly income in won.
        deductions: Deductible expenses in won.
    """
    taxable = income - deductions
    tax = taxable * 0.22
    imp.db().collection("calculations").insert_one(
        {"income": income, "deductions": deductions, "tax": tax}
    )
    return {"tax": tax}
'''
FAILING = "def main(x: int):\n    raise ValueError('boom')\n"
ARGS = {"income": 50_000_000, "deductions": 10_000_000}


@dataclass(frozen=True)
class Hometax:
    gw: str
    key: str
    api: httpx.Client
    data: httpx.Client


@pytest.fixture(scope="module")
def hometax(live_stack: LiveStack, tier: str) -> Iterator[Hometax]:
    """The walkthrough's gateway on each tier (``tier``): HTTP, MCP and chat behave alike on both."""
    auth = {"Authorization": f"Bearer {live_stack.token}"}
    api = httpx.Client(base_url=live_stack.url, headers=auth, timeout=60)
    data = httpx.Client(base_url=live_stack.data_plane_url, timeout=60)
    gw = live_stack.gateway_id("hometax")
    created = api.post(
        "/v1/api-gateways", json={"name": "hometax", "gatewayId": gw, "bundle": small_bundle(tier)}
    )
    assert created.status_code in (201, 202), created.text
    assert eventually(lambda: api.get(f"/v1/api-gateways/{gw}").json()["phase"] == "Started", timeout=180)
    base = f"/v1/api-gateways/{gw}/functions"
    for name, code in (("calculateTax", CALCULATE_TAX), ("failing", FAILING)):
        assert api.post(base, json={"name": name, "code": code}).status_code == 201
        assert api.post(f"{base}/{name}/publish", json={"environment": "dev"}).status_code == 200
    for stage in ("staging", "prod"):
        promoted = api.post(f"{base}/calculateTax/deploy-to-stage", json={"targetStage": stage})
        assert promoted.status_code == 200, promoted.text
    assert api.post(f"{base}/failing/deploy-to-stage", json={"targetStage": "staging"}).status_code == 200
    assert api.post(f"{base}/failing/deploy-to-stage", json={"targetStage": "prod"}).status_code == 200
    app_id = api.post("/v1/applications", json={"name": "hometax-agent"}).json()["applicationId"]
    grant = api.post(f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "prod"})
    assert grant.status_code == 201, grant.text
    key = grant.json()["apiKey"]
    try:
        yield Hometax(gw, key, api, data)
    finally:
        api.delete(f"/v1/api-gateways/{gw}")
        api.close()
        data.close()


def served_ok(data: httpx.Client, method: str, path: str, **request: Any) -> httpx.Response:
    last: list[httpx.Response] = []

    def ok() -> bool:
        last[:] = [data.request(method, path, **request)]
        return last[0].status_code == 200

    assert eventually(ok, timeout=60, interval=0.1), f"{path}: {last[0].status_code} {last[0].text[:300]}"
    return last[0]


def mcp_session(live_stack: LiveStack, key: str | None) -> tuple[httpx2.AsyncClient, Any]:
    headers = {"apikey": key} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return http, streamable_http_client(f"{live_stack.data_plane_url}/mcp", http_client=http)


async def list_and_call(live_stack: LiveStack, key: str) -> tuple[list[Any], Any, Any, Any]:
    http, transport = mcp_session(live_stack, key)
    async with http, McpClient(transport) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("calculateTax", ARGS)
        failed = await client.call_tool("failing", {"x": 1})
        invalid = await client.call_tool("calculateTax", {"income": "lots"})
        return tools, result, failed, invalid


def test_hometax_over_http_mcp_and_chat(
    live_stack: LiveStack, hometax: Hometax, llm_server: ScriptedLLMServer, services: RunningServices
) -> None:
    gw, key, data = hometax.gw, hometax.key, hometax.data

    # HTTP with the key.
    answer = served_ok(data, "POST", f"/{gw}/prod/calculateTax", json=ARGS, headers={"apikey": key})
    assert answer.json() == {"tax": 8_800_000.0}
    assert data.post(f"/{gw}/prod/calculateTax", json=ARGS).status_code == 401

    # MCP with the real client: listed with the derived schema, called with the same result.
    assert eventually(lambda: data.get("/ai-gateway/_health").status_code == 200, timeout=120, interval=0.2)
    tools, result, failed, invalid = asyncio.run(list_and_call(live_stack, key))
    by_name = {t.name: t for t in tools}
    assert sorted(by_name) == ["calculateTax", "failing"]
    schema = by_name["calculateTax"].input_schema
    assert schema["required"] == ["income"] and set(schema["properties"]) == {"income", "deductions"}
    assert "22 %" in (by_name["calculateTax"].description or "")
    assert result.is_error is False
    assert json.loads(result.content[0].text) == {"tax": 8_800_000.0}
    assert failed.is_error is True and "ValueError" in failed.content[0].text
    assert invalid.is_error is True and "income" in invalid.content[0].text

    # Chat through each adaptor: the model calls the tool, the answer carries the result.
    for provider in ("openai", "anthropic", "local"):
        llm_server.script(
            provider,
            [ToolCalls(("calculateTax", ARGS)), Text("Your tax is 8,800,000 won (8800000.0).")],
        )
        chat = data.post(
            "/ai-gateway/chat",
            headers={"apikey": key},
            json={
                "provider": provider,
                "messages": [{"role": "user", "content": "Tax on 50M with 10M deductions?"}],
            },
        )
        assert chat.status_code == 200, chat.text
        body = chat.json()
        assert body["provider"] == provider
        assert "8800000" in body["choices"][0]["message"]["content"]
        assert [(c["name"], c["result"], c["isError"]) for c in body["toolCalls"]] == [
            ("calculateTax", {"tax": 8_800_000.0}, False)
        ]
        second = llm_server.requests(provider)[1].body
        assert "8800000" in json.dumps(second), f"{provider}: the tool result never reached the model"
        first_tools = llm_server.requests(provider)[0].body["tools"]
        assert "calculateTax" in json.dumps(first_tools)

    # Every calculation (HTTP, MCP, three chats) is in the gateway database.
    with MongoClient(services.settings.mongo_url) as mongo:
        stored = mongo[f"gatewayid_{gw}"]["calculations"].count_documents({"tax": 8_800_000.0})
    assert stored >= 5


def test_mcp_refuses_bad_keys_and_unknown_tools(live_stack: LiveStack, hometax: Hometax) -> None:
    data = hometax.data
    assert eventually(lambda: data.get("/ai-gateway/_health").status_code == 200, timeout=120, interval=0.2)
    missing = data.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    unknown = data.post("/mcp", headers={"apikey": "imp_prod_" + "x" * 43}, json={"jsonrpc": "2.0", "id": 1})
    assert unknown.status_code == 401

    async def call_unknown() -> str:
        http, transport = mcp_session(live_stack, hometax.key)
        async with http, McpClient(transport) as client:
            try:
                await client.call_tool("noSuchTool", {})
            except MCPError as exc:
                return str(exc)
        return "no error"

    assert "Unknown tool 'noSuchTool'" in asyncio.run(call_unknown())
    assert data.get("/definitely/not/here").json()["error"]["code"] == "not_found"


def test_tool_calls_count_against_the_keys_rate_limit_with_its_http_calls(
    live_stack: LiveStack, hometax: Hometax
) -> None:
    api, data, gw = hometax.api, hometax.data, hometax.gw
    app_id = api.post("/v1/applications", json={"name": "limited-agent"}).json()["applicationId"]
    limit = {"count": 3, "windowSeconds": 600}
    grant = api.post(
        f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "prod", "rateLimit": limit}
    )
    assert grant.status_code == 201, grant.text
    key = grant.json()["apiKey"]
    assert eventually(lambda: "calculateTax" in {t.name for t in mcp_tools(live_stack, key)}, timeout=30)

    async def call_until_limited() -> tuple[list[Any], Any]:
        http, transport = mcp_session(live_stack, key)
        async with http, McpClient(transport) as client:
            answers: list[Any] = []
            for _ in range(20):  # 3 may pass; a replica that has not yet seen the new key answers 401
                answer: Any = await client.call_tool("calculateTax", ARGS)
                answers.append(answer)
                if answer.is_error and "Rate limit exceeded" in answer.content[0].text:
                    return answers, answer
                await asyncio.sleep(0.2)
            return answers, None

    answers, limited = asyncio.run(call_until_limited())
    assert limited is not None, [a.content[0].text[:120] for a in answers]
    passed = [a for a in answers if not a.is_error]
    assert 1 <= len(passed) <= 3, "the grant allows 3 calls per window, tool calls included"
    assert "3 requests per 600 s for this API key" in limited.content[0].text
    over_http = data.post(f"/{gw}/prod/calculateTax", json=ARGS, headers={"apikey": key})
    assert over_http.status_code == 429, "HTTP calls share the counter the tool calls filled"
    assert over_http.json()["error"]["code"] == "rate_limited"


def mcp_tools(live_stack: LiveStack, key: str) -> list[Any]:
    async def listed() -> list[Any]:
        http, transport = mcp_session(live_stack, key)
        async with http, McpClient(transport) as client:
            return list((await client.list_tools()).tools)

    return asyncio.run(listed())


def test_registry_renames_and_pins_tools_and_revocation_closes_mcp(
    live_stack: LiveStack, hometax: Hometax
) -> None:
    api, gw, data = hometax.api, hometax.gw, hometax.data
    name = f"hometax_tax_{gw[-6:]}"
    entry = {
        "name": name,
        "description": "Income tax for Korean residents.",
        "gatewayId": gw,
        "environment": "prod",
        "function": "calculateTax",
    }
    created = api.post("/v1/ai-gateway/mcp-tools", json=entry)
    assert created.status_code == 201, created.text
    assert created.json()["inputSchemaFrom"] == "function"
    assert set(created.json()["inputSchema"]["properties"]) == {"income", "deductions"}
    assert api.post("/v1/ai-gateway/mcp-tools", json=entry).status_code == 409
    assert api.post("/v1/ai-gateway/mcp-tools", json={**entry, "name": "bad name!"}).status_code == 422
    assert (
        api.post("/v1/ai-gateway/mcp-tools", json={**entry, "name": "x", "function": "nope"}).status_code
        == 404
    )
    assert (
        api.post(
            "/v1/ai-gateway/mcp-tools", json={**entry, "name": "y", "inputSchema": {"type": 3}}
        ).status_code
        == 422
    )
    assert [t["name"] for t in api.get("/v1/ai-gateway/mcp-tools").json()].count(name) == 1

    def renamed() -> bool:
        names = {t.name: t for t in mcp_tools(live_stack, hometax.key)}
        return name in names and "calculateTax" not in names

    assert eventually(renamed, timeout=10, interval=0.2)
    tool = {t.name: t for t in mcp_tools(live_stack, hometax.key)}[name]
    assert tool.description == "Income tax for Korean residents."
    assert api.delete(f"/v1/ai-gateway/mcp-tools/{name}").status_code == 200
    assert api.delete(f"/v1/ai-gateway/mcp-tools/{name}").status_code == 404

    # A second key, on dev, sees dev's tools; revoking it closes /mcp within a second.
    app_id = api.post("/v1/applications", json={"name": "dev-view"}).json()["applicationId"]
    grant = api.post(f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "dev"}).json()
    assert {t.name for t in mcp_tools(live_stack, grant["apiKey"])} == {"calculateTax", "failing"}
    assert api.delete(f"/v1/applications/{app_id}/grants/{grant['grantId']}").status_code in (200, 202, 204)
    assert eventually(
        lambda: data.post("/mcp", headers={"apikey": grant["apiKey"]}, json={}).status_code == 401,
        timeout=1.0,
        interval=0.02,
    ), "a revoked key still opened /mcp after a second"


def test_chat_cap_parallel_calls_tool_errors_and_provider_failures(
    hometax: Hometax, llm_server: ScriptedLLMServer
) -> None:
    data, key = hometax.data, {"apikey": hometax.key}
    ask = {"messages": [{"role": "user", "content": "compute"}]}
    llm_server.script(
        "openai",
        [ToolCalls(("calculateTax", ARGS), ("failing", {"x": 1})), Text("one worked, one failed")],
    )
    body = data.post("/ai-gateway/chat", headers=key, json={**ask, "provider": "openai"}).json()
    assert [(c["name"], c["isError"]) for c in body["toolCalls"]] == [
        ("calculateTax", False),
        ("failing", True),
    ]
    assert "ValueError" in json.dumps(llm_server.requests("openai")[1].body)

    llm_server.script("anthropic", [ToolCalls(("calculateTax", ARGS))] * 5)
    capped = data.post(
        "/ai-gateway/chat", headers=key, json={**ask, "provider": "anthropic", "maxToolCalls": 2}
    )
    assert capped.status_code == 200
    assert capped.json()["choices"][0]["finish_reason"] == "tool_calls_limit"
    assert len(capped.json()["toolCalls"]) == 2

    llm_server.script("local", [HttpError(500, "the model server fell over")] * 3)
    failed = data.post("/ai-gateway/chat", headers=key, json={**ask, "provider": "local"})
    assert failed.status_code == 502, failed.text
    assert "fell over" in failed.json()["error"]["message"]
    assert "requestId" in failed.json()["error"]

    assert data.post("/ai-gateway/chat", headers=key, json={"messages": []}).status_code == 422
    assert data.post("/ai-gateway/chat", json=ask).status_code == 401
    assert data.get("/ai-gateway/chat", headers=key).status_code == 405


def test_deleted_functions_leave_the_tool_list_empty(live_stack: LiveStack, hometax: Hometax) -> None:
    """Runs last in this module: it deletes the gateway's functions."""
    for name in ("calculateTax", "failing"):
        assert hometax.api.delete(f"/v1/api-gateways/{hometax.gw}/functions/{name}").status_code == 200
    assert eventually(lambda: mcp_tools(live_stack, hometax.key) == [], timeout=10, interval=0.2)
