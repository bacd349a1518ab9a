"""The shared reconcile step: claim one resource, observe, decide, apply, release.

``LeasedReconciler`` is the skeleton every reconciler fills in (``observe``, ``decide``, ``apply``,
and how to record, fail and release its kind); ``Reconciler`` fills in what gateways and
environments share (phases, conditions on the resource), and the grant reconciler fills in the base
directly. One call of ``reconcile_one`` works on at most one resource, under its lease: every applied
step is timed and recorded as an event (holder, start, end), the lease is released so the resource
comes back at once (progress), after a short pause (waiting on something), after a back-off (a
failure), or after the resync interval (settled: look for drift now and then). The error type
decides the outcome: an ``Invalid`` — a step that can never work — fails the resource at once
(event and Failed condition ``StepFailedPermanently``); other failures do so on the third in a row.
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
from typing import Any, Generic, Protocol, TypeVar

from imprun.domain.conditions import PERMANENT_FAILURE, Condition, ConditionType
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
K_co = TypeVar("K_co", covariant=True)
K = TypeVar("K")  # any resource kept under a lease (a lifecycle resource, a grant)


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
    settled_resync: float = 120.0
    max_backoff: float = 60.0


def step_name(step: object) -> str:
    """``DeployApp``, ``Transition-Started``…: how events and fault-injection points name a step."""
    if isinstance(step, Transition):
        return f"Transition-{step.to.value}"
    return type(step).__name__


class LeasedStore(Protocol[K_co]):
    """What the skeleton needs of a repository: leases, and writes fenced by them."""

    def claim_lease(self, *, holder: str, now: datetime, lease: timedelta) -> tuple[K_co, Lease] | None: ...

    def update(self, key: str, fields: Mapping[str, Any], *, lease: Lease | None = None) -> bool: ...


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


class LeasedReconciler(Generic[K, O, S]):
    """The skeleton over any leased store: claim, observe, decide, apply recorded steps, release.

    Subclasses fill in ``key``, ``observe``, ``decide``, ``apply``, ``record`` (an event about the
    resource), ``store_failed`` (its Failed condition) and ``release`` (its lease)."""

    kind = "resource"
    wait_steps: tuple[type, ...] = WAIT_STEPS

    def __init__(
        self,
        repo: LeasedStore[K],
        events: EventLog,
        metrics: Metrics,
        *,
        holder: str,
        timing: ReconcileTiming,
        faults: FaultInjector | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = repo
        self.events = events
        self.metrics = metrics
        self.holder = holder
        self.timing = timing
        self.faults = faults or FaultInjector(None)
        self.clock = clock
        self.lease: Lease | None = None  # of the resource being reconciled: every write presents it
        self._failures: dict[str, int] = {}

    # To be filled in by each kind -----------------------------------------------------------------

    def key(self, resource: K) -> str:
        raise NotImplementedError

    def observe(self, resource: K, now: datetime) -> O:
        raise NotImplementedError

    def decide(self, resource: K, observed: O) -> Sequence[S]:
        raise NotImplementedError

    def apply(self, resource: K, step: S, now: datetime) -> K | None:
        """Apply one kind-specific step; return the updated resource, or None when it is gone."""
        raise NotImplementedError

    def record(
        self,
        resource: K,
        type_: str,
        reason: str,
        message: str,
        at: datetime,
        *,
        step: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        raise NotImplementedError

    def store_failed(self, resource: K, condition: Condition) -> None:
        """Set the resource's Failed condition (under the lease)."""
        raise NotImplementedError

    def release(self, resource: K, after: float) -> None:
        """Give the lease back; the resource becomes claimable again ``after`` seconds from now."""
        raise NotImplementedError

    # The shared skeleton ----------------------------------------------------------------------------

    def reconcile_one(self) -> bool:
        """Work on one claimable resource; False when there was none."""
        now = self.clock()
        leased = self.store.claim_lease(holder=self.holder, now=now, lease=self.timing.lease)
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
            self.release(claimed, release_after)
        self.lease = None
        return True

    def _reconcile(self, resource: K, now: datetime) -> float:
        observed = self.observe(resource, now)
        steps = self.decide(resource, observed)
        if not steps:
            return self.timing.settled_resync
        current: K | None = resource
        for step in steps:
            if isinstance(step, self.wait_steps):
                return self.timing.waiting_recheck
            assert current is not None
            current = self._apply_recorded(current, step)
            if current is None:
                return GONE  # the record is gone; nothing to release
        return 0.0

    def _apply_recorded(self, resource: K, step: S) -> K | None:
        name = step_name(step)
        self.faults.boundary(self.kind, name, "before")
        started_at = self.clock()
        result = self._apply_step(resource, step, started_at)
        if not isinstance(step, Transition):
            self.record(resource, "Normal", "Step", name, self.clock(), step=name, started_at=started_at)
        self.faults.boundary(self.kind, name, "after")
        return result

    def _apply_step(self, resource: K, step: S, now: datetime) -> K | None:
        return self.apply(resource, step, now)

    def update_leased(self, key: str, fields: Mapping[str, Any]) -> None:
        """Write fields of the resource being reconciled, only while this reconciler holds its lease."""
        if not self.store.update(key, fields, lease=self.lease):
            raise Conflict(f"{self.kind} {key} changed hands (lease lost) or is gone; not written")

    def _back_off(self, resource: K, key: str, exc: BaseException) -> float:
        """Retry later; an ``Invalid`` (the step can never work) fails the resource at once."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = backoff_delay(failures, self.timing.max_backoff)
        message = exc.message if isinstance(exc, ImprunError) else f"{type(exc).__name__}: {exc}"
        permanent = isinstance(exc, Invalid)
        log.warning("%s %s: %s (attempt %d, retry in %.1fs)", self.kind, key, message, failures, delay)
        try:
            reason = PERMANENT_FAILURE if permanent else "StepFailed"
            self.record(resource, "Warning", reason, f"{message} (retry in {delay:.0f} s)", self.clock())
            if permanent or failures >= 3:
                self.store_failed(resource, Condition.failed(reason, message, self.clock()))
        except ImprunError:
            pass  # the store is down as well; the log line above is all we can do
        return delay


class Reconciler(LeasedReconciler[R, O, S]):
    """The skeleton for lifecycle resources (gateways, environments): phases move through the guarded
    transition function, conditions live on the resource."""

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
        super().__init__(repo, events, metrics, holder=holder, timing=timing, faults=faults, clock=clock)
        self.repo = repo

    def _apply_step(self, resource: R, step: S, now: datetime) -> R | None:
        if isinstance(step, Transition):
            return transition(self.repo, resource, step.to, actor=self.holder, now=now, lease=self.lease)
        if isinstance(step, MarkFailed):
            condition = Condition.failed(step.reason, step.message, now)
            result = resource.with_condition(condition, now)
            self._store_conditions(result)
            self.record(resource, "Warning", "Failed", step.message, now, step=step_name(step))
            return result
        if isinstance(step, ClearFailed):
            result = resource.without_condition(ConditionType.FAILED, now)
            self._store_conditions(result)
            return result
        return self.apply(resource, step, now)

    def release(self, resource: R, after: float) -> None:
        self.repo.release(
            self.key(resource), holder=self.holder, lease=self.timing.lease, now=self.clock(), after=after
        )

    def store_failed(self, resource: R, condition: Condition) -> None:
        self._store_conditions(resource.with_condition(condition, condition.since))

    def _store_conditions(self, resource: R) -> None:
        conditions = [c.model_dump(mode="json", by_alias=True) for c in resource.conditions]
        self.update_leased(self.key(resource), {"conditions": conditions, "updatedAt": resource.updated_at})

    def record(
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
