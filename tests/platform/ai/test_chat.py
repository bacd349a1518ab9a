"""The chat tool loop over fakes of its two seams (``ChatProvider``, ``ToolInvoker``): parallel
calls, tool errors, unknown tools, bad arguments, the call cap, provider choice and request checks.
The adaptors themselves are tested against the real SDKs (test_*_provider.py) and the whole loop
through the Serve app in tests/e2e/test_hometax_walkthrough.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from imprun.ai.chat import ChatService, parse_chat_request
from imprun.ai.dispatch import Caller, ToolOutcome, call_tool, schema_violation
from imprun.ai.providers import AssistantTurn, ChatMessage, ProviderKind, ToolCall, ToolSpec
from imprun.ai.tools import Tool
from imprun.errors import Invalid, Unavailable

SCHEMA = {
    "type": "object",
    "properties": {"income": {"type": "number"}, "deductions": {"type": "number"}},
    "required": ["income"],
}
TAX = Tool("calculateTax", "Flat tax.", SCHEMA, "hometax", "prod", "calculateTax")


class ScriptedProvider:
    kind = ProviderKind.OPENAI

    def __init__(self, turns: Sequence[AssistantTurn]) -> None:
        self.turns = list(turns)
        self.seen: list[list[ChatMessage]] = []
        self.tools: list[list[ToolSpec]] = []

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str | None = None
    ) -> AssistantTurn:
        self.seen.append(list(messages))
        self.tools.append(list(tools))
        return self.turns.pop(0)

    async def close(self) -> None:
        pass


CALLER = Caller("imp_dev_chat-key", "10.0.0.8")


class TaxInvoker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callers: list[Caller] = []

    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        self.calls.append((tool.function, dict(arguments)))
        self.callers.append(caller)
        if arguments.get("income", 0) < 0:
            return ToolOutcome(500, {"error": {"code": "internal", "message": "negative"}}, 1.0, "internal")
        tax = (arguments["income"] - arguments.get("deductions", 0)) * 0.22
        return ToolOutcome(200, {"tax": tax}, 1.0)


def call(i: int, arguments: dict[str, Any], name: str = "calculateTax", error: str = "") -> ToolCall:
    return ToolCall(f"call_{i}", name, arguments, error)


def run(service: ChatService, body: dict[str, Any], tools: Sequence[Tool] = (TAX,)) -> dict[str, Any]:
    request = parse_chat_request(body, cap=service.max_tool_calls)
    return asyncio.run(service.chat(request, tools, "req", CALLER))


USER = {"messages": [{"role": "user", "content": "tax?"}]}


def test_parallel_calls_run_and_their_results_go_back_together() -> None:
    provider = ScriptedProvider(
        [
            AssistantTurn("", (call(1, {"income": 100}), call(2, {"income": 200, "deductions": 100}))),
            AssistantTurn("22 and 22", model="m"),
        ]
    )
    invoker = TaxInvoker()
    answer = run(ChatService({ProviderKind.OPENAI: provider}, invoker), USER)
    assert answer["choices"][0]["message"]["content"] == "22 and 22"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert [(c["name"], c["result"], c["isError"]) for c in answer["toolCalls"]] == [
        ("calculateTax", {"tax": 22.0}, False),
        ("calculateTax", {"tax": 22.0}, False),
    ]
    tool_message = provider.seen[1][-1]
    assert tool_message.role == "tool"
    assert [r.call_id for r in tool_message.tool_results] == ["call_1", "call_2"]
    assert provider.tools[0] == [ToolSpec("calculateTax", "Flat tax.", SCHEMA)]
    assert invoker.callers == [CALLER, CALLER], "each tool call carries the chat's caller (key, address)"


def test_tool_errors_unknown_tools_and_bad_arguments_are_results_not_failures() -> None:
    provider = ScriptedProvider(
        [
            AssistantTurn(
                "",
                (
                    call(1, {"income": -1}),
                    call(2, {}, name="nope"),
                    call(3, {"income": "lots"}),
                    call(4, {}, error="Expecting value"),
                ),
            ),
            AssistantTurn("sorry"),
        ]
    )
    invoker = TaxInvoker()
    answer = run(ChatService({ProviderKind.OPENAI: provider}, invoker), USER)
    assert [c["isError"] for c in answer["toolCalls"]] == [True, True, True, True]
    assert invoker.calls == [("calculateTax", {"income": -1})], "only the well-formed call ran"
    results = provider.seen[1][-1].tool_results
    assert "negative" in results[0].content and results[0].is_error
    assert "Unknown tool 'nope'" in results[1].content
    assert "income" in results[2].content and "invalid arguments" in results[2].content
    assert "not a JSON object" in results[3].content


def test_a_model_that_keeps_calling_tools_is_stopped_at_the_cap() -> None:
    provider = ScriptedProvider([AssistantTurn("", (call(i, {"income": i}),)) for i in range(10)])
    invoker = TaxInvoker()
    answer = run(
        ChatService({ProviderKind.OPENAI: provider}, invoker, max_tool_calls=8), {**USER, "maxToolCalls": 3}
    )
    assert len(invoker.calls) == 3
    assert answer["choices"][0]["finish_reason"] == "tool_calls_limit"
    assert "limit of 3 tool calls" in answer["choices"][0]["message"]["content"]


def test_no_provider_configured_is_a_503_naming_the_settings() -> None:
    service = ChatService({}, TaxInvoker())
    with pytest.raises(Unavailable, match="IMPRUN_OPENAI_API_KEY"):
        service.provider_for(None)
    configured = ChatService({ProviderKind.OPENAI: ScriptedProvider([])}, TaxInvoker())
    with pytest.raises(Unavailable, match="IMPRUN_ANTHROPIC_API_KEY"):
        configured.provider_for(ProviderKind.ANTHROPIC)
    assert configured.provider_for(None).kind is ProviderKind.OPENAI


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"messages": []},
        {"messages": [{"role": "system", "content": "only system"}]},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": 3}]},
        {**USER, "provider": "gemini"},
        {**USER, "maxToolCalls": 99},
        {**USER, "maxToolCalls": True},
        {**USER, "temperature": 1},
    ],
)
def test_bad_chat_requests_are_invalid(body: Any) -> None:
    with pytest.raises(Invalid):
        parse_chat_request(body, cap=8)


def test_schema_violation_names_the_field() -> None:
    assert schema_violation(SCHEMA, {"income": 1}) is None
    assert "income" in (schema_violation(SCHEMA, {}) or "")
    assert (schema_violation(SCHEMA, {"income": "x"}) or "").startswith("income:")
    assert "invalid" in (schema_violation({"type": "nonsense"}, {}) or "")


def test_a_tool_that_does_not_answer_in_time_is_a_timeout_result() -> None:
    class Slow:
        async def invoke(self, *args: Any) -> ToolOutcome:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    outcome = asyncio.run(call_tool(Slow(), TAX, {"income": 1}, "r", CALLER, timeout_seconds=0.05))
    assert outcome.is_error and outcome.status == 504 and outcome.error == "timeout"
