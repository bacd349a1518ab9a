"""The OpenAI adaptor (and the ``local`` kind, same wire format) through the real ``openai`` SDK.

Every test scripts the local wire-format server (``tests.fixtures.llm_servers``) and checks both the
``AssistantTurn`` the adaptor returns and the request the SDK really sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from imprun.ai.openai_provider import OpenAIChatProvider
from imprun.ai.providers import (
    AssistantTurn,
    ChatMessage,
    ProviderConfig,
    ProviderKind,
    ToolResult,
    ToolSpec,
)
from imprun.errors import UpstreamFailed
from tests.fixtures.llm_servers import HttpError, ScriptedLLMServer, Text, ToolCalls, run_turn
from tests.fixtures.polling import eventually
from tests.fixtures.services import free_port

API_KEY = "sk-test-0123456789abcdefSECRET"
TAX_SCHEMA = {
    "type": "object",
    "properties": {
        "income": {"type": "number", "minimum": 0, "description": "Yearly income in KRW."},
        "deductions": {"type": "number", "default": 0},
        "region": {"enum": ["seoul", "busan"]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "required": ["income"],
    "additionalProperties": False,
    "$defs": {"item": {"type": "object", "properties": {"label": {"type": "string"}}}},
}
TAX_TOOL = ToolSpec("calculateTax", "Flat 22 % tax.", TAX_SCHEMA)
QUESTION = (ChatMessage("system", "You are a tax bot."), ChatMessage("user", "Tax on 50M with 10M off?"))

ROUTES = [
    pytest.param("openai", ProviderKind.OPENAI, id="openai"),
    pytest.param("local", ProviderKind.LOCAL, id="local"),
]


def complete(
    config: ProviderConfig, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (TAX_TOOL,)
) -> AssistantTurn:
    return run_turn(OpenAIChatProvider(config), messages, tools)


def config_for(
    server: ScriptedLLMServer, route: str, kind: ProviderKind, **overrides: object
) -> ProviderConfig:
    values: dict[str, object] = {
        "kind": kind,
        "model": "gpt-test",
        "api_key": API_KEY if kind is ProviderKind.OPENAI else "",
        "base_url": server.base_url(route),
        "timeout_seconds": 10.0,
        "max_retries": 2,
    }
    values.update(overrides)
    return ProviderConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("route", "kind"), ROUTES)
def test_text_answer(llm_server: ScriptedLLMServer, route: str, kind: ProviderKind) -> None:
    llm_server.script(route, [Text("The tax is 8,800,000 KRW.")])

    turn = complete(config_for(llm_server, route, kind), QUESTION, tools=())

    assert turn == AssistantTurn(
        "The tax is 8,800,000 KRW.", (), "stop", "gpt-test", input_tokens=10, output_tokens=5
    )
    (sent,) = llm_server.requests(route)
    assert sent.path == f"/{route}/v1/chat/completions"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are a tax bot."},
        {"role": "user", "content": "Tax on 50M with 10M off?"},
    ]
    assert "tools" not in sent.body
    expected_key = API_KEY if kind is ProviderKind.OPENAI else "no-key"  # local: the SDK needs some key
    assert sent.headers["authorization"] == f"Bearer {expected_key}"


@pytest.mark.parametrize(("route", "kind"), ROUTES)
def test_single_tool_call_with_the_schema_passed_whole(
    llm_server: ScriptedLLMServer, route: str, kind: ProviderKind
) -> None:
    llm_server.script(route, [ToolCalls(("calculateTax", {"income": 50_000_000, "deductions": 10_000_000}))])

    turn = complete(config_for(llm_server, route, kind), QUESTION)

    assert turn.stop_reason == "tool_calls"
    (call,) = turn.tool_calls
    assert call.name == "calculateTax"
    assert call.arguments == {"income": 50_000_000, "deductions": 10_000_000}
    assert call.id.startswith("call_") and call.arguments_error == ""
    (sent,) = llm_server.requests(route)
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {"name": "calculateTax", "description": "Flat 22 % tax.", "parameters": TAX_SCHEMA},
        }
    ]


@pytest.mark.parametrize(("route", "kind"), ROUTES)
def test_parallel_tool_calls_and_their_results_on_the_next_turn(
    llm_server: ScriptedLLMServer, route: str, kind: ProviderKind
) -> None:
    llm_server.script(
        route,
        [
            ToolCalls(("calculateTax", {"income": 1}), ("calculateTax", {"income": 2}), text="Two at once."),
            Text("1 costs 0.22, 2 failed."),
        ],
    )
    config = config_for(llm_server, route, kind)

    first = complete(config, QUESTION)
    assert first.content == "Two at once."
    assert [(c.name, dict(c.arguments)) for c in first.tool_calls] == [
        ("calculateTax", {"income": 1}),
        ("calculateTax", {"income": 2}),
    ]
    one, two = first.tool_calls
    results = (ToolResult(one.id, '{"tax": 0.22}'), ToolResult(two.id, "income too small", is_error=True))
    conversation = (
        *QUESTION,
        ChatMessage("assistant", first.content, tool_calls=first.tool_calls),
        ChatMessage("tool", tool_results=results),
    )
    second = complete(config, conversation)

    assert second.content == "1 costs 0.22, 2 failed." and second.tool_calls == ()
    sent = llm_server.requests(route)[1].body["messages"]
    assert sent[2]["role"] == "assistant" and sent[2]["content"] == "Two at once."
    assert [
        (c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in sent[2]["tool_calls"]
    ] == [
        (one.id, "function", "calculateTax", {"income": 1}),
        (two.id, "function", "calculateTax", {"income": 2}),
    ]
    assert sent[3:] == [
        {"role": "tool", "tool_call_id": one.id, "content": '{"tax": 0.22}'},
        {"role": "tool", "tool_call_id": two.id, "content": "income too small"},
    ]


def test_malformed_arguments_become_an_arguments_error(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("openai", [ToolCalls(("calculateTax", '{"income": 5'), ("calculateTax", "[1, 2]"))])

    turn = complete(config_for(llm_server, "openai", ProviderKind.OPENAI), QUESTION)

    broken, listed = turn.tool_calls
    assert broken.arguments == {} and "not valid JSON" in broken.arguments_error
    assert listed.arguments == {} and listed.arguments_error == "arguments must be an object, not list"


def test_429_is_retried_then_answers(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("openai", [HttpError(429, "Rate limit reached for gpt-test"), Text("fine now")])

    turn = complete(config_for(llm_server, "openai", ProviderKind.OPENAI), QUESTION)

    assert turn.content == "fine now"
    assert len(llm_server.requests("openai")) == 2


def test_500_until_retries_run_out_is_upstream_failed(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(
        "openai", [HttpError(500, "The server had an error while processing your request.")] * 3
    )

    with pytest.raises(UpstreamFailed) as failed:
        complete(config_for(llm_server, "openai", ProviderKind.OPENAI, max_retries=2), QUESTION)

    assert failed.value.status == 502
    assert (
        failed.value.message == "openai answered 500: The server had an error while processing your request."
    )
    assert len(llm_server.requests("openai")) == 3  # the first try and two retries
    assert llm_server.pending("openai") == 0


def test_401_message_is_the_providers_without_the_key(llm_server: ScriptedLLMServer) -> None:
    echo = f"Incorrect API key provided: {API_KEY}. Also seen as {API_KEY[:6]}...{API_KEY[-8:]}."
    llm_server.script("openai", [HttpError(401, echo)])

    with pytest.raises(UpstreamFailed) as failed:
        complete(config_for(llm_server, "openai", ProviderKind.OPENAI), QUESTION)

    message = failed.value.message
    assert message.startswith("openai answered 401: Incorrect API key provided: ")
    assert API_KEY not in message and "SECRET" not in message and "0123456789" not in message
    assert len(llm_server.requests("openai")) == 1  # 401 is not retried


def test_connection_refused_is_upstream_failed() -> None:
    config = ProviderConfig(
        ProviderKind.LOCAL, "llama", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0
    )

    with pytest.raises(UpstreamFailed) as failed:
        complete(config, QUESTION)

    assert failed.value.status == 502
    assert failed.value.message.startswith("local model failed: could not connect")


def test_timeout_is_upstream_failed(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("openai", [Text("too late", delay=30)])
    config = config_for(llm_server, "openai", ProviderKind.OPENAI, timeout_seconds=2, max_retries=0)

    with pytest.raises(UpstreamFailed) as failed:
        complete(config, QUESTION)

    assert failed.value.message == "openai failed: no answer within 2 s"
    assert eventually(lambda: len(llm_server.requests("openai")) == 1, timeout=5)
