"""``runtime_actors.replica.supervisor.Supervisor``'s own logic, with fakes of the pool and the reload hub.

The worker pool and the hub are Protocols (``FunctionPool``, ``ReloadSource``); the fakes here record
what the supervisor asks of them, so routing, limits, reload and error translation are tested without
processes, Ray or databases. (The real pool and hub are exercised end to end in ``test_function_actor``.)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import pytest

from runtime_actors.replica.http import BodyTooLarge, HttpResponse, RequestHead, error_response
from runtime_actors.replica.ports import AllowEveryRequest
from runtime_actors.replica.supervisor import Supervisor
from runtime_actors.shared.messages import Invocation, InvocationResult, LogEntry, PublishedFunction, Snapshot


class FakePool:
    """Answers ``{"fn": name, "path": …}``; a function's code names its behaviour."""

    def __init__(self) -> None:
        self.loaded: dict[str, PublishedFunction] = {}
        self.invocations: list[Invocation] = []
        self.refuse: set[str] = set()

    async def start(self) -> None:
        pass

    async def load(self, functions: list[PublishedFunction]) -> dict[str, str]:
        errors = {f.name: "SyntaxError: bad (line 1)" for f in functions if f.name in self.refuse}
        kept = {name: fn for name, fn in self.loaded.items() if name in errors}
        self.loaded = {f.name: f for f in functions if f.name not in errors} | kept
        return errors

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        self.invocations.append(invocation)
        code = self.loaded[name].code
        if code == "hang":
            await asyncio.sleep(3600)
        if code == "raise":
            body = json.dumps({"error": {"code": "internal", "message": "ValueError: boom"}}).encode()
            return InvocationResult(
                500, {}, body, (LogEntry(time.time(), "error", "Traceback…"),), error="internal"
            )
        payload = {"fn": name, "version": self.loaded[name].version, "path": invocation.path}
        return InvocationResult(
            200,
            {"content-type": "application/json"},
            json.dumps(payload).encode(),
            (LogEntry(time.time(), "info", "hi"),),
        )

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        return InvocationResult(200, {"content-type": "application/json"}, json.dumps({"ran": code}).encode())

    async def close(self) -> None:
        pass


class FakeHub:
    """A reload source whose generations the test sets."""

    def __init__(self, generation: int, documents: list[dict[str, Any]]) -> None:
        self.current = Snapshot(generation, tuple(documents))
        self.changed = asyncio.Event()

    def publish(self, generation: int, documents: list[dict[str, Any]]) -> None:
        self.current = Snapshot(generation, tuple(documents))
        self.changed.set()

    async def snapshot(self) -> Snapshot:
        return self.current

    async def wait_changed(self, known_generation: int, timeout_s: float) -> Snapshot | None:
        while self.current.generation == known_generation:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout_s)
            except TimeoutError:
                return None
        return self.current


class ListLogs:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, LogEntry]] = []

    def start(self) -> None:
        pass

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        self.entries.extend((function, request_id, e) for e in entries)

    async def close(self) -> None:
        pass


def doc(name: str, version: int = 1, code: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "environment": "dev",
        "code": code,
        "version": version,
        "hash": f"h{version}",
        **extra,
    }


def body_of(data: bytes) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        if len(data) > limit:
            raise BodyTooLarge
        return data

    return read


def head(method: str, route: str, headers: dict[str, str] | None = None) -> RequestHead:
    return RequestHead(method, route, "a=1&a=2&b=", headers or {})


async def started(documents: list[dict[str, Any]]) -> tuple[Supervisor, FakePool, FakeHub, ListLogs]:
    pool, hub, logs = FakePool(), FakeHub(1, documents), ListLogs()
    supervisor = Supervisor("gw", "dev", pool, hub, logs, max_request_bytes=100)
    await supervisor.start(initial_load_timeout=5)
    return supervisor, pool, hub, logs


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def answer(response: HttpResponse) -> Any:
    return json.loads(response.body)


def test_routes_to_the_longest_published_prefix_and_passes_the_rest_as_path() -> None:
    async def scenario() -> None:
        supervisor, pool, _, _ = await started([doc("orders"), doc("orders/items"), doc("hello")])
        get = body_of(b"")
        assert answer(await supervisor.handle(head("GET", "/hello"), get))["fn"] == "hello"
        assert answer(await supervisor.handle(head("GET", "/orders/items/42"), get)) == {
            "fn": "orders/items",
            "version": 1,
            "path": "/42",
        }
        assert answer(await supervisor.handle(head("GET", "/orders/other"), get))["fn"] == "orders"
        assert answer(await supervisor.handle(head("GET", "/ordersx"), get)) != {"fn": "orders"}
        invocation = pool.invocations[0]
        assert invocation.query == {"a": ["1", "2"], "b": [""]}
        await supervisor.close()

    run(scenario)


def test_unknown_function_wrong_method_and_big_body_in_the_error_shape() -> None:
    async def scenario() -> None:
        supervisor, pool, _, _ = await started([doc("only-post", methods=["post"])])

        missing = await supervisor.handle(head("GET", "/nope"), body_of(b""))
        assert missing.status == 404 and answer(missing)["error"]["code"] == "not_found"
        wrong = await supervisor.handle(head("GET", "/only-post"), body_of(b""))
        assert wrong.status == 405 and wrong.headers["allow"] == "POST"
        big = await supervisor.handle(head("POST", "/only-post"), body_of(b"x" * 101))
        assert big.status == 413 and answer(big)["error"]["code"] == "too_large"
        assert pool.invocations == []
        ok = await supervisor.handle(head("POST", "/only-post"), body_of(b"x" * 100))
        assert ok.status == 200
        await supervisor.close()

    run(scenario)


def test_request_ids_are_echoed_or_generated_and_apikeys_never_reach_the_worker() -> None:
    async def scenario() -> None:
        supervisor, pool, _, _ = await started([doc("hello")])
        given = await supervisor.handle(
            head("GET", "/hello", {"x-request-id": "abc-1", "apikey": "secret"}), body_of(b"")
        )
        assert given.headers["x-request-id"] == "abc-1"
        assert "apikey" not in pool.invocations[0].headers
        fresh = await supervisor.handle(head("GET", "/hello", {"x-request-id": "bad id\n"}), body_of(b""))
        assert len(fresh.headers["x-request-id"]) == 32
        await supervisor.close()

    run(scenario)


def test_failures_become_500_with_request_id_and_timeouts_504_and_both_are_logged() -> None:
    async def scenario() -> None:
        supervisor, _, _, logs = await started(
            [doc("boom", code="raise"), doc("slow", code="hang", timeoutSeconds=0.05)]
        )

        failed = await supervisor.handle(head("GET", "/boom", {"x-request-id": "r-500"}), body_of(b""))
        assert failed.status == 500
        assert answer(failed)["error"]["requestId"] == "r-500" and answer(failed)["requestId"] == "r-500"
        assert "boom" in answer(failed)["error"]["message"]
        timed_out = await supervisor.handle(head("GET", "/slow", {"x-request-id": "r-504"}), body_of(b""))
        assert timed_out.status == 504 and answer(timed_out)["error"]["code"] == "timeout"
        logged = {(fn, rid, e.level) for fn, rid, e in logs.entries}
        assert {("boom", "r-500", "error"), ("slow", "r-504", "error")} <= logged
        await supervisor.close()

    run(scenario)


def test_reloads_replace_the_function_set_but_never_with_a_version_that_fails_to_load() -> None:
    async def scenario() -> None:
        supervisor, pool, hub, logs = await started([doc("hello"), doc("bye")])

        hub.publish(2, [doc("hello", version=2), doc("new")])
        await wait_for(lambda: supervisor.generation == 2)
        assert supervisor.function_names == ["hello", "new"]
        assert answer(await supervisor.handle(head("GET", "/hello"), body_of(b"")))["version"] == 2

        pool.refuse = {"hello"}
        hub.publish(3, [doc("hello", version=3), doc("new")])
        await wait_for(lambda: supervisor.generation == 3)
        assert answer(await supervisor.handle(head("GET", "/hello"), body_of(b"")))["version"] == 2
        assert any(e.level == "error" and "failed to load" in e.message for _, _, e in logs.entries)

        hub.publish(4, [])
        await wait_for(lambda: supervisor.generation == 4)
        assert (await supervisor.handle(head("GET", "/new"), body_of(b""))).status == 404
        await supervisor.close()

    run(scenario)


def test_a_cold_start_reads_the_functions_while_the_workers_start() -> None:
    """The pool starts only once the hub was asked: read one after the other, this would hang."""

    class SlowPool(FakePool):
        def __init__(self, asked: asyncio.Event) -> None:
            super().__init__()
            self.asked = asked

        async def start(self) -> None:
            await asyncio.wait_for(self.asked.wait(), 5)

    class CountingHub(FakeHub):
        def __init__(self) -> None:
            super().__init__(1, [doc("hello")])
            self.asked = asyncio.Event()
            self.reads = 0

        async def snapshot(self) -> Snapshot:
            self.reads += 1
            self.asked.set()
            return await super().snapshot()

    async def scenario() -> None:
        hub = CountingHub()
        supervisor = Supervisor("gw", "dev", SlowPool(hub.asked), hub, ListLogs(), max_request_bytes=100)
        await supervisor.start(initial_load_timeout=5)
        assert supervisor.function_names == ["hello"]
        assert hub.reads == 1  # the read made during the start is the one applied
        await supervisor.close()

    run(scenario)


def test_a_pool_that_fails_to_start_cancels_the_read_begun_beside_it() -> None:
    class BrokenPool(FakePool):
        async def start(self) -> None:
            await asyncio.sleep(0)  # the hub read has begun
            raise RuntimeError("no worker")

    class StalledHub(FakeHub):
        cancelled = False

        async def snapshot(self) -> Snapshot:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                StalledHub.cancelled = True
                raise
            raise AssertionError("unreachable")

    async def scenario() -> None:
        hub = StalledHub(1, [])
        supervisor = Supervisor("gw", "dev", BrokenPool(), hub, ListLogs(), max_request_bytes=100)
        with pytest.raises(RuntimeError, match="no worker"):
            await supervisor.start(initial_load_timeout=5)
        assert StalledHub.cancelled

    run(scenario)


def test_debug_runs_code_in_the_pool_and_reports_in_the_api_shape() -> None:
    async def scenario() -> None:
        supervisor, _, _, _ = await started([])
        result = await supervisor.debug("def main(req): ...", {"method": "post", "body": {"x": 1}})
        assert result["status"] == 200 and result["body"] == {"ran": "def main(req): ..."}
        assert set(result) == {"status", "headers", "body", "logs", "durationMs"}
        await supervisor.close()

    run(scenario)


async def wait_for(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def observe(self, function: str, status: int, duration_s: float) -> None:
        assert duration_s >= 0
        self.calls.append((function, status))


class SwitchGate(AllowEveryRequest):
    """Admits until ``closed``; then refuses with 429. Records the heads it was asked about."""

    def __init__(self) -> None:
        self.closed = False
        self.heads: list[RequestHead] = []

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None:
        self.heads.append(head)
        return error_response(429, "rate_limited", "slow down", request_id) if self.closed else None


def test_tool_calls_are_admitted_invoked_observed_and_logged_as_http_calls_are() -> None:
    async def scenario() -> None:
        pool, hub, logs, observed, gate = (
            FakePool(),
            FakeHub(1, [doc("hello")]),
            ListLogs(),
            Observed(),
            SwitchGate(),
        )
        supervisor = Supervisor(
            "gw", "dev", pool, hub, logs, max_request_bytes=100, gate=gate, observer=observed
        )
        await supervisor.start(initial_load_timeout=5)

        http = await supervisor.handle(head("POST", "/hello", {"apikey": "k"}), body_of(b"{}"), "r-http")
        tool = await supervisor.call_tool("hello", {"a": 1}, "r-tool", api_key="k")
        assert http.status == 200 and tool["status"] == 200 and tool["body"]["fn"] == "hello"
        assert [h.headers.get("apikey") for h in gate.heads] == ["k", "k"]
        assert observed.calls == [("hello", 200), ("hello", 200)]
        assert [(f, r, e.message) for f, r, e in logs.entries] == [
            ("hello", "r-http", "hi"),
            ("hello", "r-tool", "hi"),
        ]

        gate.closed = True
        refused_http = await supervisor.handle(head("POST", "/hello", {"apikey": "k"}), body_of(b"{}"), "r2")
        refused_tool = await supervisor.call_tool("hello", {}, "r3", api_key="k")
        assert refused_http.status == refused_tool["status"] == 429
        assert (
            refused_tool["error"] == "rate_limited"
            and refused_tool["body"]["error"]["code"] == "rate_limited"
        )
        assert len(pool.invocations) == 2 and len(observed.calls) == 2  # refused calls never ran
        await supervisor.close()

    run(scenario)
