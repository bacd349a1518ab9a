"""The OpenAI Chat Completions adaptor, also used for any OpenAI-compatible local server.

``OpenAIChatProvider`` turns the neutral conversation of ``imprun.ai.providers`` into Chat
Completions messages — assistant ``tool_calls`` with JSON-string arguments, one ``role: "tool"``
message per tool result with its ``tool_call_id`` — offers the tools as ``function`` tools with their
JSON Schemas whole, and reads ``choices[0].message`` back into an ``AssistantTurn``. Retries on
429/5xx with backoff and the per-call deadline are the SDK's own (``max_retries``, ``timeout``); what
still fails becomes ``UpstreamFailed`` through ``imprun.ai.provider_errors``.

Chat Completions has no error flag on tool results, so a failed tool's ``content`` must say so
itself (the chat loop writes it). Arguments the model sent that are not a JSON object are not
guessed at: the call comes back with empty ``arguments`` and ``arguments_error`` set, so the loop
answers it with a tool error the model can correct, rather than running the tool without input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)

from imprun.ai.provider_errors import translate_sdk_error
from imprun.ai.providers import (
    AssistantTurn,
    ChatMessage,
    ProviderConfig,
    ProviderKind,
    ToolCall,
    ToolSpec,
)
from imprun.errors import UpstreamFailed

__all__ = ["OpenAIChatProvider"]

# The SDK refuses to start without a key; local OpenAI-compatible servers usually need none.
LOCAL_PLACEHOLDER_KEY = "no-key"


class OpenAIChatProvider:
    """One OpenAI (or OpenAI-compatible) endpoint behind ``openai.AsyncOpenAI``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.kind = config.kind
        self._config = config
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key or LOCAL_PLACEHOLDER_KEY,
            base_url=config.base_url,
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
        )

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str | None = None
    ) -> AssistantTurn:
        wire_tools = [_tool_param(tool) for tool in tools]
        try:
            completion = await self._client.chat.completions.create(
                model=model or self._config.model,
                messages=_wire_messages(messages),
                tools=wire_tools or openai.omit,
            )
        except openai.OpenAIError as exc:
            raise self._failure(exc) from exc
        return _assistant_turn(completion)

    async def close(self) -> None:
        await self._client.close()

    def _failure(self, exc: Exception) -> UpstreamFailed:
        return translate_sdk_error(
            exc,
            "local model" if self.kind is ProviderKind.LOCAL else "openai",
            api_key=self._config.api_key,
            timeout_seconds=self._config.timeout_seconds,
            timeout_error=openai.APITimeoutError,
            connection_error=openai.APIConnectionError,
        )


def _tool_param(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.input_schema),
        },
    }


def _wire_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    wire: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            wire.append({"role": "system", "content": message.content})
        elif message.role == "user":
            wire.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
                }
                for call in message.tool_calls
            ]
            if calls:
                wire.append({"role": "assistant", "content": message.content or None, "tool_calls": calls})
            else:
                wire.append({"role": "assistant", "content": message.content})
        else:
            for result in message.tool_results:
                wire.append({"role": "tool", "tool_call_id": result.call_id, "content": result.content})
    return wire


def _assistant_turn(completion: ChatCompletion) -> AssistantTurn:
    usage = completion.usage
    input_tokens = usage.prompt_tokens if usage else 0
    output_tokens = usage.completion_tokens if usage else 0
    if not completion.choices:
        return AssistantTurn(
            "", model=completion.model, input_tokens=input_tokens, output_tokens=output_tokens
        )
    choice = completion.choices[0]
    calls = tuple(
        _tool_call(call.id, call.function.name, call.function.arguments)
        for call in choice.message.tool_calls or ()
        if call.type == "function"
    )
    return AssistantTurn(
        content=choice.message.content or "",
        tool_calls=calls,
        stop_reason=choice.finish_reason or "",
        model=completion.model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def _tool_call(call_id: str, name: str, raw_arguments: str) -> ToolCall:
    try:
        arguments: Any = json.loads(raw_arguments) if raw_arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return ToolCall(call_id, name, {}, arguments_error=f"arguments are not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        kind = type(arguments).__name__
        return ToolCall(call_id, name, {}, arguments_error=f"arguments must be an object, not {kind}")
    return ToolCall(call_id, name, arguments)
