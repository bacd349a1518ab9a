"""``open_provider`` picks the adaptor by kind; ``local`` answers through the OpenAI adaptor."""

from __future__ import annotations

import asyncio

import pytest

from imprun.ai.anthropic_provider import AnthropicChatProvider
from imprun.ai.openai_provider import OpenAIChatProvider
from imprun.ai.provider_factory import open_provider
from imprun.ai.providers import ChatMessage, ProviderConfig, ProviderKind
from tests.fixtures.llm_servers import ScriptedLLMServer, Text, run_turn


@pytest.mark.parametrize(
    ("kind", "adaptor"),
    [
        (ProviderKind.OPENAI, OpenAIChatProvider),
        (ProviderKind.LOCAL, OpenAIChatProvider),
        (ProviderKind.ANTHROPIC, AnthropicChatProvider),
    ],
)
def test_open_provider_picks_the_adaptor(kind: ProviderKind, adaptor: type) -> None:
    provider = open_provider(ProviderConfig(kind, "some-model", "key", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(provider, adaptor)
    assert provider.kind is kind
    asyncio.run(provider.close())


def test_local_kind_talks_to_an_openai_compatible_url(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("local", [Text("hello from llama")])
    config = ProviderConfig(ProviderKind.LOCAL, "llama3", base_url=llm_server.base_url("local"))

    turn = run_turn(open_provider(config), [ChatMessage("user", "hi")])

    assert turn.content == "hello from llama"
    assert llm_server.requests("local")[0].body["model"] == "llama3"
