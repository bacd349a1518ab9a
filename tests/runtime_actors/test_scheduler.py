"""The worker pool's scheduling rules (``replica.pool.scheduler.decide``) without a process: exhaustive
sweeps over worker and queue states, and the pipelining of one worker played out step by step."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from runtime_actors.replica.pool.scheduler import (
    RECYCLE_AT_CPU_SHARE,
    SHARE_BELOW_CPU_SHARE,
    Answered,
    Arrived,
    Failed,
    Failure,
    Freed,
    Hand,
    Offer,
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
    Wait,
    WaitingCall,
    WorkerState,
    can_share,
    decide,
)

INVOKE = WaitingCall(shareable=True, has_frame=True)
DEBUG = WaitingCall(shareable=False, has_frame=True)
LOAD = WaitingCall(shareable=False, has_frame=False)
DEPTH = 2


def workers() -> Iterator[WorkerState]:
    for in_flight, writable, in_sync, retiring, shared, cpu_share in itertools.product(
        (0, 1, 2, 3), (True, False), (True, False), (True, False), (True, False), (0.0, 0.6, 0.9)
    ):
        yield WorkerState(in_flight, writable, in_sync, retiring, shared, cpu_share)


def test_a_call_is_shared_only_on_a_worker_that_meets_every_condition() -> None:
    for worker in workers():
        expected = (
            worker.shared
            and not worker.retiring
            and worker.in_flight < DEPTH
            and worker.in_sync
            and worker.writable
            and worker.cpu_share < SHARE_BELOW_CPU_SHARE
        )
        assert can_share(worker, DEPTH) is expected, worker
    assert not can_share(WorkerState(1, True, True, shared=True), pipeline_depth=1)


@pytest.mark.parametrize(
    ("state", "call", "action"),
    [
        (PoolState(DEPTH, idle=True, shared=True, waiting=3, max_queue=3), INVOKE, TakeIdle()),
        (PoolState(DEPTH, idle=True, max_queue=0), DEBUG, TakeIdle()),
        (PoolState(DEPTH, shared=True, max_queue=4), INVOKE, SendBehind()),
        (PoolState(DEPTH, shared=True, max_queue=4), DEBUG, Wait()),
        (PoolState(DEPTH, shared=True, max_queue=4), LOAD, Wait()),
        (PoolState(DEPTH, shared=True, waiting=1, max_queue=4), INVOKE, Wait()),  # no overtaking
        (PoolState(DEPTH, waiting=3, max_queue=4), INVOKE, Wait()),
        (PoolState(DEPTH, waiting=4, max_queue=4), INVOKE, Refuse("4 calls are already waiting")),
    ],
)
def test_an_arriving_call_takes_an_idle_worker_then_room_behind_an_invoke_then_waits(
    state: PoolState, call: WaitingCall, action: object
) -> None:
    assert decide(state, Arrived(call)) == action


def test_a_freed_worker_is_handed_parked_or_retired_by_the_rules_in_every_state() -> None:
    for worker, waiting in itertools.product(workers(), (None, INVOKE, DEBUG, LOAD)):
        action = decide(
            PoolState(DEPTH, worker=worker, next_waiting=waiting, waiting=int(bool(waiting))), Freed()
        )
        if worker.retiring:
            assert action == (RetireNow() if worker.in_flight == 0 else Stay()), worker
        elif waiting is not None and (
            worker.in_flight == 0 or (can_share(worker, DEPTH) and waiting.shareable)
        ):
            assert action == Hand(send=waiting.has_frame and worker.in_sync and worker.writable), worker
        elif worker.in_flight == 0:
            assert action == Park(Parking.IDLE), worker
        elif waiting is None and can_share(worker, DEPTH):
            assert action == Park(Parking.SHARED), worker
        else:
            assert action == Park(Parking.NOWHERE), (worker, waiting)


def test_a_busy_worker_never_takes_more_than_the_pipeline_depth_nor_a_debug_run() -> None:
    for worker, waiting in itertools.product(workers(), (INVOKE, DEBUG, LOAD)):
        action = decide(PoolState(DEPTH, worker=worker, next_waiting=waiting, waiting=1), Freed())
        if isinstance(action, Hand) and worker.in_flight > 0:
            assert worker.in_flight < DEPTH and waiting is INVOKE and not worker.retiring


def test_an_answer_recycles_a_worker_past_its_cpu_share_else_offers_it() -> None:
    worker = WorkerState(0, True, True)
    for share, action in (
        (0.0, Offer()),
        (RECYCLE_AT_CPU_SHARE, Offer()),
        (0.81, Recycle()),
        (2.0, Recycle()),
    ):
        assert decide(PoolState(DEPTH, worker=worker._replace(cpu_share=share)), Answered()) == action


def test_an_answer_recycles_a_worker_past_its_scratch_budget() -> None:
    worker = WorkerState(0, writable=True, in_sync=True)
    for share, action in ((0.0, Offer()), (1.0, Offer()), (1.01, Recycle())):
        assert decide(PoolState(DEPTH, worker=worker._replace(scratch_share=share)), Answered()) == action


def test_a_failed_call_costs_its_worker_and_only_a_call_that_never_started_goes_again() -> None:
    state = PoolState(DEPTH, worker=WorkerState(1, True, True, shared=True))
    for failure, retries_left, closed in itertools.product(Failure, (True, False), (True, False)):
        action = decide(state, Failed(failure, retries_left, closed))
        assert action == Replace(
            when_idle=failure is Failure.BROKEN_ANSWER,  # a call sent behind it may still finish
            retry=failure is Failure.NOT_STARTED and retries_left and not closed,
        ), (failure, retries_left, closed)


def test_one_worker_runs_a_call_takes_one_behind_it_and_queues_the_third() -> None:
    """The pool's loop, played with plain values: three invokes on one worker of pipeline depth 2."""
    worker = WorkerState(0, writable=True, in_sync=True)
    pool = PoolState(DEPTH, worker=worker, max_queue=8)

    assert decide(pool, Freed()) == Park(Parking.IDLE)  # a new worker waits idle
    pool = pool._replace(idle=True)
    assert decide(pool, Arrived(INVOKE)) == TakeIdle()
    worker = worker._replace(in_flight=1, shared=True)  # the first call runs; there is room behind it
    pool = pool._replace(worker=worker, idle=False)
    assert decide(pool, Freed()) == Park(Parking.SHARED)
    pool = pool._replace(shared=True)
    assert decide(pool, Arrived(INVOKE)) == SendBehind()
    worker = worker._replace(in_flight=2)  # full: it is offered again when the first answer comes
    pool = pool._replace(worker=worker, shared=False)
    assert decide(pool, Freed()) == Park(Parking.NOWHERE)
    assert decide(pool, Arrived(INVOKE)) == Wait()
    pool = pool._replace(next_waiting=INVOKE, waiting=1)

    worker = worker._replace(in_flight=1)  # the first call is answered: the waiting one goes behind
    pool = pool._replace(worker=worker)
    assert decide(pool, Answered()) == Offer()
    assert decide(pool, Freed()) == Hand(send=True)
    assert decide(pool._replace(worker=worker._replace(in_sync=False)), Freed()) == Park(Parking.NOWHERE)
    assert decide(pool._replace(next_waiting=DEBUG), Freed()) == Park(Parking.NOWHERE)  # waits for idle
