"""``runtime_actors.replica.environment_cache.LoadedEnvironments``: which environments a shared replica holds.

Loads and closes are plain coroutines here: each load waits on its own ``asyncio.Event`` until the
test lets it finish (or fail), and each close is recorded, so sharing, concurrency, eviction order and
draining are driven step by step, without sleeps, Ray or databases. Time comes from a fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from runtime_actors.replica.environment_cache import LoadedEnvironments

R = TypeVar("R")

DEADLINE_S = 5.0
"""How long a test waits for something that should happen at once (a hang fails instead of blocking)."""


@dataclass
class FakeEnvironment:
    key: str
    generation: int
    closed: bool = False


@dataclass
class Loads:
    """The cache's ``load`` and ``close``: loads of keys in ``held`` wait for ``release``; loads of keys
    in ``failing`` raise; every load and close is recorded."""

    held: set[str] = field(default_factory=set)
    failing: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    closed: list[FakeEnvironment] = field(default_factory=list)
    started: dict[str, asyncio.Event] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    closed_one: asyncio.Event = field(default_factory=asyncio.Event)

    def gate(self, key: str) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    def started_event(self, key: str) -> asyncio.Event:
        return self.started.setdefault(key, asyncio.Event())

    def release(self, key: str) -> None:
        self.held.discard(key)
        self.gate(key).set()

    async def load(self, key: str) -> FakeEnvironment:
        self.calls.append(key)
        self.started_event(key).set()
        if key in self.held:
            await self.gate(key).wait()
        if key in self.failing:
            raise self.failing[key]
        return FakeEnvironment(key, self.calls.count(key))

    async def close(self, environment: FakeEnvironment) -> None:
        environment.closed = True
        self.closed.append(environment)
        self.closed_one.set()

    def closed_keys(self) -> list[str]:
        return [environment.key for environment in self.closed]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(loads: Loads, **overrides: Any) -> LoadedEnvironments[FakeEnvironment]:
    options: dict[str, Any] = {"max_loaded": 10, "idle_seconds": 60.0} | overrides
    return LoadedEnvironments(loads.load, loads.close, **options)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S * 4))


async def within_deadline(awaitable: Awaitable[R]) -> R:
    return await asyncio.wait_for(awaitable, DEADLINE_S)


async def settle() -> None:
    """Let every task that can run do so (close tasks included), before asserting something did not
    happen: the cache schedules its closes with ``create_task``, each needing a turn or two."""
    for _ in range(20):
        await asyncio.sleep(0)


async def touch(environments: LoadedEnvironments[FakeEnvironment], key: str) -> FakeEnvironment:
    """One call of ``key`` that returns at once."""
    async with environments.use(key) as environment:
        return environment


class Held:
    """A call of one environment that stays in flight until ``end``."""

    def __init__(self, environments: LoadedEnvironments[FakeEnvironment], key: str) -> None:
        self._use: AbstractAsyncContextManager[FakeEnvironment] = environments.use(key)
        self.value: FakeEnvironment | None = None
        self._ended = asyncio.Event()
        self._entered = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self._use as environment:
            self.value = environment
            self._entered.set()
            await self._ended.wait()

    async def entered(self) -> FakeEnvironment:
        await within_deadline(self._entered.wait())
        assert self.value is not None
        return self.value

    async def end(self) -> None:
        self._ended.set()
        await within_deadline(self.task)


@asynccontextmanager
async def held(environments: LoadedEnvironments[FakeEnvironment], key: str) -> AsyncIterator[Held]:
    call = Held(environments, key)
    try:
        yield call
    finally:
        if not call.task.done():
            await call.end()


# --- loading ---------------------------------------------------------------------------------------


def test_concurrent_first_calls_share_one_load() -> None:
    async def scenario() -> None:
        loads = Loads(held={"a"})
        environments = cache(loads)
        first = asyncio.create_task(touch(environments, "a"))
        second = asyncio.create_task(touch(environments, "a"))
        await within_deadline(loads.started_event("a").wait())
        await settle()
        assert loads.calls == ["a"], "the second call waits for the first one's load"
        assert not environments.is_loaded("a"), "loaded only once the load finished"
        loads.release("a")
        one, other = await within_deadline(asyncio.gather(first, second))
        assert one is other
        assert (loads.calls, environments.loads) == (["a"], 1)
        assert environments.loaded() == ["a"]

    run(scenario)


def test_a_slow_load_does_not_hold_up_another_environment() -> None:
    async def scenario() -> None:
        loads = Loads(held={"a", "b"})
        environments = cache(loads)
        slow = asyncio.create_task(touch(environments, "a"))
        await within_deadline(loads.started_event("a").wait())
        fast = asyncio.create_task(touch(environments, "b"))
        await within_deadline(loads.started_event("b").wait())  # started while a's load is still running
        loads.release("b")
        assert (await within_deadline(fast)).key == "b"
        assert not slow.done()
        assert environments.loaded() == ["b"]
        loads.release("a")
        assert (await within_deadline(slow)).key == "a"
        assert environments.loaded() == ["b", "a"]

    run(scenario)


def test_a_failed_load_reaches_every_waiting_call_and_is_not_remembered() -> None:
    async def scenario() -> None:
        loads = Loads(held={"a"}, failing={"a": RuntimeError("no such environment")})
        changes: list[list[str]] = []
        environments = cache(loads, on_change=changes.append)
        first = asyncio.create_task(touch(environments, "a"))
        second = asyncio.create_task(touch(environments, "a"))
        await within_deadline(loads.started_event("a").wait())
        loads.release("a")
        outcomes = await within_deadline(asyncio.gather(first, second, return_exceptions=True))
        assert [str(outcome) for outcome in outcomes] == ["no such environment"] * 2
        assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
        assert not environments.is_loaded("a")
        assert (environments.loads, changes) == (0, [])

        del loads.failing["a"]
        environment = await within_deadline(touch(environments, "a"))
        assert loads.calls == ["a", "a"], "the next call loads again"
        assert environment.generation == 2
        assert environments.loaded() == ["a"]

    run(scenario)


def test_a_failed_load_raises_in_the_caller_as_itself() -> None:
    async def scenario() -> None:
        loads = Loads(failing={"a": LookupError("gone")})
        environments = cache(loads)
        with pytest.raises(LookupError, match="gone"):
            await within_deadline(touch(environments, "a"))

    run(scenario)


# --- eviction --------------------------------------------------------------------------------------


def test_past_max_loaded_the_least_recently_used_goes() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads, max_loaded=2)
        await touch(environments, "a")
        await touch(environments, "b")
        await touch(environments, "a")  # a is now the most recently used
        await touch(environments, "c")
        assert environments.loaded() == ["a", "c"]
        await within_deadline(loads.closed_one.wait())
        assert loads.closed_keys() == ["b"]
        assert (environments.loads, environments.evictions) == (3, 1)

    run(scenario)


def test_past_max_loaded_an_idle_environment_goes_before_a_busy_one() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads, max_loaded=2)
        async with held(environments, "a") as call:
            await call.entered()
            await touch(environments, "b")  # a is the least recently used, but busy
            await touch(environments, "c")
            assert environments.loaded() == ["a", "c"]
            await within_deadline(loads.closed_one.wait())
            assert loads.closed_keys() == ["b"]

    run(scenario)


def test_with_every_environment_busy_the_least_recently_used_goes_once_its_calls_end() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads, max_loaded=2)
        async with held(environments, "a") as a, held(environments, "b") as b:
            await a.entered()
            await b.entered()
            await touch(environments, "c")
            assert environments.loaded() == ["b", "c"]
            await settle()
            assert loads.closed == [], "a's call is still running"
            await a.end()
            await within_deadline(loads.closed_one.wait())
            assert loads.closed_keys() == ["a"]

    run(scenario)


def test_an_evicted_busy_environment_is_closed_only_after_its_last_call() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        async with held(environments, "a") as one, held(environments, "a") as other:
            old = await one.entered()
            assert await other.entered() is old
            assert environments.evict("a")
            assert not environments.is_loaded("a"), "it leaves the table at once"
            await settle()
            assert loads.closed == []
            await one.end()
            await settle()
            assert loads.closed == [], "another call of it is still running"
            assert not old.closed
            await other.end()
            await within_deadline(loads.closed_one.wait())
            assert loads.closed == [old]

    run(scenario)


def test_a_call_after_an_eviction_loads_afresh_while_the_old_one_drains() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        async with held(environments, "a") as call:
            old = await call.entered()
            assert environments.evict("a")
            fresh = await touch(environments, "a")
            assert (old.generation, fresh.generation) == (1, 2)
            assert environments.loaded() == ["a"]
        await within_deadline(loads.closed_one.wait())
        assert loads.closed == [old]
        assert not fresh.closed

    run(scenario)


def test_a_call_waiting_on_a_load_never_gets_an_environment_already_closed() -> None:
    async def scenario() -> None:
        loads = Loads(held={"a"})
        environments = cache(loads)

        async def loading_call() -> None:
            async with environments.use("a"):
                environments.evict("a")  # e.g. its placement was cleared, before the waiting call ran

        async def waiting_call() -> tuple[int, bool]:
            async with environments.use("a") as environment:
                await settle()  # the close of an evicted, idle environment would run by now
                return environment.generation, environment.closed

        first = asyncio.create_task(loading_call())
        await within_deadline(loads.started_event("a").wait())
        second = asyncio.create_task(waiting_call())
        await settle()
        loads.release("a")
        await within_deadline(first)
        generation, closed = await within_deadline(second)
        assert not closed, "a call must never run on a closed environment"
        assert generation == 2, "the evicted environment is loaded afresh"

    run(scenario)


def test_a_cancelled_first_call_does_not_fail_the_calls_waiting_on_its_load() -> None:
    async def scenario() -> None:
        loads = Loads(held={"a"})
        environments = cache(loads)
        first = asyncio.create_task(touch(environments, "a"))
        await within_deadline(loads.started_event("a").wait())
        second = asyncio.create_task(touch(environments, "a"))
        await settle()
        first.cancel()  # its client went away
        with pytest.raises(asyncio.CancelledError):
            await within_deadline(first)
        loads.release("a")
        environment = await within_deadline(second)
        assert environment.key == "a"
        assert environments.loaded() == ["a"]

    run(scenario)


def test_evict_then_use_loads_afresh() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        first = await touch(environments, "a")
        assert environments.evict("a")
        assert not environments.evict("a"), "no longer loaded"
        assert not environments.evict("never-loaded")
        await within_deadline(loads.closed_one.wait())
        assert loads.closed == [first]
        second = await touch(environments, "a")
        assert second is not first
        assert (loads.calls, second.generation) == (["a", "a"], 2)
        assert environments.loaded() == ["a"]

    run(scenario)


def test_sweep_evicts_only_environments_idle_for_idle_seconds() -> None:
    async def scenario() -> None:
        loads = Loads()
        clock = FakeClock()
        environments = cache(loads, idle_seconds=60.0, clock=clock)
        start = clock.now
        await touch(environments, "a")
        async with held(environments, "long") as long_call:
            await long_call.entered()
            clock.now = start + 30
            await touch(environments, "b")
            clock.now = start + 59.9
            assert environments.sweep() == []
            clock.now = start + 60
            assert environments.sweep() == ["a"], "exactly idle_seconds is enough; busy ones stay"
            clock.now = start + 1000
            await long_call.end()  # idle from its call's end, not its start
        assert environments.sweep() == ["b"]
        clock.now = start + 1059
        assert environments.sweep() == []
        clock.now = start + 1060
        assert environments.sweep() == ["long"]
        assert environments.loaded() == []
        await settle()
        assert loads.closed_keys() == ["a", "b", "long"]

    run(scenario)


def test_over_budget_evicts_after_a_load_but_never_the_environment_just_loaded() -> None:
    async def scenario() -> None:
        loads = Loads()
        over = False
        environments = cache(loads, over_budget=lambda: over)
        await touch(environments, "a")
        await touch(environments, "b")
        await touch(environments, "c")
        await touch(environments, "a")
        assert environments.loaded() == ["b", "c", "a"]
        over = True
        await touch(environments, "b")  # already loaded: no load, no budget check
        assert environments.loaded() == ["c", "a", "b"]
        await touch(environments, "d")
        assert environments.loaded() == ["d"], "over budget until only the new one is left"
        await touch(environments, "e")
        assert environments.loaded() == ["e"]
        await settle()
        assert loads.closed_keys() == ["c", "a", "b", "d"]

    run(scenario)


def test_over_budget_stops_evicting_once_under_budget() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments: LoadedEnvironments[FakeEnvironment] = cache(
            loads, over_budget=lambda: len(environments.loaded()) > 2
        )
        for key in ("a", "b", "c", "d"):
            await touch(environments, key)
        assert environments.loaded() == ["c", "d"]

    run(scenario)


def test_over_budget_evicts_idle_environments_before_busy_ones() -> None:
    async def scenario() -> None:
        loads = Loads()
        over = False
        environments = cache(loads, over_budget=lambda: over and len(environments.loaded()) > 2)
        async with held(environments, "a") as call:
            await call.entered()
            await touch(environments, "b")
            over = True
            await touch(environments, "c")
            assert environments.loaded() == ["a", "c"]

    run(scenario)


def test_on_change_receives_the_loaded_keys() -> None:
    async def scenario() -> None:
        loads = Loads()
        clock = FakeClock()
        changes: list[list[str]] = []
        environments = cache(loads, max_loaded=2, on_change=changes.append, clock=clock)
        await touch(environments, "a")
        await touch(environments, "b")
        await touch(environments, "a")  # already loaded: nothing changed
        await touch(environments, "c")
        environments.evict("c")
        environments.evict("c")  # not loaded: nothing changed
        assert environments.sweep() == []
        clock.now += 60
        assert environments.sweep() == ["a"]
        assert changes == [["a"], ["a", "b"], ["a", "c"], ["a"], []]

    run(scenario)


def test_limits_must_be_positive() -> None:
    loads = Loads()
    for options in ({"max_loaded": 0}, {"idle_seconds": 0.0}):
        with pytest.raises(ValueError, match="max_loaded must be >= 1 and idle_seconds > 0"):
            cache(loads, **options)


# --- closing ---------------------------------------------------------------------------------------


def test_close_closes_everything_waiting_for_calls_in_flight() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        idle = await touch(environments, "idle")
        call = Held(environments, "busy")
        busy = await call.entered()
        closing = asyncio.create_task(environments.close())
        await settle()
        assert loads.closed == [idle], "the idle one closes at once"
        assert not closing.done(), "close() waits for the call in flight"
        assert environments.loaded() == []
        await call.end()
        await within_deadline(closing)
        assert loads.closed == [idle, busy]

    run(scenario)


def test_close_waits_at_most_drain_seconds_for_calls_in_flight() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        call = Held(environments, "busy")
        busy = await call.entered()
        await within_deadline(environments.close(drain_seconds=0.05))
        assert loads.closed == [], "its call is still running"
        await call.end()
        await settle()
        assert loads.closed == [busy], "closed once that call ends after all"

    run(scenario)


def test_close_waits_for_a_reloaded_environment_when_its_evicted_predecessor_drains_first() -> None:
    async def scenario() -> None:
        loads = Loads()
        environments = cache(loads)
        old_call = Held(environments, "a")
        old = await old_call.entered()
        environments.evict("a")
        new_call = Held(environments, "a")
        new = await new_call.entered()
        assert new is not old
        closing = asyncio.create_task(environments.close())
        await old_call.end()
        await settle()
        assert loads.closed == [old]
        assert not closing.done(), "the new one's call is still running"
        await new_call.end()
        await within_deadline(closing)
        assert loads.closed == [old, new]

    run(scenario)


def test_close_with_nothing_loaded_returns() -> None:
    async def scenario() -> None:
        environments = cache(Loads())
        await within_deadline(environments.close(drain_seconds=3600))

    run(scenario)


def test_a_failing_close_is_logged_and_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        loads = Loads()
        closed: list[str] = []

        async def close(environment: FakeEnvironment) -> None:
            if environment.key == "broken":
                raise RuntimeError("cannot close")
            closed.append(environment.key)

        environments = LoadedEnvironments(loads.load, close, max_loaded=10, idle_seconds=60.0)
        await touch(environments, "broken")
        await touch(environments, "fine")
        await within_deadline(environments.close())
        assert closed == ["fine"]

    run(scenario)
    assert "closing the environment broken failed" in caplog.text
