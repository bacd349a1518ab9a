"""The grant reconciler: converges each grant's credential onto the ingress driver.

The API only records intent on the grant (created, key regenerated, revoked) and wakes the loop;
this reconciler claims one grant under its lease, observes the gateway it points at, whether its
application still exists and what the ingress was last given (``appliedConsumer``), lets the pure
``decide_grant`` choose, and applies idempotent steps: an active grant of a live gateway gets its
credential applied (``apply_consumer``); a revoked grant, or one whose application or gateway is
gone or going, gets its credential deleted (``delete_consumer``) and then its record removed. A
grant of a gateway still being provisioned waits, so the consumer never lands in a database the
gateway reconciler has not created yet. Deleting is done even when nothing was recorded as applied,
because a crash between applying and recording must not leave a working key behind. The plaintext
key is unsealed only for an ingress that needs it (APISIX) and only to hand it over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from imprun.domain.phases import DesiredState, Phase
from imprun.drivers.ingress import ConsumerCredential, IngressDriver, RateLimitSpec
from imprun.errors import ImprunError, Unavailable
from imprun.lifecycle.reconciler import (
    GONE,
    FaultInjector,
    ReconcileTiming,
    backoff_delay,
    step_name,
    utc_now,
)
from imprun.observability.metrics import Metrics
from imprun.security.api_keys import KeyVault, SealedKey
from imprun.store.applications import ApplicationRepository, AppliedConsumer, GrantRecord, GrantRepository
from imprun.store.events import Event, EventLog
from imprun.store.lifecycle import GatewayRepository

log = logging.getLogger(__name__)


class GatewayPresence(StrEnum):
    READY = "Ready"
    PROVISIONING = "Provisioning"
    GONE = "Gone"
    """Absent, being deleted, or another incarnation (owner or creation time differ) of the same id."""


@dataclass(frozen=True, slots=True)
class GrantObservation:
    gateway: GatewayPresence
    application_exists: bool
    applied: AppliedConsumer | None


@dataclass(frozen=True, slots=True)
class ApplyConsumer:
    """Give the ingress the grant's credential (current lookup hash, active, rate limit)."""


@dataclass(frozen=True, slots=True)
class DeleteConsumer:
    """Remove the grant's credential from the ingress (a missing one is fine)."""


@dataclass(frozen=True, slots=True)
class ForgetGrant:
    """Delete the grant record: the grant is gone. Always the last step."""


@dataclass(frozen=True, slots=True)
class WaitForGateway:
    """The gateway is still being provisioned; look again shortly."""


GrantStep = ApplyConsumer | DeleteConsumer | ForgetGrant | WaitForGateway


def desired_consumer(grant: GrantRecord) -> AppliedConsumer:
    return AppliedConsumer(lookup_hash=grant.key.lookup_hash, active=True, rate_limit=grant.rate_limit)


def decide_grant(grant: GrantRecord, observed: GrantObservation) -> list[GrantStep]:
    """Pure: the steps that bring the ingress in line with the grant."""
    if not grant.active or not observed.application_exists or observed.gateway is GatewayPresence.GONE:
        return [DeleteConsumer(), ForgetGrant()]
    if observed.gateway is GatewayPresence.PROVISIONING:
        return [WaitForGateway()]
    if observed.applied != desired_consumer(grant):
        return [ApplyConsumer()]
    return []


class GrantReconciler:
    kind = "grant"

    def __init__(
        self,
        grants: GrantRepository,
        applications: ApplicationRepository,
        gateways: GatewayRepository,
        ingress: IngressDriver,
        vault: KeyVault,
        *,
        events: EventLog,
        metrics: Metrics,
        holder: str,
        timing: ReconcileTiming,
        faults: FaultInjector | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.grants = grants
        self.applications = applications
        self.gateways = gateways
        self.ingress = ingress
        self.vault = vault
        self.events = events
        self.metrics = metrics
        self.holder = holder
        self.timing = timing
        self.faults = faults or FaultInjector(None)
        self.clock = clock
        self._failures: dict[str, int] = {}

    def reconcile_one(self) -> bool:
        """Work on one claimable grant; False when there was none."""
        now = self.clock()
        grant = self.grants.claim(holder=self.holder, now=now, lease=self.timing.lease)
        if grant is None:
            return False
        started = time.perf_counter()
        outcome = "ok"
        release_after = 0.0
        try:
            release_after = self._reconcile(grant)
            self._failures.pop(grant.grant_id, None)
        except ImprunError as exc:
            outcome = "retry" if isinstance(exc, Unavailable) else "error"
            release_after = self._back_off(grant, exc.message)
        except Exception as exc:  # the loop must never die: record it and back off
            outcome = "crash"
            log.exception("grant %s: unexpected error while reconciling", grant.grant_id)
            release_after = self._back_off(grant, type(exc).__name__)
        finally:
            self.metrics.reconcile_steps.labels(self.kind, outcome).inc()
            self.metrics.reconcile_latency.labels(self.kind).observe(time.perf_counter() - started)
        if release_after != GONE:
            self.grants.release(
                grant.grant_id,
                holder=self.holder,
                revision=grant.revision,
                lease=self.timing.lease,
                now=self.clock(),
                after=release_after,
            )
        return True

    def observe(self, grant: GrantRecord) -> GrantObservation:
        return GrantObservation(
            gateway=self._gateway_presence(grant),
            application_exists=self.applications.exists(grant.application_id),
            applied=grant.applied,
        )

    def _gateway_presence(self, grant: GrantRecord) -> GatewayPresence:
        gateway = self.gateways.get(grant.gateway_id)
        if (
            gateway is None
            or gateway.owner_id != grant.owner_id
            or gateway.created_at != grant.gateway_created_at
            or gateway.state is DesiredState.DELETED
            or gateway.phase in (Phase.DELETING, Phase.DELETED)
        ):
            return GatewayPresence.GONE
        if gateway.phase is Phase.CREATING:
            return GatewayPresence.PROVISIONING
        return GatewayPresence.READY

    def _reconcile(self, grant: GrantRecord) -> float:
        steps = decide_grant(grant, self.observe(grant))
        if not steps:
            return self.timing.settled_resync
        for step in steps:
            if isinstance(step, WaitForGateway):
                return self.timing.waiting_recheck
            if self._apply_recorded(grant, step):
                return GONE
        return 0.0

    def _apply_recorded(self, grant: GrantRecord, step: GrantStep) -> bool:
        """Apply one step, recording it as an event; True when the grant record is gone."""
        name = step_name(step)
        self.faults.boundary(self.kind, name, "before")
        started_at = self.clock()
        gone = False
        match step:
            case ApplyConsumer():
                self.ingress.apply_consumer(self._credential(grant))
                self.grants.record_applied(grant.grant_id, desired_consumer(grant))
            case DeleteConsumer():
                self.ingress.delete_consumer(grant.gateway_id, grant.environment, grant.credential_id)
            case ForgetGrant():
                self.grants.delete(grant.grant_id)
                gone = True
            case _:
                raise TypeError(f"the grant reconciler cannot apply {step!r}")
        self._record(grant, "Normal", "Step", f"{name}: credential {grant.credential_id}", started_at, name)
        self.faults.boundary(self.kind, name, "after")
        return gone

    def _credential(self, grant: GrantRecord) -> ConsumerCredential:
        api_key = None
        if self.ingress.needs_plaintext_keys:
            sealed = SealedKey(grant.key.key_version, grant.key.key_nonce, grant.key.key_ciphertext)
            api_key = self.vault.unseal(sealed, grant_id=grant.grant_id, environment=grant.environment)
        limit = grant.rate_limit
        return ConsumerCredential(
            credential_id=grant.credential_id,
            grant_id=grant.grant_id,
            application_id=grant.application_id,
            gateway_id=grant.gateway_id,
            environment=grant.environment,
            lookup_hash=grant.key.lookup_hash,
            active=True,
            rate_limit=None if limit is None else RateLimitSpec(limit.count, limit.window_seconds),
            api_key=api_key,
        )

    def _record(
        self,
        grant: GrantRecord,
        type_: str,
        reason: str,
        message: str,
        started_at: datetime | None,
        step: str | None = None,
    ) -> None:
        self.events.append(
            Event(
                gateway_id=grant.gateway_id,
                kind=self.kind,
                resource=grant.grant_id,
                type=type_,
                reason=reason,
                message=message,
                at=self.clock(),
                actor=self.holder,
                step=step,
                started_at=started_at,
            )
        )

    def _back_off(self, grant: GrantRecord, message: str) -> float:
        failures = self._failures.get(grant.grant_id, 0) + 1
        self._failures[grant.grant_id] = failures
        delay = backoff_delay(failures, self.timing.max_backoff)
        log.warning("grant %s: %s (attempt %d, retry in %.1fs)", grant.grant_id, message, failures, delay)
        try:
            self._record(grant, "Warning", "StepFailed", f"{message} (retry in {delay:.0f} s)", None)
        except ImprunError:
            pass  # the store is down as well; the log line above is all we can do
        return delay
