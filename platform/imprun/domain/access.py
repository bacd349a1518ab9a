"""Grants as the grant reconciler sees them, and its pure decision.

A grant gives one application one ``{gateway, environment}`` with one key (stored as a lookup hash and
a sealed copy, never the plaintext). ``decide_grant(grant, observed)`` is the reconciler's whole
policy, computed without I/O: an active grant of a live gateway gets its credential applied to the
ingress; a revoked grant, or one whose application or gateway is gone or going, gets its credential
deleted and then its record forgotten; a grant of a gateway still being provisioned waits. An active
grant whose credential the ingress refused as invalid (``Failed`` condition, reason
``StepFailedPermanently``) rests until the API changes it (a new key clears the condition): applying
it again can only fail again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from imprun.domain.conditions import PERMANENT_FAILURE, Condition, ConditionType, find_condition
from imprun.domain.environment import RateLimit


class GrantStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AppliedConsumer:
    """What the ingress holds (or should hold) for one grant's credential."""

    lookup_hash: str
    active: bool
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class StoredKey:
    """A grant's key material as it may be stored: prefix, lookup hash, sealed copy (never the key)."""

    key_prefix: str
    lookup_hash: str
    key_version: int
    key_nonce: bytes = field(repr=False)
    key_ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class GrantRecord:
    grant_id: str
    application_id: str
    owner_id: str
    gateway_id: str
    gateway_created_at: datetime
    """Which incarnation of the gateway id the grant was made for (a re-created gateway is another)."""
    environment: str
    credential_id: str
    key: StoredKey
    rate_limit: RateLimit | None
    status: GrantStatus
    revision: int
    created_at: datetime
    key_issued_at: datetime
    applied: AppliedConsumer | None = None
    conditions: tuple[Condition, ...] = ()

    @property
    def active(self) -> bool:
        return self.status is GrantStatus.ACTIVE

    @property
    def key_applied(self) -> bool:
        """The ingress was given the current key of this active grant (it works, or will in moments)."""
        return self.active and self.applied is not None and self.applied.lookup_hash == self.key.lookup_hash

    @property
    def failed_permanently(self) -> bool:
        failed = find_condition(self.conditions, ConditionType.FAILED)
        return failed is not None and failed.status and failed.reason == PERMANENT_FAILURE


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
    if observed.applied != desired_consumer(grant) and not grant.failed_permanently:
        return [ApplyConsumer()]
    return []
