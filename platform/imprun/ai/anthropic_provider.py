"""The Anthropic Messages adaptor.

``AnthropicChatProvider`` turns the neutral conversation of ``imprun.ai.providers`` into a Messages
request: system messages become the ``system`` parameter; an assistant turn that called tools carries
one ``tool_use`` block per call; the results of those calls go back as one user message of
``tool_result`` blocks (``tool_use_id``, ``content``, ``is_error``), so parallel calls stay together.
Consecutive messages of the same role are merged into one (the API wants user and assistant turns to
alternate) and empty text is left out (the API refuses empty text blocks). Tools are offered with
their JSON Schemas whole as ``input_schema``; the response's ``text`` and ``tool_use`` blocks and its
``stop_reason`` become an ``AssistantTurn``. Retries on 429/5xx with backoff and the per-call deadline
are the SDK's own; what still fails becomes ``UpstreamFailed`` through ``imprun.ai.provider_errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

import anthropic
from anthropic.types import ContentBlockParam, Message, MessageParam, ToolParam

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

__all__ = ["AnthropicChatProvider"]


class AnthropicChatProvider:
    """Anthropic's Messages API behind ``anthropic.AsyncAnthropic``."""

    kind = ProviderKind.ANTHROPIC

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._client = anthropic.AsyncAnthropic(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
        )

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str | None = None
    ) -> AssistantTurn:
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        wire_tools = [_tool_param(tool) for tool in tools]
        try:
            answer = await self._client.messages.create(
                model=model or self._config.model,
                max_tokens=self._config.max_tokens,
                system=system or anthropic.omit,
                messages=_wire_messages(messages),
                tools=wire_tools or anthropic.omit,
            )
        except anthropic.AnthropicError as exc:
            raise self._failure(exc) from exc
        return _assistant_turn(answer)

    async def close(self) -> None:
        await self._client.close()

    def _failure(self, exc: Exception) -> UpstreamFailed:
        return translate_sdk_error(
            exc,
            "anthropic",
            api_key=self._config.api_key,
            timeout_seconds=self._config.timeout_seconds,
            timeout_error=anthropic.APITimeoutError,
            connection_error=anthropic.APIConnectionError,
        )


def _tool_param(tool: ToolSpec) -> ToolParam:
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": dict(tool.input_schema),
    }


def _blocks(message: ChatMessage) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    if message.content and message.role != "tool":
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)})
    for result in message.tool_results:
        blocks.append(
            {
                "type": "tool_result",
                "tool_use_id": result.call_id,
                "content": result.content,
                "is_error": result.is_error,
            }
        )
    return blocks


def _wire_messages(messages: Sequence[ChatMessage]) -> list[MessageParam]:
    wire: list[MessageParam] = []
    roles: list[str] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks = _blocks(message)
        if not blocks:
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if roles and roles[-1] == role:
            previous = wire[-1]["content"]
            assert isinstance(previous, list)  # every content this function builds is a block list
            previous.extend(blocks)
        elif role == "assistant":
            wire.append({"role": "assistant", "content": blocks})
            roles.append(role)
        else:
            wire.append({"role": "user", "content": blocks})
            roles.append(role)
    return wire


def _assistant_turn(answer: Message) -> AssistantTurn:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in answer.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, dict(block.input)))
    return AssistantTurn(
        content="".join(texts),
        tool_calls=tuple(calls),
        stop_reason=answer.stop_reason or "",
        model=answer.model,
        input_tokens=answer.usage.input_tokens,
        output_tokens=answer.usage.output_tokens,
    )
