"""``runtime_actors.replica.admission.key_auth``: the API-key gate's decisions, answers and what reaches tenant code.

No services: access documents are built here the way the control plane publishes them (the lookup
hash computed independently with ``hmac``), the rate limiter is a recording fake of the
``RateLimiter`` Protocol (the Redis limiter is tested against redis-server in ``test_rate_limit``),
and the supervisor runs with a recording pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from runtime_actors.replica.admission.key_auth import (
    AccessTable,
    KeyAuthGate,
    KeyHasher,
    Outcome,
    decide,
    presented_key,
)
from runtime_actors.replica.admission.limiter import RateDecision
from runtime_actors.replica.http import HttpResponse, RequestHead
from runtime_actors.replica.log_stream import DiscardLogs
from runtime_actors.replica.supervisor import Supervisor
from runtime_actors.shared.messages import AccessDocuments, Invocation, InvocationResult, PublishedFunction
from runtime_actors.shared.rate_limit import RateLimit, WindowKind

PEPPER = secrets.token_bytes(32)
GW = "shop"


def new_key(environment: str = "dev") -> str:
    return f"imp_{environment}_{secrets.token_urlsafe(32)}"


def lookup_hash(key: str, pepper: bytes = PEPPER) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def consumer(
    credential_id: str, key: str, environment: str = "dev", *, active: Any = True, **extra: Any
) -> dict[str, Any]:
    return {
        "credentialId": credential_id,
        "grantId": f"grant-{credential_id}",
        "applicationId": "app-1",
        "environment": environment,
        "lookupHash": lookup_hash(key),
        "active": active,
        "rateLimit": None,
        **extra,
    }


def access(*consumers: dict[str, Any], environment: dict[str, Any] | None = None) -> AccessDocuments:
    return {"consumers": list(consumers), "environment": environment}


def request(headers: dict[str, str] | None = None, route: str = "/hello", client: str = "") -> RequestHead:
    return RequestHead("GET", route, "", headers or {}, client)


class RecordingLimiter:
    """Refuses a counter after ``allow`` hits; records what it was asked."""

    def __init__(self, allow: int = 1_000) -> None:
        self.allow = allow
        self.hits: list[tuple[str, RateLimit]] = []
        self.closed = False

    async def hit(self, counter: str, limit: RateLimit) -> RateDecision:
        self.hits.append((counter, limit))
        used = sum(1 for c, _ in self.hits if c == counter)
        if used <= self.allow:
            return RateDecision(True, self.allow - used)
        return RateDecision(False, 0, retry_after_s=7)

    async def close(self) -> None:
        self.closed = True


def gate_with(
    documents: AccessDocuments, *, pepper: bytes = PEPPER, limiter: RecordingLimiter | None = None
) -> KeyAuthGate:
    gate = KeyAuthGate(GW, "dev", pepper, limiter)
    gate.update(documents)
    return gate


def admit(gate: KeyAuthGate, head: RequestHead) -> HttpResponse | None:
    return asyncio.run(gate.admit(head, "req-1"))


def error_of(response: HttpResponse | None) -> dict[str, Any]:
    assert response is not None
    body: dict[str, Any] = json.loads(response.body)["error"]
    return body


DEV_KEY = new_key("dev")
PROD_KEY = new_key("prod")
REVOKED_KEY = new_key("dev")
DOCUMENTS = access(
    consumer("cred-dev", DEV_KEY),
    consumer("cred-prod", PROD_KEY, "prod"),
    consumer("cred-old", REVOKED_KEY, active=False),
)


@pytest.mark.parametrize(
    "headers",
    [
        {"apikey": DEV_KEY},
        {"apikey": f"  {DEV_KEY} "},
        {"authorization": f"Bearer {DEV_KEY}"},
        {"authorization": f"bearer   {DEV_KEY}"},
        {"apikey": DEV_KEY, "authorization": "Basic dXNlcjpwYXNz"},  # the function's own scheme
    ],
)
def test_a_granted_key_is_admitted_from_apikey_or_bearer(headers: dict[str, str]) -> None:
    gate = gate_with(DOCUMENTS)

    assert admit(gate, request(headers)) is None
    assert gate.stats[Outcome.ADMITTED] == 1


def test_no_key_is_401_with_a_bearer_challenge_and_says_how_to_send_one() -> None:
    refused = admit(gate_with(DOCUMENTS), request({"x-other": "1"}))

    assert refused is not None and refused.status == 401
    assert error_of(refused)["code"] == "unauthorized"
    assert "apikey" in error_of(refused)["message"]
    assert refused.headers["www-authenticate"] == 'Bearer realm="shop/dev"'
    assert refused.headers["content-type"] == "application/json"


class CountingHasher(KeyHasher):
    def __init__(self, pepper: bytes) -> None:
        super().__init__(pepper)
        self.calls = 0

    def __call__(self, key: str) -> str | None:
        self.calls += 1
        return super().__call__(key)


@pytest.mark.parametrize(
    "headers",
    [
        {"apikey": ""},
        {"apikey": "   "},
        {"apikey": "imp_dev_abc def"},
        {"apikey": "imp_dev_" + "A" * 100_000},
        {"apikey": "imp_dev_clé-ünïcode"},
        {"apikey": "imp_dev_\x00\x01"},
        {"apikey": "imp_dev_tab\there"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer    "},
        {"authorization": ""},
        {"authorization": f"Token {DEV_KEY}"},
        {"authorization": f"Bearer {DEV_KEY} extra"},
    ],
    ids=lambda h: repr(h)[:40],
)
def test_a_malformed_key_header_is_401_and_is_never_hashed(headers: dict[str, str]) -> None:
    hasher = CountingHasher(PEPPER)
    table, _ = AccessTable.from_documents(GW, "dev", DOCUMENTS)

    decision = decide(table, hasher, request(headers))

    assert decision.outcome is Outcome.MALFORMED
    assert hasher.calls == 0
    refused = admit(gate_with(DOCUMENTS), request(headers))
    assert refused is not None and refused.status == 401
    assert error_of(refused)["code"] == "unauthorized"
    assert refused.headers["www-authenticate"].endswith('error="invalid_token"')


@pytest.mark.parametrize(
    "key",
    [
        new_key("dev"),  # well-formed, never granted
        "garbage-but-visible-ascii",
        DEV_KEY[:-1],  # one character short
        DEV_KEY.upper(),
    ],
)
def test_an_unknown_key_is_401(key: str) -> None:
    refused = admit(gate_with(DOCUMENTS), request({"apikey": key}))

    assert refused is not None and refused.status == 401
    assert "unknown, revoked" in error_of(refused)["message"]


def test_a_key_hashed_with_another_pepper_matches_nothing() -> None:
    refused = admit(gate_with(DOCUMENTS, pepper=secrets.token_bytes(32)), request({"apikey": DEV_KEY}))
    assert refused is not None and refused.status == 401


def test_without_a_pepper_every_key_is_refused_but_authtype_none_still_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        gate = gate_with(DOCUMENTS, pepper=b"")
    assert "no API-key pepper" in caplog.text
    refused = admit(gate, request({"apikey": DEV_KEY}))
    assert refused is not None and refused.status == 401

    gate.update(access(environment={"_id": "dev", "environment": "dev", "authType": "none"}))
    assert admit(gate, request()) is None


def test_an_active_key_of_another_environment_is_403_naming_the_credential() -> None:
    refused = admit(gate_with(DOCUMENTS), request({"apikey": PROD_KEY}))

    assert refused is not None and refused.status == 403
    error = error_of(refused)
    assert error["code"] == "forbidden"
    assert "'prod', not 'dev'" in error["message"]
    assert error["details"] == {"credentialId": "cred-prod", "grantedEnvironment": "prod"}
    assert "www-authenticate" not in refused.headers


def test_an_inactive_key_is_401_whatever_its_environment() -> None:
    revoked_prod = new_key("prod")
    gate = gate_with(
        access(
            consumer("cred-old", REVOKED_KEY, active=False), consumer("p", revoked_prod, "prod", active=False)
        )
    )

    for key in (REVOKED_KEY, revoked_prod):
        refused = admit(gate, request({"apikey": key}))
        assert refused is not None and refused.status == 401
        assert (
            error_of(refused)["message"] == error_of(admit(gate, request({"apikey": new_key()})))["message"]
        )


@pytest.mark.parametrize("active", [None, False, 0, 2, "true", "yes", 1.0])
def test_anything_but_active_true_is_inactive(active: Any) -> None:
    gate = gate_with(access(consumer("c", DEV_KEY, active=active)))
    refused = admit(gate, request({"apikey": DEV_KEY}))
    assert refused is not None and refused.status == 401


def test_active_one_is_active_as_nx_27017_returns_booleans_set_by_an_update() -> None:
    assert admit(gate_with(access(consumer("c", DEV_KEY, active=1))), request({"apikey": DEV_KEY})) is None


def test_authtype_none_needs_no_key_and_ignores_whatever_key_headers_come() -> None:
    gate = gate_with(access(environment={"_id": "dev", "environment": "dev", "authType": "none"}))

    for headers in ({}, {"apikey": "garbage value"}, {"authorization": "Basic x"}, {"apikey": PROD_KEY}):
        assert admit(gate, request(headers)) is None
    assert gate.stats[Outcome.OPEN] == 4


def test_a_missing_environment_document_means_key_auth_without_a_limit() -> None:
    limiter = RecordingLimiter()
    gate = gate_with(access(consumer("cred-dev", DEV_KEY)), limiter=limiter)

    assert admit(gate, request()) is not None
    assert admit(gate, request({"apikey": DEV_KEY})) is None
    assert limiter.hits == []


def test_the_gate_answers_503_until_the_access_configuration_is_loaded() -> None:
    gate = KeyAuthGate(GW, "dev", PEPPER)

    refused = admit(gate, request({"apikey": DEV_KEY}))

    assert refused is not None and refused.status == 503
    assert refused.headers["retry-after"] == "1"
    gate.update(DOCUMENTS)
    assert admit(gate, request({"apikey": DEV_KEY})) is None


def test_updates_revoke_and_regenerate_at_once() -> None:
    gate = gate_with(DOCUMENTS)
    assert admit(gate, request({"apikey": DEV_KEY})) is None

    regenerated = new_key("dev")
    gate.update(access(consumer("cred-dev", regenerated)))  # same credential, new hash
    old = admit(gate, request({"apikey": DEV_KEY}))
    assert old is not None and old.status == 401
    assert admit(gate, request({"apikey": regenerated})) is None

    gate.update(access(consumer("cred-dev", regenerated, active=False)))
    revoked = admit(gate, request({"apikey": regenerated}))
    assert revoked is not None and revoked.status == 401


def test_malformed_published_documents_fail_closed_and_are_logged_without_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = consumer("cred-good", DEV_KEY, rateLimit={"count": "lots"})
    broken = [
        {**consumer("cred-nohash", new_key()), "lookupHash": None},
        {**consumer("cred-short", new_key()), "lookupHash": "abc"},
        {**consumer("cred-noenv", new_key()), "environment": None},
    ]
    documents = access(
        good,
        *broken,
        environment={"authType": "open-sesame", "rateLimit": {"count": 0, "windowSeconds": 1}},
    )
    with caplog.at_level(logging.ERROR):
        table, problems = AccessTable.from_documents(GW, "dev", documents)
        gate_with(documents)

    assert table.auth_type == "key-auth"
    assert table.rate_limit is None
    assert [c.credential_id for c in table.credentials.values()] == ["cred-good"]
    assert table.credentials[lookup_hash(DEV_KEY)].rate_limit is None  # fell back to the (absent) env limit
    assert len(problems) == 6
    assert all(f"credential cred-{name}" in caplog.text for name in ("nohash", "short", "noenv", "good"))
    assert DEV_KEY not in caplog.text


def test_an_admitted_request_is_counted_per_credential_against_the_grants_limit_else_the_environments() -> (
    None
):
    limiter = RecordingLimiter(allow=2)
    other = new_key("dev")
    gate = gate_with(
        access(
            consumer("cred-dev", DEV_KEY, rateLimit={"count": 2, "windowSeconds": 60}),
            consumer("cred-other", other),
            environment={
                "authType": "key-auth",
                "rateLimit": {"count": 100, "windowSeconds": 1, "window": "sliding"},
            },
        ),
        limiter=limiter,
    )

    assert admit(gate, request({"apikey": DEV_KEY})) is None
    assert admit(gate, request({"apikey": DEV_KEY})) is None
    limited = admit(gate, request({"apikey": DEV_KEY}))
    assert admit(gate, request({"apikey": other})) is None

    assert limited is not None and limited.status == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["x-ratelimit-limit"] == "2"
    assert [counter for counter, _ in limiter.hits] == ["shop/dev/cred-dev"] * 3 + ["shop/dev/cred-other"]
    assert limiter.hits[0][1] == RateLimit(2, 60)
    assert limiter.hits[-1][1] == RateLimit(100, 1, WindowKind.SLIDING)
    assert gate.stats["rate_limited"] == 1


def test_refused_requests_are_not_counted_and_authtype_none_counts_per_client_address() -> None:
    limiter = RecordingLimiter(allow=1)
    gate = gate_with(
        access(environment={"authType": "none", "rateLimit": {"count": 1, "windowSeconds": 5}}),
        limiter=limiter,
    )

    assert admit(gate, request(client="10.0.0.1")) is None
    assert admit(gate, request(client="10.0.0.2")) is None
    again = admit(gate, request(client="10.0.0.1"))

    assert again is not None and again.status == 429
    assert "this client" in error_of(again)["message"]
    assert [c for c, _ in limiter.hits] == [
        "shop/dev/ip:10.0.0.1",
        "shop/dev/ip:10.0.0.2",
        "shop/dev/ip:10.0.0.1",
    ]

    keyed = gate_with(DOCUMENTS, limiter=(keyed_limiter := RecordingLimiter()))
    keyed.update(
        access(consumer("cred-dev", DEV_KEY), environment={"rateLimit": {"count": 1, "windowSeconds": 5}})
    )
    assert admit(keyed, request({"apikey": PROD_KEY})) is not None
    assert admit(keyed, request()) is not None
    assert keyed_limiter.hits == []


def test_no_key_ever_appears_in_an_answer_or_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    limited = access(*DOCUMENTS["consumers"], environment={"rateLimit": {"count": 1, "windowSeconds": 9}})
    gate = gate_with(limited, limiter=RecordingLimiter(allow=0))
    keys = [DEV_KEY, PROD_KEY, REVOKED_KEY, new_key()]
    with caplog.at_level(logging.DEBUG):
        answers = [admit(gate, request({"apikey": key})) for key in keys]
        answers += [admit(gate, request({"authorization": f"Bearer {key}"})) for key in keys]
    assert all(answer is not None for answer in answers)
    for answer in answers:
        assert answer is not None
        text = answer.body.decode() + json.dumps(answer.headers)
        assert not any(key in text or key[8:20] in text for key in keys)
    assert not any(key[8:20] in caplog.text for key in keys)


# --- through the supervisor -------------------------------------------------------------------


class RecordingPool:
    def __init__(self) -> None:
        self.invocations: list[Invocation] = []
        self.loaded: list[str] = []
        self.hold: asyncio.Event | None = None

    async def start(self) -> None:
        pass

    async def load(self, functions: list[PublishedFunction]) -> dict[str, str]:
        if self.hold is not None:
            await self.hold.wait()
        self.loaded = [f.name for f in functions]
        return {}

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        self.invocations.append(invocation)
        return InvocationResult(200, {}, b"ok")

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        return InvocationResult(200, {}, b"")

    async def close(self) -> None:
        pass


FUNCTION = {"name": "hello", "environment": "dev", "code": "ok", "version": 1, "hash": "h"}


def body(data: bytes = b"") -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        return data

    return read


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_the_gate_runs_before_routing_and_key_headers_never_reach_tenant_code() -> None:
    async def scenario() -> None:
        pool, limiter = RecordingPool(), RecordingLimiter()
        supervisor = Supervisor(
            GW,
            "dev",
            pool,
            None,
            DiscardLogs(),
            max_request_bytes=100,
            gate=KeyAuthGate(GW, "dev", PEPPER, limiter),
        )
        await supervisor.start()
        await supervisor.apply(1, [FUNCTION], DOCUMENTS)

        unknown_route = await supervisor.handle(request(route="/nope"), body())
        assert unknown_route.status == 401  # authentication comes before anything else
        assert unknown_route.headers["x-request-id"]

        forms = [
            {"apikey": DEV_KEY, "authorization": "Bearer user-jwt.abc", "x-trace": "t"},
            {"authorization": f"Bearer {DEV_KEY}", "x-trace": "t"},
        ]
        for headers in forms:
            assert (await supervisor.handle(request(headers), body())).status == 200
        seen = [invocation.headers for invocation in pool.invocations]
        assert seen == [{"authorization": "Bearer user-jwt.abc", "x-trace": "t"}, {"x-trace": "t"}]
        assert not any(DEV_KEY in json.dumps(h) for h in seen)
        await supervisor.close()
        assert limiter.closed

    run(scenario)


def test_apply_hands_access_to_the_gate_before_waiting_for_functions_to_load() -> None:
    async def scenario() -> None:
        pool = RecordingPool()
        gate = KeyAuthGate(GW, "dev", PEPPER)
        supervisor = Supervisor(GW, "dev", pool, None, DiscardLogs(), max_request_bytes=100, gate=gate)
        await supervisor.start()
        await supervisor.apply(1, [FUNCTION], DOCUMENTS)
        assert (await supervisor.handle(request({"apikey": DEV_KEY}), body())).status == 200

        pool.hold = asyncio.Event()  # loading the next set takes a while (a busy worker, a slow import)
        revoked = access(consumer("cred-dev", DEV_KEY, active=False))
        loading = asyncio.create_task(supervisor.apply(2, [FUNCTION, {**FUNCTION, "name": "new"}], revoked))
        await asyncio.sleep(0.01)

        assert not loading.done()
        assert (await supervisor.handle(request({"apikey": DEV_KEY}), body())).status == 401
        pool.hold.set()
        await loading
        assert supervisor.generation == 2 and pool.loaded == ["hello", "new"]
        await supervisor.close()

    run(scenario)


def test_the_gate_finds_one_key_among_ten_thousand_credentials() -> None:
    """HMAC of the key and one dict lookup, whatever the number of credentials (bench/ measures it)."""
    others = [consumer(f"cred-{i}", new_key()) for i in range(10_000)]
    gate = gate_with(access(consumer("cred-dev", DEV_KEY), *others))

    async def scenario() -> None:
        assert await gate.admit(request({"apikey": DEV_KEY}), "r") is None
        refused = await gate.admit(request({"apikey": new_key()}), "r")
        assert refused is not None and refused.status == 401

    run(scenario)


def test_presented_key_prefers_apikey_and_reads_bearer_only_without_it() -> None:
    assert presented_key({"apikey": "a", "authorization": "Bearer b"}) == "a"
    assert presented_key({"authorization": "BEARER b"}) == "b"
    assert presented_key({}) is Outcome.MISSING
    assert presented_key({"authorization": "Basic b"}) is Outcome.MALFORMED
