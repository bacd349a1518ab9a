"""The worker pool's scheduling rules as pure functions: which worker a call gets, and where a worker goes.

``decide(state, event) -> action`` looks at a plain snapshot of the pool (``PoolState``: the worker
concerned and the calls waiting, as ``WorkerState`` and ``WaitingCall``) and says what to do next;
``WorkerPool`` applies the action to the real workers and asks again until the action ends the step.
Nothing here touches a process, a future or the event loop, so every rule is unit-tested alone.
The states are named tuples and the answers mostly prebuilt constants: ``decide`` runs several times
per call on the replica's hot path.

The rules:

- A call takes an idle worker first. Else an ``invoke`` may be sent *behind* the invokes a worker is
  running (``pipeline_depth`` calls per worker) when no call is waiting ahead of it. Else it waits,
  up to ``max_queue`` waiting calls.
- A call may be sent behind another (``can_share``) only on a worker that runs invokes, is not
  retiring, has room, holds the pool's current functions, can still be written to, and has used less
  than ``SHARE_BELOW_CPU_SHARE`` of its CPU-time limit.
- A worker whose call ended (``Freed``) is offered to the waiting calls, oldest first: a busy worker
  takes only an ``invoke`` it can share; a waiting call's frame is sent at once when the worker holds
  the current functions, else the call gets the worker to bring it in sync itself. A call that is not
  sent at once, or is not an ``invoke``, has the worker to itself. What is left is parked: idle with
  nothing in flight, shared while it runs invokes with room and nothing waits. A retiring worker takes
  nothing and goes when its last call is answered.
- A worker past ``RECYCLE_AT_CPU_SHARE`` of its CPU-time limit, or past its scratch budget, after an
  answer retires once idle.
- A failed call (``Failed``) costs its worker: replaced at once when it timed out, died, or died on
  the call ahead before reading this one (which then goes to another worker while retries are left
  and the pool is open); replaced once idle when it answered wrongly or reported a failure (a call
  sent behind may still finish on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NamedTuple

__all__ = [
    "ANSWERED",
    "FREED",
    "RECYCLE_AT_CPU_SHARE",
    "SHARE_BELOW_CPU_SHARE",
    "Answered",
    "Arrived",
    "Failed",
    "Failure",
    "Freed",
    "Hand",
    "Offer",
    "Park",
    "Parking",
    "PoolState",
    "Recycle",
    "Refuse",
    "Replace",
    "RetireNow",
    "SendBehind",
    "Stay",
    "TakeIdle",
    "Wait",
    "WaitingCall",
    "WorkerState",
    "can_share",
    "decide",
]

RECYCLE_AT_CPU_SHARE: Final = 0.8
SHARE_BELOW_CPU_SHARE: Final = 0.5
"""No call is sent behind another on a worker past this share of its CPU-time limit (it is recycled at
``RECYCLE_AT_CPU_SHARE``; a call behind must not start close to the limit)."""


class WorkerState(NamedTuple):
    in_flight: int
    """Calls and loads sent to it and not yet answered."""
    writable: bool
    """Its socket can still take a frame."""
    in_sync: bool
    """It holds the pool's current functions and env."""
    retiring: bool = False
    shared: bool = False
    """Its calls in flight are invokes, and another may be sent behind them."""
    cpu_share: float = 0.0
    """Its CPU time as of its last answer, as a share of its CPU-time limit."""
    scratch_share: float = 0.0
    """What its scratch directory holds as of its last answer, as a share of its budget."""


class WaitingCall(NamedTuple):
    shareable: bool
    """An ``invoke``: it may run behind another call on one worker (debug runs and loads may not)."""
    has_frame: bool
    """It came with its frame, which whoever frees a worker may send at once."""


class PoolState(NamedTuple):
    pipeline_depth: int
    worker: WorkerState | None = None
    """The worker the event is about."""
    next_waiting: WaitingCall | None = None
    """The oldest call waiting for a worker (None when none waits)."""
    waiting: int = 0
    """How many calls wait."""
    idle: bool = False
    """Some worker is idle."""
    shared: bool = False
    """Some worker runs invokes with room for another."""
    max_queue: int = 0


# ---- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrived:
    """A call wants a worker."""

    call: WaitingCall


@dataclass(frozen=True, slots=True)
class Freed:
    """``state.worker`` finished something (or is new): offer it to the waiting calls, or park it."""


@dataclass(frozen=True, slots=True)
class Answered:
    """``state.worker`` answered an invoke."""


class Failure(StrEnum):
    TIMED_OUT = "timed out"
    NOT_STARTED = "not started"
    """The worker died on the call ahead, before it read this one."""
    WORKER_GONE = "worker gone"
    BROKEN_ANSWER = "broken answer"
    """The worker reported a failure of its own, or answered something the protocol does not allow."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A call on ``state.worker`` failed."""

    failure: Failure
    retries_left: bool
    pool_closed: bool


Event = Arrived | Freed | Answered | Failed


# ---- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TakeIdle:
    """The arriving call takes an idle worker."""


@dataclass(frozen=True, slots=True)
class SendBehind:
    """The arriving call is sent behind the invokes of the worker that started one last."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The arriving call waits for a worker."""


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


@dataclass(frozen=True, slots=True)
class Hand:
    """Hand the worker to the oldest waiting call, its frame sent at once when ``send``."""

    send: bool


class Parking(StrEnum):
    IDLE = "idle"
    SHARED = "shared"
    NOWHERE = "nowhere"
    """Busy without room (or something waits for it to be free): it is offered again when a call ends."""


@dataclass(frozen=True, slots=True)
class Park:
    where: Parking


@dataclass(frozen=True, slots=True)
class RetireNow:
    """The retiring worker has nothing in flight: replace it."""


@dataclass(frozen=True, slots=True)
class Stay:
    """Nothing to do until the worker's calls in flight are answered."""


@dataclass(frozen=True, slots=True)
class Recycle:
    """Retire the worker once idle: it used most of its CPU-time limit."""


@dataclass(frozen=True, slots=True)
class Offer:
    """Offer the worker to the waiting calls (what ``Freed`` decides next)."""


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the worker of a failed call — at once, or once its calls in flight are answered — and
    either send the call again (``retry``) or answer its failure."""

    when_idle: bool
    retry: bool


Action = TakeIdle | SendBehind | Wait | Refuse | Hand | Park | RetireNow | Stay | Recycle | Offer | Replace


_TAKE_IDLE: Final = TakeIdle()
_SEND_BEHIND: Final = SendBehind()
_WAIT: Final = Wait()
_SEND: Final = Hand(send=True)
_DO_NOT_SEND: Final = Hand(send=False)
_PARK_IDLE: Final = Park(Parking.IDLE)
_PARK_SHARED: Final = Park(Parking.SHARED)
_PARK_NOWHERE: Final = Park(Parking.NOWHERE)
_RETIRE_NOW: Final = RetireNow()
_STAY: Final = Stay()
_RECYCLE: Final = Recycle()
_OFFER: Final = Offer()
FREED: Final = Freed()
ANSWERED: Final = Answered()


def can_share(worker: WorkerState, pipeline_depth: int) -> bool:
    """Whether a call may be sent behind the invokes ``worker`` is running."""
    return (
        worker.shared
        and not worker.retiring
        and worker.in_flight < pipeline_depth
        and worker.in_sync
        and worker.writable
        and worker.cpu_share < SHARE_BELOW_CPU_SHARE
    )


def decide(state: PoolState, event: Event) -> Action:
    """The next step for ``event`` in ``state`` (see the module docstring for the rules)."""
    if isinstance(event, Arrived):
        return _arrived(state, event.call)
    if isinstance(event, Failed):
        retry = event.failure is Failure.NOT_STARTED and event.retries_left and not event.pool_closed
        return Replace(when_idle=event.failure is Failure.BROKEN_ANSWER, retry=retry)
    worker = state.worker
    assert worker is not None, "Freed and Answered are about a worker"
    if isinstance(event, Answered):
        over = worker.cpu_share > RECYCLE_AT_CPU_SHARE or worker.scratch_share > 1
        return _RECYCLE if over else _OFFER
    return _freed(state, worker)


def _arrived(state: PoolState, call: WaitingCall) -> Action:
    if state.idle:
        return _TAKE_IDLE
    if call.shareable and state.shared and not state.waiting:
        return _SEND_BEHIND
    if state.waiting >= state.max_queue:
        return Refuse(f"{state.waiting} calls are already waiting")
    return _WAIT


def _freed(state: PoolState, worker: WorkerState) -> Action:
    if worker.retiring:
        return _RETIRE_NOW if worker.in_flight == 0 else _STAY
    first = state.next_waiting
    if first is not None:
        busy = worker.in_flight > 0
        if not busy or (can_share(worker, state.pipeline_depth) and first.shareable):
            return _SEND if first.has_frame and worker.in_sync and worker.writable else _DO_NOT_SEND
    if worker.in_flight == 0:
        return _PARK_IDLE
    if first is None and can_share(worker, state.pipeline_depth):
        return _PARK_SHARED
    return _PARK_NOWHERE
