"""The supervisor's pool of jailed workers: one call running per worker, a watchdog on every call.

A Serve replica builds one ``WorkerPool`` per environment and awaits ``start()``, which spawns
``size`` long-lived workers (``launcher``; or takes them from ``spares``, workers spawned ahead) and
raises ``JailUnavailable`` if their jail cannot be applied and ``insecure`` is off. While calls wait
for a worker, the pool adds workers in the background up to ``max_size``. ``load(functions)`` makes a set of functions current without
restarting anything: each changed function is compiled by one worker first, and only code that
loaded there becomes the pool's version (the error, with line and column, is returned by name and
the previous version keeps serving); every other worker catches up before its next call.
``invoke``/``debug`` check a worker out and run the call under a wall-clock watchdog — past its
timeout the worker is SIGKILLed, the caller gets 504 ``timeout`` and a replacement is spawned and
loaded in the background — and turn a dead worker (out of memory, CPU limit, crash, protocol
violation) into a 500 for that call and a replacement.

When every worker is busy, an ``invoke`` is sent *behind* the call a worker is running (up to
``pipeline_depth`` calls per worker, 2 by default): the worker reads it the moment it has written the
previous answer, instead of sleeping until the supervisor has handled that answer and sent the next
call — one process wake-up less per call under load. Its watchdog starts when the call ahead is
answered. If the worker dies on the call ahead (its timeout, a crash), the call behind never started
and goes to another worker; one given up while it waits lets the call ahead finish, and the worker is
then replaced (it would still run the abandoned call). Beyond that, calls wait in a bounded queue; the
call that frees room sends the next waiting call at once, rather than a loop turn later when the
waiting task runs. Debug runs and loads have a worker to themselves.

Which worker a call gets and where a worker goes afterwards is decided by the pure ``scheduler``
(``decide(state, event)``); this class applies its answers to the real workers, futures and queues —
decide first, act second — and keeps what only I/O can tell: spawning, syncing, the watchdog, and
what a failed call costs its worker.

Worker callbacks (``imp.db()``, ``imp.fetch``) go to the pool's executors: see ``replica.callbacks.bridge``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeGuard

from runtime_actors.replica.callbacks.bridge import Callbacks, Executor
from runtime_actors.replica.pool.launcher import NotStarted, WorkerGone, WorkerProcess, WorkerRefused
from runtime_actors.replica.pool.scheduler import (
    ANSWERED,
    FREED,
    Arrived,
    Failed,
    Failure,
    Hand,
    Park,
    Parking,
    PoolState,
    Recycle,
    Refuse,
    Replace,
    RetireNow,
    SendBehind,
    Stay,
    TakeIdle,
    WaitingCall,
    WorkerState,
    can_share,
    decide,
)
from runtime_actors.replica.pool.scratch import claim_scratch, scratch_usage
from runtime_actors.replica.pool.spares import SpareWorkers, WorkerSpec
from runtime_actors.shared.errors import error_json
from runtime_actors.shared.frames import (
    FunctionSource,
    LoadError,
    ProtocolError,
    invocation_to_wire,
    result_from_wire,
)
from runtime_actors.shared.jail_config import UNPRIVILEGED_UID, JailReport, WorkerLimits
from runtime_actors.shared.messages import Invocation, InvocationResult, LogEntry, PublishedFunction

__all__ = ["Executor", "JailUnavailable", "WorkerPool"]

logger = logging.getLogger(__name__)

_NOT_STARTED_RETRIES: Final = 2
"""How often a call that never started (its worker died running the call ahead of it) goes again."""


class JailUnavailable(RuntimeError):
    """The workers could not jail themselves and the pool was not started insecure."""


class _Busy(Exception):
    pass


@dataclass(eq=False, slots=True)
class _Waiter:
    """A call waiting for a worker: ``message``, when given, is sent by whoever frees one (``_offer``),
    so a worker's next call leaves the moment its previous answer is handled, not a loop turn later."""

    ready: asyncio.Future[tuple[_Slot, int | None]]
    message: dict[str, Any] | None


@dataclass(eq=False)
class _Slot:
    worker: WorkerProcess
    loaded: dict[str, str] = field(default_factory=dict)  # name -> hash of what this worker holds
    generation: int = -1  # the pool generation this worker was last synchronised to
    retiring: str | None = None  # why it goes once its calls in flight are answered
    shared: bool = False  # its calls in flight are invokes, and another may be sent behind them
    cpu_seconds: float = 0.0  # the worker's CPU time as of its last answer
    scratch_bytes: int = 0  # what its scratch directory held at its last answer


def _shareable(message: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """Whether a call may share a worker with others: invokes may; debug runs and loads may not."""
    return message is not None and message["op"] == "invoke"


def _error_result(status: int, code: str, message: str, duration_ms: float = 0.0) -> InvocationResult:
    body = error_json(code, message)
    level = "error" if status >= 500 else "info"
    return InvocationResult(
        status,
        {"content-type": "application/json"},
        body,
        logs=(LogEntry(time.time(), level, message),),
        duration_ms=duration_ms,
        error=code,
    )


def _failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, TimeoutError):
        return Failure.TIMED_OUT
    if isinstance(exc, NotStarted):  # the worker died on the call ahead of this one, before reading it
        return Failure.NOT_STARTED
    if isinstance(exc, WorkerGone):
        return Failure.WORKER_GONE
    return Failure.BROKEN_ANSWER  # a failure the worker reported, or an answer it got wrong


class WorkerPool:
    def __init__(
        self,
        size: int = 2,
        limits: WorkerLimits | None = None,
        scratch_root: Path | None = None,
        insecure: bool = False,
        db_executor: Executor | None = None,
        fetch_executor: Executor | None = None,
        *,
        load_timeout: float = 10.0,
        queue_timeout: float = 30.0,
        max_queue: int | None = None,
        min_landlock_abi: int = 1,
        python: str = sys.executable,
        pipeline_depth: int = 2,
        run_as: int | None = UNPRIVILEGED_UID,
        spares: SpareWorkers | None = None,
        max_size: int | None = None,
    ) -> None:
        if size < 1 or pipeline_depth not in (1, 2):
            raise ValueError("a worker pool needs at least one worker; pipeline_depth is 1 or 2")
        self.size = size
        self.max_size = max(size, max_size or size)
        """Workers the pool grows to while calls wait for one (it starts with ``size``)."""
        self.limits = limits or WorkerLimits()
        self.insecure = insecure
        self._scratch_root = scratch_root
        self._owned_scratch: Path | None = None  # claimed by start() when no scratch_root is given
        self._callbacks = Callbacks(db_executor, fetch_executor)
        self._load_timeout = load_timeout
        self._queue_timeout = queue_timeout
        self._max_queue = max_queue if max_queue is not None else 64 * size
        # run_as: a root replica's workers switch to that uid; None: root without capabilities
        self._spec = WorkerSpec(self.limits, insecure, min_landlock_abi, python, run_as)
        self._spares = spares
        self._functions: dict[str, FunctionSource] = {}
        self._env: dict[str, str] = {}
        self._generation = 0
        self._slots: set[_Slot] = set()
        self._idle: deque[_Slot] = deque()
        self._depth = pipeline_depth
        self._shared: dict[_Slot, None] = {}  # running invokes with room for another, oldest first
        self._waiters: deque[_Waiter] = deque()
        self._replacing: set[asyncio.Task[None]] = set()  # replacements and additions in progress
        self._growing = 0
        self._load_lock = asyncio.Lock()
        self._serial = itertools.count()
        self._closed = False
        self.jail: JailReport | None = None
        """What the workers' jail enforces, from the first worker's hello."""

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._scratch_root is None:
            self._owned_scratch = self._scratch_root = claim_scratch()
        results = await asyncio.gather(*(self._spawn() for _ in range(self.size)), return_exceptions=True)
        slots = [r for r in results if isinstance(r, _Slot)]
        failures = [r for r in results if not isinstance(r, _Slot)]
        if failures:
            await asyncio.gather(*(s.worker.kill() for s in slots))
            refused = next((f for f in failures if isinstance(f, WorkerRefused)), None)
            if refused is not None:
                raise JailUnavailable(
                    f"the worker jail could not be applied ({refused}); tenant code will not run. "
                    "Use a kernel with Landlock and seccomp, or start the pool with insecure=True "
                    "for local development only."
                ) from refused
            raise failures[0]
        self.jail = slots[0].worker.jail
        if not self.jail.secure:
            logger.warning(
                "INSECURE worker pool: tenant code runs without a full jail: %s", self.jail.failures
            )
        for slot in slots:
            self._slots.add(slot)
            self._offer(slot)

    async def close(self) -> None:
        """Stop every worker; calls in flight end with an error result, later ones get 503."""
        if self._closed:
            return
        self._closed = True
        slots, self._slots = list(self._slots), set()  # from here on nothing is retired or replaced
        self._idle.clear()
        self._shared.clear()
        for waiter in self._waiters:
            if not waiter.ready.done():
                waiter.ready.set_exception(_Busy("the worker pool is closed"))
        self._waiters.clear()
        replacing = list(self._replacing)
        for task in replacing:
            task.cancel()
        await asyncio.gather(*replacing, return_exceptions=True)
        await asyncio.gather(*(self._dispose(s) for s in slots), return_exceptions=True)
        if self._owned_scratch is not None:
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, self._owned_scratch, True)

    @property
    def functions(self) -> Mapping[str, FunctionSource]:
        return dict(self._functions)

    @property
    def queued(self) -> int:
        """Calls waiting for a free worker."""
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        """Calls and loads sent to workers and not yet answered."""
        return sum(s.worker.in_flight for s in self._slots)

    @property
    def worker_pids(self) -> list[int]:
        return sorted(s.worker.pid for s in self._slots)

    # ---- loading -----------------------------------------------------------------------------

    async def load(
        self,
        functions: Iterable[PublishedFunction | FunctionSource | Mapping[str, Any]],
        *,
        replace: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Make ``functions`` current (with ``replace``, the whole set: others are unloaded).

        Returns ``{name: error}`` for code that did not load ("message (line L, column C)"); those
        functions keep their previous version, if they had one.
        """
        async with self._load_lock:
            sources = [FunctionSource.of(f) for f in functions]
            wanted = {s.name for s in sources}
            changed = [s for s in sources if self._functions.get(s.name) != s]
            removed = [n for n in self._functions if n not in wanted] if replace else []
            errors: dict[str, str] = {}
            if env is not None and dict(env) != self._env:
                self._env = dict(env)
                self._generation += 1
            for source in changed:
                error = await self._first_load(source)
                if error is None:
                    self._functions[source.name] = source
                    self._generation += 1
                else:
                    errors[source.name] = str(error)
            for name in removed:
                del self._functions[name]
                self._generation += 1
            await self._sync_idle()
            return errors

    async def _first_load(self, source: FunctionSource) -> LoadError | None:
        try:
            slot, _ = await self._checkout()
        except _Busy as exc:
            return LoadError(f"no worker was free to load the function: {exc}")
        try:
            await self._sync(slot)
            answer = await asyncio.wait_for(
                self._request(slot, self._load_message([source])), self._load_timeout
            )
        except TimeoutError:
            self._retire(slot, "loading timed out")
            return LoadError(f"the module's top-level code did not finish within {self._load_timeout:g} s")
        except (WorkerGone, ProtocolError) as exc:
            self._retire(slot, str(exc))
            return LoadError(f"the worker stopped while loading the function: {exc}")
        except BaseException:
            self._retire(slot, "cancelled while loading")
            raise
        raw = answer.get("errors", {}).get(source.name) if isinstance(answer.get("errors"), dict) else None
        if raw is None:
            slot.loaded[source.name] = source.hash
        self._offer(slot)
        return None if raw is None else LoadError.from_wire(raw)

    def _load_message(self, sources: list[FunctionSource], unload: Iterable[str] = ()) -> dict[str, Any]:
        return {
            "op": "load",
            "functions": [s.to_wire() for s in sources],
            "unload": list(unload),
            "env": self._env,
        }

    async def _sync(self, slot: _Slot) -> None:
        """Bring a checked-out worker to the pool's current functions and env (one function per frame)."""
        if slot.generation == self._generation:
            return
        generation = self._generation
        stale = [s for s in self._functions.values() if slot.loaded.get(s.name) != s.hash]
        gone = [n for n in slot.loaded if n not in self._functions]
        for source in stale:
            answer = await asyncio.wait_for(
                self._request(slot, self._load_message([source])), self._load_timeout
            )
            if answer.get("errors"):
                logger.warning(
                    "worker %d failed to load %s, which loaded before", slot.worker.pid, source.name
                )
            slot.loaded[source.name] = source.hash
        if gone or not stale:  # the env travels with every load frame; send one if nothing else went
            await asyncio.wait_for(self._request(slot, self._load_message([], gone)), self._load_timeout)
            for name in gone:
                slot.loaded.pop(name, None)
        slot.generation = generation

    async def _sync_idle(self) -> None:
        idle, self._idle = list(self._idle), deque()

        async def sync(slot: _Slot) -> None:
            try:
                await self._sync(slot)
            except BaseException as exc:
                self._retire(slot, f"reload failed: {exc!r}")
                if not isinstance(exc, Exception):
                    raise
            else:
                self._offer(slot)

        await asyncio.gather(*(sync(s) for s in idle))

    # ---- calls ---------------------------------------------------------------------------------

    async def invoke(self, name: str, invocation: Invocation, timeout: float = 10.0) -> InvocationResult:  # noqa: ASYNC109
        """Run ``name`` once; every failure is an ``InvocationResult`` (never an exception)."""
        if name not in self._functions:
            return _error_result(404, "not_found", f"function '{name}' is not loaded in this environment")
        message = {"op": "invoke", "invocation": {**invocation_to_wire(invocation), "function": name}}
        return await self._call(message, timeout)

    async def debug(self, code: str, invocation: Invocation, timeout: float = 10.0) -> InvocationResult:  # noqa: ASYNC109
        """Load ``code`` transiently in a worker and run it once (load errors answer 400)."""
        return await self._call(
            {"op": "debug", "code": code, "invocation": invocation_to_wire(invocation)}, timeout
        )

    async def _call(self, message: dict[str, Any], timeout: float) -> InvocationResult:  # noqa: ASYNC109
        if self._closed:
            return _error_result(503, "unavailable", "the worker pool is closed")
        for attempt in range(_NOT_STARTED_RETRIES + 1):
            try:
                slot, sent = await self._checkout(message)
            except _Busy as exc:
                return _error_result(
                    503, "unavailable", f"all {self.size} workers are busy ({exc}); retry shortly"
                )
            if sent is None:
                try:
                    await self._sync(slot)
                except Exception as exc:
                    self._retire(slot, f"reloading failed: {exc!r}")
                    return _error_result(
                        503,
                        "unavailable",
                        "A worker could not load this environment's functions; retry shortly.",
                    )
                except BaseException:
                    self._retire(slot, "cancelled while reloading")
                    raise
            if sent is not None:  # sent behind another call: its watchdog starts when that one is done
                try:
                    await slot.worker.turn(sent)
                except BaseException:  # given up before it ran: the call ahead may finish in peace
                    self._retire_when_idle(slot, "a call sent behind another was given up")
                    raise
            started = time.perf_counter()
            try:
                if sent is None:
                    sent = slot.worker.start(message)
                    if _shareable(message):
                        slot.shared = True
                        self._offer(slot)  # room behind this call for the next one
                async with asyncio.timeout(timeout):  # the watchdog: no extra task per call, unlike wait_for
                    answer = self._checked(await slot.worker.answer(sent, self._callbacks))
                result = result_from_wire(answer.get("result")) if answer.get("op") == "result" else None
                if result is None:
                    raise ProtocolError(f"the worker answered a call with {answer.get('op')!r}")
            except (TimeoutError, WorkerGone, ProtocolError) as exc:
                failure = _failure_of(exc)
                event = Failed(failure, retries_left=attempt < _NOT_STARTED_RETRIES, pool_closed=self._closed)
                step = decide(self._pool_state(slot), event)
                assert isinstance(step, Replace)
                reason = str(failure) if failure is Failure.TIMED_OUT else str(exc)
                if step.when_idle:
                    self._retire_when_idle(slot, reason)
                else:
                    self._retire(slot, reason)
                if step.retry:
                    continue
                return self._failed_call(failure, exc, timeout, (time.perf_counter() - started) * 1000)
            except BaseException:
                self._retire(slot, "the call was cancelled")
                raise
            cpu = answer["result"].get("cpu_seconds")
            if isinstance(cpu, int | float):
                slot.cpu_seconds = float(cpu)
            slot.scratch_bytes = scratch_usage(slot.worker.scratch_dir, self.limits.scratch_bytes)
            if isinstance(decide(self._pool_state(slot), ANSWERED), Recycle):
                self._retire_when_idle(
                    slot,
                    f"recycled after {slot.cpu_seconds:.0f} s of CPU time "
                    f"with {slot.scratch_bytes // 1024} KiB in its scratch directory",
                )
            else:
                self._offer(slot)
            elapsed = (time.perf_counter() - started) * 1000
            return InvocationResult(
                result.status, result.headers, result.body, result.logs, elapsed, result.error
            )
        raise AssertionError("unreachable: the last attempt returns")

    def _failed_call(
        self,
        failure: Failure,
        exc: BaseException,
        timeout: float,
        elapsed_ms: float,
    ) -> InvocationResult:
        """What the caller of a failed call gets (its worker is already being replaced)."""
        if failure is Failure.TIMED_OUT:
            return _error_result(
                504,
                "timeout",
                f"The function did not finish within {timeout:g} s; its worker was stopped and replaced.",
                elapsed_ms,
            )
        if failure is Failure.NOT_STARTED:
            return _error_result(
                503, "unavailable", f"The function's worker stopped before running the call: {exc}."
            )
        if self._closed:
            return _error_result(503, "unavailable", "the worker pool was closed during the call", elapsed_ms)
        return _error_result(
            500,
            "internal",
            f"The function's worker stopped during the call: {exc}. It has been replaced.",
            elapsed_ms,
        )

    async def _request(self, slot: _Slot, message: dict[str, Any]) -> dict[str, Any]:
        return self._checked(await slot.worker.request(message, self._callbacks))

    @staticmethod
    def _checked(answer: dict[str, Any]) -> dict[str, Any]:
        if answer["op"] == "error":
            raise ProtocolError(str(answer.get("message", "the worker failed")))
        return answer

    # ---- workers -------------------------------------------------------------------------------

    async def _spawn(self) -> _Slot:
        assert self._scratch_root is not None, "start() sets the scratch root"
        spare = None if self._spares is None else self._spares.take(self._spec)
        if spare is not None:
            return _Slot(spare)
        return _Slot(await self._spec.spawn(self._scratch_root / f"worker-{next(self._serial)}"))

    async def _checkout(self, message: dict[str, Any] | None = None) -> tuple[_Slot, int | None]:
        """A free worker; else, for an ``invoke``, one running invokes with room for another (the call
        is sent at once and runs when the one ahead of it is done); else wait for one, and if ``message``
        is given and the worker is in sync by then, it comes back already sent (with its request id,
        else None)."""
        call = Arrived(WaitingCall(shareable=_shareable(message), has_frame=message is not None))
        while True:
            if self._closed:
                raise _Busy("the worker pool is closed")
            action = decide(self._pool_state(), call)
            if isinstance(action, TakeIdle):
                slot = self._idle.popleft()
            elif isinstance(action, SendBehind):
                assert _shareable(message)
                slot = next(reversed(self._shared))  # the call ahead started last: likely done first
                del self._shared[slot]
                sent = self._send_behind(slot, message)
                if sent is not None:
                    return slot, sent
                continue
            elif isinstance(action, Refuse):
                raise _Busy(action.reason)
            else:
                self._grow()
                waiter = _Waiter(asyncio.get_running_loop().create_future(), message)
                self._waiters.append(waiter)
                try:
                    slot, sent = await asyncio.wait_for(waiter.ready, self._queue_timeout)
                except TimeoutError:
                    self._give_back(waiter)  # a worker may have come in the same loop turn (3.12+)
                    raise _Busy(f"no worker became free within {self._queue_timeout:g} s") from None
                except asyncio.CancelledError:
                    self._give_back(waiter)
                    raise
                finally:
                    # Not deque.remove in a try: its ValueError formats the future's repr every time.
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                if sent is not None:
                    return slot, sent
            if slot.worker.alive:
                return slot, None
            self._retire(slot, "it died while it was idle")

    def _send_behind(self, slot: _Slot, message: dict[str, Any]) -> int | None:
        """Send ``message`` to ``slot``, which runs invokes and has room for another: its request id, or
        None when the worker cannot take it (out of sync, dying: it is parked or retired instead)."""
        sent: int | None = None
        if self._can_share(slot):
            try:
                sent = slot.worker.start(message)
            except WorkerGone as exc:
                self._retire(slot, str(exc))
        self._offer(slot)  # parks it again while it has room
        return sent

    def _give_back(self, waiter: _Waiter) -> None:
        """A waiter that gives up returns the worker it was handed, if any (retired if its call left)."""
        ready = waiter.ready
        if ready.done() and not ready.cancelled() and ready.exception() is None:
            handed, in_flight = ready.result()
            if in_flight is None:
                self._offer(handed)
            elif handed.worker.give_up(in_flight):  # it may be running: stop it
                self._retire(handed, "the call was given up after it was sent")
            else:
                self._retire_when_idle(handed, "a call sent behind another was given up")

    def _offer(self, slot: _Slot) -> None:
        """Apply the scheduler's decisions for a worker that finished something (``Freed``): hand it to
        waiting calls — sending each one's call at once when the scheduler says so — then park it.
        Never raises."""
        if self._closed or slot not in self._slots:
            return
        self._shared.pop(slot, None)
        worker = slot.worker
        if slot.retiring is None and worker.in_flight == 0:
            slot.shared = False
        while True:
            while self._waiters and self._waiters[0].ready.done():
                self._waiters.popleft()
            action = decide(self._pool_state(slot), FREED)
            if isinstance(action, Park):
                if action.where is Parking.IDLE:
                    self._idle.append(slot)
                elif action.where is Parking.SHARED:
                    self._shared[slot] = None
                return
            if isinstance(action, RetireNow):
                self._retire(slot, slot.retiring or "retired")
                return
            if isinstance(action, Stay):
                return
            assert isinstance(action, Hand)
            waiter = self._waiters.popleft()
            busy = worker.in_flight
            sent: int | None = None
            if action.send and waiter.message is not None:
                try:
                    sent = worker.start(waiter.message)
                except Exception:  # a dead worker, or a frame that cannot be encoded: the waiter sends
                    sent = None  # it itself, so the failure is its own and not the releasing call's
            if busy and sent is None:  # it may not have the worker to itself: it waits on
                self._waiters.appendleft(waiter)
                if worker.in_flight == 0:
                    self._idle.append(slot)
                return
            waiter.ready.set_result((slot, sent))
            if sent is None or not _shareable(waiter.message):
                return  # the waiter has the worker to itself (to bring it in sync, or for a debug run)
            slot.shared = True

    def _pool_state(self, slot: _Slot | None = None) -> PoolState:
        """What the scheduler decides from: ``slot`` (when the decision is about one) and the queue."""
        waiting = self._waiters[0] if self._waiters else None
        return PoolState(
            pipeline_depth=self._depth,
            worker=None if slot is None else self._worker_state(slot),
            next_waiting=None
            if waiting is None
            else WaitingCall(shareable=_shareable(waiting.message), has_frame=waiting.message is not None),
            waiting=len(self._waiters),
            idle=bool(self._idle),
            shared=bool(self._shared),
            max_queue=self._max_queue,
        )

    def _worker_state(self, slot: _Slot) -> WorkerState:
        return WorkerState(
            in_flight=slot.worker.in_flight,
            writable=slot.worker.open,
            in_sync=slot.generation == self._generation,
            retiring=slot.retiring is not None,
            shared=slot.shared,
            cpu_share=slot.cpu_seconds / self.limits.cpu_seconds,
            scratch_share=slot.scratch_bytes / self.limits.scratch_bytes,
        )

    def _can_share(self, slot: _Slot) -> bool:
        """Whether a call may be sent behind the invokes ``slot`` is running."""
        return can_share(self._worker_state(slot), self._depth)

    def _retire_when_idle(self, slot: _Slot, reason: str) -> None:
        """Send ``slot`` nothing more and retire it once the calls in flight on it are answered (a
        request given up while it waited behind another still reaches the worker: it goes with it)."""
        if slot.retiring is None:
            slot.retiring = reason
        self._offer(slot)

    def _retire(self, slot: _Slot, reason: str) -> None:
        """Kill ``slot``'s worker and start a replacement (both in the background)."""
        if slot not in self._slots:
            return
        self._slots.discard(slot)
        self._shared.pop(slot, None)
        logger.info("replacing worker %d: %s", slot.worker.pid, reason)
        task = asyncio.get_running_loop().create_task(self._replace(slot))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _dispose(self, slot: _Slot) -> None:
        await slot.worker.dispose()

    def _grow(self) -> None:
        """A call is about to wait: add a worker in the background, up to ``max_size``."""
        if self._closed or len(self._slots) + self._growing >= self.max_size:
            return
        self._growing += 1
        logger.info("adding a worker: calls are waiting (%d of at most %d)", len(self._slots), self.max_size)
        task = asyncio.get_running_loop().create_task(self._grow_by_one())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _grow_by_one(self) -> None:
        try:
            await self._add_worker(retry=False)
        finally:
            self._growing -= 1

    async def _replace(self, old: _Slot) -> None:
        await self._dispose(old)
        await self._add_worker(retry=True)

    async def _add_worker(self, *, retry: bool) -> None:
        """Spawn (or take a spare), bring it in sync, put it to work; with ``retry``, until it works."""
        delay = 0.05
        while not self._closed:
            slot: _Slot | None = None
            try:
                slot = await self._spawn()
                await self._sync(slot)
            except asyncio.CancelledError:
                if slot is not None:
                    await self._dispose(slot)
                raise
            except Exception as exc:
                if slot is not None:
                    await self._dispose(slot)
                if not retry:
                    logger.error("could not add a worker (%r); the pool keeps %d", exc, len(self._slots))
                    return
                logger.error("could not start a replacement worker (%r); retrying in %.2f s", exc, delay)
            else:
                if self._closed:
                    await self._dispose(slot)
                    return
                self._slots.add(slot)
                self._offer(slot)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
