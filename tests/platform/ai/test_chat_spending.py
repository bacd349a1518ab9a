"""What one application may spend on the chat endpoint: the provider's model allow-list, a chat rate
apart from tool calls, and a budget of LLM calls and tokens per period counted from the providers'
``usage``. The rate and allow-list logic run over fakes of their seams; the budget runs end to end —
the chat HTTP app, the real ``openai`` SDK against the scripted local server, the usage counted in the
real nx-27017 and shown by ``GET /v1/applications/{app}/llm-usage``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from imprun.ai.chat import ChatService, parse_chat_request
from imprun.ai.chat_budget import ChatBudget, ChatLimits
from imprun.ai.http_app import AiGatewayHttp
from imprun.ai.mcp_server import McpEndpoint
from imprun.ai.openai_provider import OpenAIChatProvider
from imprun.ai.providers import AssistantTurn, ProviderConfig, ProviderKind
from imprun.api.app import create_app
from imprun.errors import Forbidden, RateLimited
from imprun.store.llm_usage import LlmUsage, LlmUsageRepository, period_start
from imprun.store.mongo import Mongo, connect_mongo
from tests.fixtures.llm_servers import ScriptedLLMServer, Text
from tests.fixtures.services import RunningServices
from tests.platform.ai.test_chat import CALLER, TAX, USER, ScriptedProvider, TaxInvoker
from tests.platform.ai.test_http_limits import KEY, StubCatalog
from tests.platform.ai.test_mcp_server import DoublingInvoker


class MemoryUsage:
    """An in-memory ``UsageStore`` for the rate-limit logic (the Mongo one is tested below)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], LlmUsage] = {}

    def usage(self, application_id: str, period_start: int) -> LlmUsage:
        return self.counts.get((application_id, period_start), LlmUsage(application_id, period_start))

    def record(
        self,
        application_ids: Iterable[str],
        period_start: int,
        *,
        calls: int,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        for app in application_ids:
            old = self.usage(app, period_start)
            self.counts[(app, period_start)] = LlmUsage(
                app,
                period_start,
                old.calls + calls,
                old.input_tokens + input_tokens,
                old.output_tokens + output_tokens,
            )


def test_a_model_off_the_providers_allow_list_is_403_naming_the_allowed_ones() -> None:
    provider = ScriptedProvider(
        [AssistantTurn("ok", model="gpt-test"), AssistantTurn("ok", model="gpt-mini")]
    )
    service = ChatService(
        {ProviderKind.OPENAI: provider},
        TaxInvoker(),
        allowed_models={ProviderKind.OPENAI: ("gpt-test", "gpt-mini")},
    )

    with pytest.raises(Forbidden) as refused:
        asyncio.run(
            service.chat(parse_chat_request({**USER, "model": "gpt-5-pro"}, cap=8), [TAX], "r", CALLER)
        )
    assert refused.value.details == {"field": "model", "allowedModels": ["gpt-test", "gpt-mini"]}
    assert "gpt-test, gpt-mini" in refused.value.message
    assert provider.seen == []  # refused before the provider was asked

    for body in (USER, {**USER, "model": "gpt-mini"}):
        asyncio.run(service.chat(parse_chat_request(body, cap=8), [TAX], "r", CALLER))
    assert len(provider.seen) == 2


def test_the_chat_rate_is_per_application_and_renews_after_a_minute() -> None:
    now = [1_000_000.0]
    budget = ChatBudget(MemoryUsage(), ChatLimits(requests_per_minute=2), clock=lambda: now[0])
    budget.admit({"app-a"})
    now[0] += 10
    budget.admit({"app-a"})

    with pytest.raises(RateLimited) as limited:
        budget.admit({"app-a"})
    assert limited.value.retry_after == 51  # the first request leaves the window 50 s from now
    budget.admit({"app-b"})  # another application has its own rate

    now[0] += 51
    budget.admit({"app-a"})


def test_a_chat_over_the_rate_is_refused_before_the_provider_is_asked() -> None:
    provider = ScriptedProvider([AssistantTurn("ok", model="m")])
    budget = ChatBudget(MemoryUsage(), ChatLimits(requests_per_minute=1))
    service = ChatService({ProviderKind.OPENAI: provider}, TaxInvoker(), budget=budget)
    request = parse_chat_request(USER, cap=8)
    asyncio.run(service.chat(request, [TAX], "r", CALLER, frozenset({"app"})))

    with pytest.raises(RateLimited):
        asyncio.run(service.chat(request, [TAX], "r", CALLER, frozenset({"app"})))
    assert len(provider.seen) == 1


@pytest.fixture
def sys_db(services: RunningServices) -> Iterator[tuple[Mongo, str]]:
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    name = f"imprun_sys_llm_{uuid.uuid4().hex[:6]}"
    yield mongo, name
    mongo.drop_database(name)
    mongo.close()


@pytest.mark.services
def test_the_budget_counts_the_providers_tokens_and_answers_429_with_retry_after(
    sys_db: tuple[Mongo, str], llm_server: ScriptedLLMServer
) -> None:
    mongo, name = sys_db
    usage = LlmUsageRepository(mongo[name])
    # The scripted server reports 10 input and 5 output tokens per call: two calls spend 30.
    budget = ChatBudget(usage, ChatLimits(calls_per_period=100, tokens_per_period=30, period_seconds=3600))
    config = ProviderConfig(
        ProviderKind.OPENAI, "gpt-test", "sk-test", llm_server.base_url("openai"), 10.0, 0
    )
    provider = OpenAIChatProvider(config)
    chat = ChatService(
        {ProviderKind.OPENAI: provider},
        DoublingInvoker(),
        allowed_models={ProviderKind.OPENAI: config.allowed_models},
        budget=budget,
    )
    catalog = StubCatalog()  # the key's grants belong to application "app"
    app = AiGatewayHttp(catalog, McpEndpoint(catalog, DoublingInvoker()), chat)  # type: ignore[arg-type]
    llm_server.script("openai", [Text("one"), Text("two"), Text("three")])

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            answers = [
                await http.post("/ai-gateway/chat", json={**USER, "model": "gpt-4o"}, headers={"apikey": KEY})
            ]
            for _ in range(3):
                answers.append(await http.post("/ai-gateway/chat", json=USER, headers={"apikey": KEY}))
        await provider.close()
        return answers

    other_model, first, second, over = asyncio.run(scenario())
    assert other_model.status_code == 403, other_model.text
    assert other_model.json()["error"]["details"]["allowedModels"] == ["gpt-test"]
    assert [first.status_code, second.status_code] == [200, 200], second.text
    assert over.status_code == 429, over.text
    error = over.json()["error"]
    assert error["code"] == "rate_limited" and "budget" in error["message"]
    assert error["details"] == {"applicationId": "app", "budget": "tokens", "limit": 30, "used": 30}
    assert 0 < int(over.headers["retry-after"]) <= 3601
    assert len(llm_server.requests("openai")) == 2  # the third chat never reached the provider
    spent = usage.usage("app", budget.period_start())
    assert (spent.calls, spent.input_tokens, spent.output_tokens) == (2, 20, 10)


PASSWORD = "correct-horse-battery"


def _login(client: TestClient) -> dict[str, str]:
    username = f"u-{uuid.uuid4().hex[:8]}"
    assert (
        client.post("/v1/auth/register", json={"username": username, "password": PASSWORD}).status_code == 201
    )
    token = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.services
def test_an_applications_llm_usage_is_shown_to_its_owner(services: RunningServices) -> None:
    settings = services.settings
    assert settings.mongo_url is not None
    with TestClient(create_app(settings)) as client:
        owner = _login(client)
        app = client.post("/v1/applications", json={"name": "chatty"}, headers=owner).json()["applicationId"]
        start = period_start(time.time(), settings.ai_chat_period_seconds)
        mongo = connect_mongo(settings.mongo_url)
        try:
            LlmUsageRepository(mongo[settings.sys_db_name]).record(
                [app], start, calls=3, input_tokens=120, output_tokens=45
            )
        finally:
            mongo.close()

        shown = client.get(f"/v1/applications/{app}/llm-usage", headers=owner)
        hidden = client.get(f"/v1/applications/{app}/llm-usage", headers=_login(client))

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["calls"], body["inputTokens"], body["outputTokens"]) == (3, 120, 45)
    assert body["limits"]["tokensPerPeriod"] == settings.ai_chat_tokens_per_period
    assert hidden.status_code == 404, hidden.text
