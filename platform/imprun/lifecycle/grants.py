"""The grant reconciler: converges each grant's credential onto the ingress driver.

The API only records intent on the grant (created, key regenerated, revoked) and wakes the loop;
this reconciler claims one grant under its lease (the ``LeasedReconciler`` skeleton), observes the
gateway it points at, whether its application still exists and what the ingress was last given
(``appliedConsumer``), lets the pure ``imprun.domain.access.decide_grant`` choose, and applies
idempotent steps: ``ApplyConsumer`` hands the credential to the ingress (``apply_consumer``),
``DeleteConsumer`` removes it (``delete_consumer``), ``ForgetGrant`` removes the record. Deleting is
done even when nothing was recorded as applied, because a crash between applying and recording must
not leave a working key behind. An ``Invalid`` from the ingress fails the grant at once (Failed
condition ``StepFailedPermanently``). The plaintext key is unsealed only for an ingress that needs it
(APISIX) and only to hand it over. Releasing a grant the API changed meanwhile (its revision moved
on) makes it claimable at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from imprun.domain.access import (
    ApplyConsumer,
    DeleteConsumer,
    ForgetGrant,
    GatewayPresence,
    GrantObservation,
    GrantRecord,
    GrantStep,
    WaitForGateway,
    decide_grant,
    desired_consumer,
)
from imprun.domain.conditions import Condition, set_condition
from imprun.domain.phases import DesiredState, Phase
from imprun.drivers.ingress import ConsumerCredential, IngressDriver
from imprun.errors import Conflict
from imprun.lifecycle.reconciler import FaultInjector, LeasedReconciler, ReconcileTiming, utc_now
from imprun.observability.metrics import Metrics
from imprun.security.api_keys import KeyVault, SealedKey
from imprun.store.applications import ApplicationRepository, GrantRepository
from imprun.store.events import Event, EventLog
from imprun.store.lifecycle import GatewayRepository


class GrantReconciler(LeasedReconciler[GrantRecord, GrantObservation, GrantStep]):
    kind = "grant"
    wait_steps = (WaitForGateway,)

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
        super().__init__(grants, events, metrics, holder=holder, timing=timing, faults=faults, clock=clock)
        self.grants = grants
        self.applications = applications
        self.gateways = gateways
        self.ingress = ingress
        self.vault = vault

    def key(self, resource: GrantRecord) -> str:
        return resource.grant_id

    def observe(self, resource: GrantRecord, now: datetime) -> GrantObservation:
        return GrantObservation(
            gateway=self._gateway_presence(resource),
            application_exists=self.applications.exists(resource.application_id),
            applied=resource.applied,
        )

    def decide(self, resource: GrantRecord, observed: GrantObservation) -> Sequence[GrantStep]:
        return decide_grant(resource, observed)

    def apply(self, resource: GrantRecord, step: GrantStep, now: datetime) -> GrantRecord | None:
        match step:
            case ApplyConsumer():
                self.ingress.apply_consumer(self._credential(resource))
                if not self.grants.record_applied(
                    resource.grant_id, desired_consumer(resource), lease=self.lease
                ):
                    raise Conflict(f"grant {resource.grant_id} changed hands (lease lost) or is gone")
                return resource
            case DeleteConsumer():
                self.ingress.delete_consumer(
                    resource.gateway_id, resource.environment, resource.credential_id
                )
                return resource
            case ForgetGrant():
                self.grants.delete(resource.grant_id, lease=self.lease)
                return None
            case _:
                raise TypeError(f"the grant reconciler cannot apply {step!r}")

    def release(self, resource: GrantRecord, after: float) -> None:
        self.grants.release(
            resource.grant_id,
            holder=self.holder,
            revision=resource.revision,
            lease=self.timing.lease,
            now=self.clock(),
            after=after,
        )

    def store_failed(self, resource: GrantRecord, condition: Condition) -> None:
        conditions = set_condition(resource.conditions, condition)
        self.update_leased(
            resource.grant_id, {"conditions": [c.model_dump(mode="json", by_alias=True) for c in conditions]}
        )

    def record(
        self,
        resource: GrantRecord,
        type_: str,
        reason: str,
        message: str,
        at: datetime,
        *,
        step: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        if step is not None and type_ == "Normal":
            message = f"{message}: credential {resource.credential_id}"
        self.events.append(
            Event(
                gateway_id=resource.gateway_id,
                kind=self.kind,
                resource=resource.grant_id,
                type=type_,
                reason=reason,
                message=message,
                at=at,
                actor=self.holder,
                step=step,
                started_at=started_at,
            )
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

    def _credential(self, grant: GrantRecord) -> ConsumerCredential:
        api_key = None
        if self.ingress.needs_plaintext_keys:
            sealed = SealedKey(grant.key.key_version, grant.key.key_nonce, grant.key.key_ciphertext)
            api_key = self.vault.unseal(sealed, grant_id=grant.grant_id, environment=grant.environment)
        return ConsumerCredential(
            credential_id=grant.credential_id,
            grant_id=grant.grant_id,
            application_id=grant.application_id,
            gateway_id=grant.gateway_id,
            environment=grant.environment,
            lookup_hash=grant.key.lookup_hash,
            active=True,
            rate_limit=grant.rate_limit,
            api_key=api_key,
        )
