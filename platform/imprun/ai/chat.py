"""``POST /ai-gateway/chat``: a tool-calling loop between an LLM provider and the key's tools.

The request ``{messages, provider?, model?, maxToolCalls?}`` is checked (``parse_chat_request``), the
provider chosen (the request's, else the configured default, else the first configured one; none →
503 naming the settings to set), and the loop runs: ask the model with the key's tools offered; when it
answers with tool calls, run them — in parallel when it asked for several at once — through the same
dispatch as MCP (schema check, the function's sandbox, a per-call timeout) and give it the results;
stop when it answers without tool calls. A model that keeps calling tools is stopped at the cap with a
final message saying so. A request may name only a model on its provider's allow-list (the configured
model plus the provider's ``models`` setting; another is a 403 listing them), and, with a
``ChatBudget``, counts against its applications' chat rate and LLM budget (``imprun.ai.chat_budget``):
checked before every provider call, the provider's reported tokens recorded after it. The answer is OpenAI-shaped, plus the trace of tool calls:
``{choices: [{index, message: {role, content}, finish_reason}], toolCalls: [{name, arguments, result,
isError, durationMs}], provider, model}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from imprun.ai.chat_budget import ChatBudget
from imprun.ai.dispatch import Caller, ToolInvoker, ToolOutcome, call_tool
from imprun.ai.providers import (
    AssistantTurn,
    ChatMessage,
    ChatProvider,
    ProviderKind,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from imprun.ai.tools import Tool
from imprun.errors import Forbidden, Invalid, Unavailable
from runtime_actors.shared.errors import error_body

__all__ = ["PROVIDER_SETTINGS", "ChatRequest", "ChatService", "parse_chat_request"]

MAX_MESSAGES: Final = 200
MAX_CONTENT_CHARS: Final = 200_000

PROVIDER_SETTINGS: Final[Mapping[ProviderKind, str]] = {
    ProviderKind.OPENAI: "IMPRUN_OPENAI_API_KEY",
    ProviderKind.ANTHROPIC: "IMPRUN_ANTHROPIC_API_KEY",
    ProviderKind.LOCAL: "IMPRUN_LOCAL_LLM_BASE_URL and IMPRUN_LOCAL_LLM_MODEL",
}
"""The settings that configure each provider (named in the 503 when one is missing)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    provider: ProviderKind | None = None
    model: str | None = None
    max_tool_calls: int | None = None


def parse_chat_request(body: Any, *, cap: int) -> ChatRequest:
    """A ``ChatRequest`` from the JSON body, or ``Invalid`` saying what is wrong."""
    if not isinstance(body, Mapping):
        raise Invalid("The body must be a JSON object with 'messages'.")
    unknown = sorted(set(body) - {"messages", "provider", "model", "maxToolCalls"})
    if unknown:
        raise Invalid(f"Unknown field(s) {unknown}; expected messages, provider, model, maxToolCalls.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid(
            "'messages' must be a non-empty list of {role, content}.", details={"field": "messages"}
        )
    if len(messages) > MAX_MESSAGES:
        raise Invalid(f"At most {MAX_MESSAGES} messages per request.", details={"field": "messages"})
    parsed = tuple(_message(i, m) for i, m in enumerate(messages))
    if all(m.role == "system" for m in parsed):
        raise Invalid("'messages' needs at least one user message.", details={"field": "messages"})
    provider = body.get("provider")
    if provider is not None and provider not in {k.value for k in ProviderKind}:
        raise Invalid(
            f"Unknown provider {provider!r}; use one of {', '.join(k.value for k in ProviderKind)}.",
            details={"field": "provider"},
        )
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip() or len(model) > 200):
        raise Invalid("'model' must be a non-empty string.", details={"field": "model"})
    limit = body.get("maxToolCalls")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= cap):
        raise Invalid(
            f"'maxToolCalls' must be an integer from 0 to {cap}.", details={"field": "maxToolCalls"}
        )
    return ChatRequest(parsed, ProviderKind(provider) if provider else None, model, limit)


def _message(index: int, value: Any) -> ChatMessage:
    where = {"field": f"messages[{index}]"}
    if not isinstance(value, Mapping):
        raise Invalid(f"messages[{index}] must be an object {{role, content}}.", details=where)
    role, content = value.get("role"), value.get("content")
    if role not in ("system", "user", "assistant"):
        raise Invalid(f"messages[{index}].role must be system, user or assistant.", details=where)
    if not isinstance(content, str) or len(content) > MAX_CONTENT_CHARS:
        raise Invalid(
            f"messages[{index}].content must be a string of at most {MAX_CONTENT_CHARS} characters.",
            details=where,
        )
    return ChatMessage(role=role, content=content)


class ChatService:
    def __init__(
        self,
        providers: Mapping[ProviderKind, ChatProvider],
        invoker: ToolInvoker,
        *,
        default_provider: ProviderKind | None = None,
        max_tool_calls: int = 8,
        tool_timeout_seconds: float = 30.0,
        allowed_models: Mapping[ProviderKind, Sequence[str]] | None = None,
        budget: ChatBudget | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._allowed_models = None if allowed_models is None else dict(allowed_models)
        self._budget = budget
        self._invoker = invoker
        self._default = default_provider
        self.max_tool_calls = max_tool_calls
        self._tool_timeout = tool_timeout_seconds

    def provider_for(self, requested: ProviderKind | None) -> ChatProvider:
        """The provider to use, or ``Unavailable`` (503) naming the setting that would configure it."""
        kind = requested or self._default or next(iter(self._providers), None)
        if kind is None:
            raise Unavailable(
                "No LLM provider is configured for the chat endpoint: set "
                + ", or ".join(PROVIDER_SETTINGS.values())
                + " (the MCP endpoint at /mcp works without one)."
            )
        provider = self._providers.get(kind)
        if provider is None:
            raise Unavailable(f"The {kind.value} provider is not configured: set {PROVIDER_SETTINGS[kind]}.")
        return provider

    def checked_provider(self, request: ChatRequest) -> ChatProvider:
        """``provider_for`` the request, or ``Forbidden`` (403) if its model is not on the allow-list."""
        provider = self.provider_for(request.provider)
        if self._allowed_models is None or request.model is None:
            return provider
        allowed = list(self._allowed_models.get(provider.kind, ()))
        if request.model not in allowed:
            raise Forbidden(
                f"The model {request.model!r} is not allowed for the {provider.kind.value} provider; "
                f"use one of: {', '.join(allowed) or 'none'} (or leave 'model' out for the default).",
                details={"field": "model", "allowedModels": allowed},
            )
        return provider

    async def chat(
        self,
        request: ChatRequest,
        tools: Sequence[Tool],
        request_id: str,
        caller: Caller,
        applications: Collection[str] = frozenset(),
    ) -> dict[str, Any]:
        provider = self.checked_provider(request)
        if self._budget is not None:
            self._budget.admit(applications)
        cap = self.max_tool_calls if request.max_tool_calls is None else request.max_tool_calls
        by_name = {tool.name: tool for tool in tools}
        specs = [ToolSpec(t.name, t.description, t.input_schema) for t in tools]
        conversation = list(request.messages)
        trace: list[dict[str, Any]] = []
        while True:
            if self._budget is not None:
                await self._budget.check(applications)
            turn = await provider.complete(conversation, specs, model=request.model)
            if self._budget is not None:
                await self._budget.record(applications, turn)
            if not turn.tool_calls:
                return _answer(provider, turn, turn.content, "stop", trace)
            if len(trace) + len(turn.tool_calls) > cap:
                message = (
                    f"Stopped after {len(trace)} tool call(s): the model asked for more than the limit of "
                    f"{cap} tool calls per request (maxToolCalls)."
                )
                return _answer(provider, turn, message, "tool_calls_limit", trace)
            conversation.append(ChatMessage("assistant", turn.content, tool_calls=turn.tool_calls))
            outcomes = await asyncio.gather(
                *(
                    self._run(call, by_name, f"{request_id}-{len(trace) + i}", caller)
                    for i, call in enumerate(turn.tool_calls)
                )
            )
            conversation.append(
                ChatMessage(
                    "tool",
                    tool_results=tuple(
                        ToolResult(call.id, outcome.as_text(), outcome.is_error)
                        for call, outcome in zip(turn.tool_calls, outcomes, strict=True)
                    ),
                )
            )
            trace.extend(
                {
                    "name": call.name,
                    "arguments": dict(call.arguments),
                    "result": outcome.body,
                    "isError": outcome.is_error,
                    "durationMs": outcome.duration_ms,
                }
                for call, outcome in zip(turn.tool_calls, outcomes, strict=True)
            )

    async def _run(
        self, call: ToolCall, tools: Mapping[str, Tool], request_id: str, caller: Caller
    ) -> ToolOutcome:
        tool = tools.get(call.name)
        if tool is None:
            message = (
                f"Unknown tool {call.name!r}; the available tools are: {', '.join(sorted(tools)) or 'none'}."
            )
            return ToolOutcome(404, error_body("not_found", message), 0.0, "not_found")
        if call.arguments_error:
            message = f"The arguments of {call.name} are not a JSON object: {call.arguments_error}"
            return ToolOutcome(422, error_body("invalid", message), 0.0, "invalid")
        return await call_tool(
            self._invoker, tool, call.arguments, request_id, caller, timeout_seconds=self._tool_timeout
        )


def _answer(
    provider: ChatProvider, turn: AssistantTurn, content: str, finish_reason: str, trace: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "provider": provider.kind.value,
        "model": turn.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
        "toolCalls": trace,
    }
