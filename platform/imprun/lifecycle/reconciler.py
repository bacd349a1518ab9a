"""The shared reconcile step: claim one resource, observe, decide, apply, release.

``Reconciler`` is the skeleton the gateway and environment reconcilers fill in (``observe``,
``decide``, ``apply``). One call of ``reconcile_one`` works on at most one resource, under its lease:
every applied step is timed and recorded as an event (holder, start, end), the lease is released so
the resource comes back at once (progress), after a short pause (waiting on something), after a
back-off (a temporary failure), or after the resync interval (settled: look for drift now and then).
A fault-injection hook can kill the process at a named step boundary, which is how the crash-safety
tests prove a SIGKILL anywhere is repaired by the next tick.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from imprun.domain.conditions import Condition, ConditionType
from imprun.domain.resource import LifecycleResource
from imprun.domain.steps import WAIT_STEPS, ClearFailed, MarkFailed, Transition
from imprun.errors import Conflict, ImprunError, Invalid, Unavailable
from imprun.lifecycle.transitions import resource_ref, transition
from imprun.observability.metrics import Metrics
from imprun.store.events import Event, EventLog
from imprun.store.lifecycle import Lease, LifecycleRepository

log = logging.getLogger(__name__)

R = TypeVar("R", bound=LifecycleResource)
O = TypeVar("O")  # noqa: E741 - the observation type
S = TypeVar("S")  # the step type


GONE = -1.0
"""``_reconcile``'s answer when the resource no longer exists (no lease to release)."""


def backoff_delay(failures: int, max_backoff: float) -> float:
    """Seconds before retry number ``failures``: 0.5 s doubling per failure, capped."""
    return float(min(max_backoff, 0.5 * 2.0 ** min(failures - 1, 10)))


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReconcileTiming:
    lease: timedelta = timedelta(seconds=60)
    waiting_recheck: float = 0.5
    settled_resync: float = 10.0
    max_backoff: float = 60.0


def step_name(step: object) -> str:
    """``DeployApp``, ``Transition-Started``…: how events and fault-injection points name a step."""
    if isinstance(step, Transition):
        return f"Transition-{step.to.value}"
    return type(step).__name__


class FaultInjector:
    """Kills the process with SIGKILL at a named step boundary (``"<kind>:<step name>:<before|after>"``,
    e.g. ``"environment:DeployApp:after"`` or ``"gateway:Transition-Deleted:before"``).

    Configured from ``IMPRUN_FAULT_CRASH_AT`` by the test harness only; a no-op when unset.
    """

    def __init__(self, crash_at: str | None) -> None:
        self.crash_at = crash_at

    def boundary(self, kind: str, step: str, where: str) -> None:
        if self.crash_at and self.crash_at == f"{kind}:{step}:{where}":
            log.warning("fault injection: SIGKILL at %s", self.crash_at)
            os.kill(os.getpid(), signal.SIGKILL)

    @classmethod
    def from_env(cls) -> FaultInjector:
        return cls(os.environ.get("IMPRUN_FAULT_CRASH_AT") or None)


class Reconciler(Generic[R, O, S]):
    kind = "resource"

    def __init__(
        self,
        repo: LifecycleRepository[R],
        events: EventLog,
        metrics: Metrics,
        *,
        holder: str,
        timing: ReconcileTiming,
        faults: FaultInjector | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo = repo
        self.events = events
        self.metrics = metrics
        self.holder = holder
        self.timing = timing
        self.faults = faults or FaultInjector(None)
        self.clock = clock
        self.lease: Lease | None = None  # of the resource being reconciled: every write presents it
        self._failures: dict[str, int] = {}

    # To be filled in by each kind -----------------------------------------------------------------

    def key(self, resource: R) -> str:
        raise NotImplementedError

    def observe(self, resource: R, now: datetime) -> O:
        raise NotImplementedError

    def decide(self, resource: R, observed: O) -> Sequence[S]:
        raise NotImplementedError

    def apply(self, resource: R, step: S, now: datetime) -> R | None:
        """Apply one kind-specific step; return the updated resource, or None when it is gone."""
        raise NotImplementedError

    # The shared skeleton ----------------------------------------------------------------------------

    def reconcile_one(self) -> bool:
        """Work on one claimable resource; False when there was none."""
        now = self.clock()
        leased = self.repo.claim_lease(holder=self.holder, now=now, lease=self.timing.lease)
        if leased is None:
            return False
        claimed, self.lease = leased
        key = self.key(claimed)
        started = time.perf_counter()
        outcome = "ok"
        release_after = 0.0
        try:
            release_after = self._reconcile(claimed, now)
            self._failures.pop(key, None)
        except Conflict as exc:
            outcome = "conflict"  # someone (the API) changed it under us: look again at once
            log.info("%s %s changed during reconcile: %s", self.kind, key, exc.message)
        except ImprunError as exc:
            outcome = "retry" if isinstance(exc, Unavailable) else "error"
            release_after = self._back_off(claimed, key, exc)
        except Exception as exc:  # the loop must never die: record it and back off
            outcome = "crash"
            log.exception("%s %s: unexpected error while reconciling", self.kind, key)
            release_after = self._back_off(claimed, key, exc)
        finally:
            self.metrics.reconcile_steps.labels(self.kind, outcome).inc()
            self.metrics.reconcile_latency.labels(self.kind).observe(time.perf_counter() - started)
        if release_after != GONE:
            self.repo.release(
                key, holder=self.holder, lease=self.timing.lease, now=self.clock(), after=release_after
            )
        self.lease = None
        return True

    def _reconcile(self, resource: R, now: datetime) -> float:
        observed = self.observe(resource, now)
        steps = self.decide(resource, observed)
        if not steps:
            return self.timing.settled_resync
        current: R | None = resource
        for step in steps:
            if isinstance(step, WAIT_STEPS):
                return self.timing.waiting_recheck
            assert current is not None
            current = self._apply_recorded(current, step)
            if current is None:
                return GONE  # the record is gone; nothing to release
        return 0.0

    def _apply_recorded(self, resource: R, step: S) -> R | None:
        name = step_name(step)
        self.faults.boundary(self.kind, name, "before")
        started_at = self.clock()
        if isinstance(step, Transition):
            result: R | None = transition(
                self.repo, self.events, resource, step.to, actor=self.holder, now=started_at, lease=self.lease
            )
        elif isinstance(step, MarkFailed):
            condition = Condition.failed(step.reason, step.message, started_at)
            result = resource.with_condition(condition, started_at)
            self._store_conditions(result)
            self._record(resource, "Warning", "Failed", step.message, started_at, step=name)
        elif isinstance(step, ClearFailed):
            result = resource.without_condition(ConditionType.FAILED, started_at)
            self._store_conditions(result)
        else:
            result = self.apply(resource, step, started_at)
        if not isinstance(step, Transition):
            self._record(resource, "Normal", "Step", name, self.clock(), step=name, started_at=started_at)
        self.faults.boundary(self.kind, name, "after")
        return result

    def _store_conditions(self, resource: R) -> None:
        conditions = [c.model_dump(mode="json", by_alias=True) for c in resource.conditions]
        self.update_leased(self.key(resource), {"conditions": conditions, "updatedAt": resource.updated_at})

    def update_leased(self, key: str, fields: Mapping[str, Any]) -> None:
        """Write fields of the resource being reconciled, only while this reconciler holds its lease."""
        if not self.repo.update(key, fields, lease=self.lease):
            raise Conflict(f"{self.kind} {key} changed hands (lease lost) or is gone; not written")

    def _record(
        self,
        resource: R,
        type_: str,
        reason: str,
        message: str,
        at: datetime,
        *,
        step: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        gateway_id, kind, ref = resource_ref(resource)
        self.events.append(
            Event(
                gateway_id=gateway_id,
                kind=kind,
                resource=ref,
                type=type_,
                reason=reason,
                message=message,
                at=at,
                actor=self.holder,
                step=step,
                started_at=started_at,
                from_phase=resource.phase.value,
            )
        )

    def _back_off(self, resource: R, key: str, exc: BaseException) -> float:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = backoff_delay(failures, self.timing.max_backoff)
        message = exc.message if isinstance(exc, ImprunError) else f"{type(exc).__name__}: {exc}"
        permanent = isinstance(exc, Invalid)
        log.warning("%s %s: %s (attempt %d, retry in %.1fs)", self.kind, key, message, failures, delay)
        try:
            reason = "StepFailedPermanently" if permanent else "StepFailed"
            self._record(resource, "Warning", reason, f"{message} (retry in {delay:.0f} s)", self.clock())
            if permanent or failures >= 3:
                now = self.clock()
                failed = resource.with_condition(Condition.failed(reason, message, now), now)
                self._store_conditions(failed)
        except ImprunError:
            pass  # the store is down as well; the log line above is all we can do
        return delay
