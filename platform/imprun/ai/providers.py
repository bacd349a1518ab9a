"""The ``ChatProvider`` Protocol: one LLM turn with tools, whatever the provider's wire format.

The chat loop (``imprun.ai.chat``) keeps the conversation in this module's neutral types and asks a
provider for the next assistant turn; each adaptor (``imprun.ai.openai_provider`` for OpenAI and any
OpenAI-compatible local server, ``imprun.ai.anthropic_provider`` for Anthropic) translates to and from
its SDK. Tool input schemas are passed through whole. Adaptors retry 429/5xx with backoff (their SDK's
``max_retries``), bound each call by ``timeout_seconds``, and raise ``imprun.errors.UpstreamFailed``
with the provider's message — never key material — when the provider still fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

__all__ = [
    "AssistantTurn",
    "ChatMessage",
    "ChatProvider",
    "ProviderConfig",
    "ProviderKind",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
]


class ProviderKind(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    LOCAL = "local"  # any OpenAI-compatible base URL (vLLM, Ollama, ...)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as offered to a model: its name, description and JSON Schema of the arguments."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for; ``id`` is the provider's, echoed back with the result.

    ``arguments_error`` is set (and ``arguments`` empty) when the model's arguments were not a JSON
    object; the chat loop answers such a call with a tool error instead of running the tool.
    """

    id: str
    name: str
    arguments: Mapping[str, Any]
    arguments_error: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call returned, as text for the model (JSON text when the result is JSON)."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the neutral conversation.

    ``system``/``user``/``assistant`` carry ``content``; an assistant turn that called tools carries
    ``tool_calls`` too; ``tool`` messages carry the ``tool_results`` of the previous assistant turn
    (one message for all of them, so parallel calls stay together).
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True, slots=True)
class AssistantTurn:
    """The model's answer: text, tool calls, or both; ``stop_reason`` as the provider said it;
    the tokens the provider's ``usage`` reported for the call (0 when it reported none)."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one provider; ``api_key`` is never logged nor put in an error message."""

    kind: ProviderKind
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    max_tokens: int = 1024
    models: tuple[str, ...] = ()
    """Models a request may name besides ``model`` (the allow-list; ``model`` is always on it)."""

    @property
    def allowed_models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.model, *self.models)))


class ChatProvider(Protocol):
    """One provider behind its SDK."""

    kind: ProviderKind

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str | None = None
    ) -> AssistantTurn:
        """The next assistant turn for ``messages`` with ``tools`` offered; raises ``UpstreamFailed``."""
        ...

    async def close(self) -> None: ...
