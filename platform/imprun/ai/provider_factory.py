"""``open_provider``: the adaptor for a ``ProviderConfig``, so callers never name an SDK.

OpenAI and any OpenAI-compatible local server (``ProviderKind.LOCAL``: vLLM, Ollama, ...) go through
``imprun.ai.openai_provider``; Anthropic through ``imprun.ai.anthropic_provider``. Kept apart from
``imprun.ai.providers`` so that the Protocol and the neutral types import no SDK.
"""

from __future__ import annotations

from imprun.ai.anthropic_provider import AnthropicChatProvider
from imprun.ai.openai_provider import OpenAIChatProvider
from imprun.ai.providers import ChatProvider, ProviderConfig, ProviderKind

__all__ = ["open_provider"]


def open_provider(config: ProviderConfig) -> ChatProvider:
    """A client for ``config``'s provider; the caller closes it (``await provider.close()``)."""
    if config.kind is ProviderKind.ANTHROPIC:
        return AnthropicChatProvider(config)
    return OpenAIChatProvider(config)
