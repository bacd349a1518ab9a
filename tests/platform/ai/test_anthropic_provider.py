"""``AnthropicChatProvider`` against the scripted Messages endpoint, through the real SDK.

Asserts the turn read back (text, ``tool_use`` blocks, ``stop_reason``) and the Messages request sent:
``system`` apart, tool calls and results as blocks with their ids, roles alternating; then failures.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from imprun.ai.anthropic_provider import AnthropicChatProvider
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
from tests.platform.ai.test_openai_provider import QUESTION, TAX_SCHEMA, TAX_TOOL

API_KEY = "sk-ant-test-0123456789abcdefSECRET"


def complete(
    config: ProviderConfig, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (TAX_TOOL,)
) -> AssistantTurn:
    return run_turn(AnthropicChatProvider(config), messages, tools)


def config_for(server: ScriptedLLMServer, **overrides: object) -> ProviderConfig:
    values: dict[str, object] = {
        "kind": ProviderKind.ANTHROPIC,
        "model": "claude-test",
        "api_key": API_KEY,
        "base_url": server.base_url("anthropic"),
        "timeout_seconds": 10.0,
        "max_retries": 2,
        "max_tokens": 321,
    }
    values.update(overrides)
    return ProviderConfig(**values)  # type: ignore[arg-type]


def test_text_answer_with_the_system_prompt_apart(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [Text("The tax is 8,800,000 KRW.")])

    turn = complete(config_for(llm_server), QUESTION, tools=())

    assert turn == AssistantTurn(
        "The tax is 8,800,000 KRW.", (), "end_turn", "claude-test", input_tokens=10, output_tokens=5
    )
    (sent,) = llm_server.requests("anthropic")
    assert sent.path == "/anthropic/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"  # how anthropic 2.x sends api_key
    assert "anthropic-version" in sent.headers
    assert sent.body["model"] == "claude-test" and sent.body["max_tokens"] == 321
    assert sent.body["system"] == "You are a tax bot."
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Tax on 50M with 10M off?"}]}
    ]
    assert "tools" not in sent.body


def test_single_tool_call_with_the_schema_passed_whole(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [ToolCalls(("calculateTax", {"income": 50_000_000}), ids=["toolu_A"])])

    turn = complete(config_for(llm_server), QUESTION)

    assert turn.stop_reason == "tool_use" and turn.content == ""
    (call,) = turn.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == ("toolu_A", "calculateTax", {"income": 50_000_000})
    (sent,) = llm_server.requests("anthropic")
    assert sent.body["tools"] == [
        {"name": "calculateTax", "description": "Flat 22 % tax.", "input_schema": TAX_SCHEMA}
    ]


def test_parallel_tool_calls_and_their_results_on_the_next_turn(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(
        "anthropic",
        [
            ToolCalls(("calculateTax", {"income": 1}), ("calculateTax", {"income": 2}), text="Two at once."),
            Text("1 costs 0.22, 2 failed."),
        ],
    )
    config = config_for(llm_server)

    first = complete(config, QUESTION)
    assert first.content == "Two at once."
    one, two = first.tool_calls
    assert [dict(one.arguments), dict(two.arguments)] == [{"income": 1}, {"income": 2}]
    results = (ToolResult(one.id, '{"tax": 0.22}'), ToolResult(two.id, "income too small", is_error=True))
    conversation = (
        *QUESTION,
        ChatMessage("assistant", first.content, tool_calls=first.tool_calls),
        ChatMessage("tool", tool_results=results),
    )
    second = complete(config, conversation)

    assert second == AssistantTurn(
        "1 costs 0.22, 2 failed.", (), "end_turn", "claude-test", input_tokens=10, output_tokens=5
    )
    sent = llm_server.requests("anthropic")[1].body["messages"]
    assert sent[1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Two at once."},
                {"type": "tool_use", "id": one.id, "name": "calculateTax", "input": {"income": 1}},
                {"type": "tool_use", "id": two.id, "name": "calculateTax", "input": {"income": 2}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": one.id, "content": '{"tax": 0.22}', "is_error": False},
                {
                    "type": "tool_result",
                    "tool_use_id": two.id,
                    "content": "income too small",
                    "is_error": True,
                },
            ],
        },
    ]


def test_consecutive_user_messages_are_merged(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [Text("ok")])
    results = (ToolResult("toolu_X", "42"),)
    conversation = (
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "", tool_calls=()),  # empty: left out
        ChatMessage("tool", tool_results=results),
        ChatMessage("user", "and now?"),
    )

    complete(config_for(llm_server), conversation)

    (sent,) = llm_server.requests("anthropic")
    assert "system" not in sent.body
    assert sent.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "tool_result", "tool_use_id": "toolu_X", "content": "42", "is_error": False},
                {"type": "text", "text": "and now?"},
            ],
        }
    ]


def test_429_is_retried_then_answers(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(
        "anthropic", [HttpError(429, "Number of requests has exceeded your rate limit"), Text("ok")]
    )

    turn = complete(config_for(llm_server), QUESTION)

    assert turn.content == "ok"
    assert len(llm_server.requests("anthropic")) == 2


def test_overloaded_until_retries_run_out_is_upstream_failed(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [HttpError(529, "Overloaded")] * 2)

    with pytest.raises(UpstreamFailed) as failed:
        complete(config_for(llm_server, max_retries=1), QUESTION)

    assert failed.value.status == 502
    assert failed.value.message == "anthropic answered 529: Overloaded"
    assert len(llm_server.requests("anthropic")) == 2


def test_401_message_is_the_providers_without_the_key(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [HttpError(401, f"invalid x-api-key: {API_KEY}")])

    with pytest.raises(UpstreamFailed) as failed:
        complete(config_for(llm_server), QUESTION)

    assert failed.value.message == "anthropic answered 401: invalid x-api-key: [redacted]"
    assert len(llm_server.requests("anthropic")) == 1


def test_connection_refused_is_upstream_failed() -> None:
    config = ProviderConfig(
        ProviderKind.ANTHROPIC,
        "claude-test",
        API_KEY,
        base_url=f"http://127.0.0.1:{free_port()}",
        max_retries=0,
    )

    with pytest.raises(UpstreamFailed) as failed:
        complete(config, QUESTION)

    assert failed.value.message.startswith("anthropic failed: could not connect")
    assert API_KEY not in failed.value.message


def test_timeout_is_upstream_failed(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("anthropic", [Text("too late", delay=30)])

    with pytest.raises(UpstreamFailed) as failed:
        complete(config_for(llm_server, timeout_seconds=2, max_retries=0), QUESTION)

    assert failed.value.message == "anthropic failed: no answer within 2 s"
    assert eventually(lambda: len(llm_server.requests("anthropic")) == 1, timeout=5)
