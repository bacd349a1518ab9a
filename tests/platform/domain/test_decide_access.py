"""``decide_grant`` over every (status, gateway, application, applied consumer, failure) combination."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from imprun.domain.access import (
    AppliedConsumer,
    ApplyConsumer,
    DeleteConsumer,
    ForgetGrant,
    GatewayPresence,
    GrantObservation,
    GrantRecord,
    GrantStatus,
    StoredKey,
    WaitForGateway,
    decide_grant,
    desired_consumer,
)
from imprun.domain.conditions import PERMANENT_FAILURE, Condition
from imprun.domain.environment import RateLimit

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
LIMIT = RateLimit(count=10, window_seconds=60)
BASE = GrantRecord(
    grant_id="grant_1",
    application_id="app_1",
    owner_id="u1",
    gateway_id="gw-one",
    gateway_created_at=NOW,
    environment="dev",
    credential_id="cred_1",
    key=StoredKey("imp_dev_AbCd", "a" * 64, 1, b"n" * 12, b"c" * 20),
    rate_limit=LIMIT,
    status=GrantStatus.ACTIVE,
    revision=1,
    created_at=NOW,
    key_issued_at=NOW,
)
CONDITIONS = {
    "none": (),
    "failed": (Condition.failed("StepFailed", "ingress down", NOW),),
    "failed-permanently": (Condition.failed(PERMANENT_FAILURE, "refused", NOW),),
}
APPLIED = {
    "nothing": None,
    "current": desired_consumer(BASE),
    "old-key": AppliedConsumer("b" * 64, True, LIMIT),
    "old-limit": AppliedConsumer("a" * 64, True, None),
    "inactive": AppliedConsumer("a" * 64, False, LIMIT),
}
CASES = list(itertools.product(GrantStatus, GatewayPresence, (True, False), APPLIED, CONDITIONS))


def expected(
    status: GrantStatus, gateway: GatewayPresence, application: bool, applied: str, condition: str
) -> list[object]:
    """The rule, written as a table lookup: gone first, then waiting, then converging."""
    if status is GrantStatus.REVOKED or not application or gateway is GatewayPresence.GONE:
        return [DeleteConsumer(), ForgetGrant()]
    if gateway is GatewayPresence.PROVISIONING:
        return [WaitForGateway()]
    if applied != "current" and condition != "failed-permanently":
        return [ApplyConsumer()]
    return []


@pytest.mark.parametrize(("status", "gateway", "application", "applied", "condition"), CASES)
def test_decide_grant(
    status: GrantStatus, gateway: GatewayPresence, application: bool, applied: str, condition: str
) -> None:
    grant = replace(BASE, status=status, conditions=CONDITIONS[condition])
    observed = GrantObservation(gateway=gateway, application_exists=application, applied=APPLIED[applied])
    steps = decide_grant(grant, observed)
    assert steps == expected(status, gateway, application, applied, condition)
    assert decide_grant(grant, observed) == steps  # pure: same answer for the same input


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_an_applied_consumer_settles(condition: str) -> None:
    """After ``ApplyConsumer`` the ingress holds the desired consumer, and nothing is left to do."""
    grant = replace(BASE, conditions=CONDITIONS[condition])
    settled = GrantObservation(
        GatewayPresence.READY, application_exists=True, applied=desired_consumer(grant)
    )
    assert decide_grant(grant, settled) == []


def test_a_permanently_failed_grant_is_still_removed_when_revoked() -> None:
    grant = replace(BASE, status=GrantStatus.REVOKED, conditions=CONDITIONS["failed-permanently"])
    observed = GrantObservation(GatewayPresence.READY, application_exists=True, applied=None)
    assert decide_grant(grant, observed) == [DeleteConsumer(), ForgetGrant()]


# --- examples ------------------------------------------------------------------------------------


def grant(**changes: object) -> GrantRecord:
    return replace(BASE, **changes)  # type: ignore[arg-type]


def seen(
    gateway: GatewayPresence = GatewayPresence.READY,
    *,
    application_exists: bool = True,
    applied: AppliedConsumer | None = None,
) -> GrantObservation:
    return GrantObservation(gateway=gateway, application_exists=application_exists, applied=applied)


def test_a_new_grant_is_applied_then_rests() -> None:
    fresh = grant()
    assert decide_grant(fresh, seen()) == [ApplyConsumer()]
    assert decide_grant(fresh, seen(applied=desired_consumer(fresh))) == []


def test_a_regenerated_key_or_a_changed_limit_is_applied_again() -> None:
    before = grant()
    applied = desired_consumer(before)
    rekeyed = replace(before, key=replace(before.key, lookup_hash="b" * 64), revision=2)
    limited = replace(before, rate_limit=RateLimit(count=5, window_seconds=60))
    assert decide_grant(rekeyed, seen(applied=applied)) == [ApplyConsumer()]
    assert decide_grant(limited, seen(applied=applied)) == [ApplyConsumer()]


@pytest.mark.parametrize(
    "observed",
    [
        seen(GatewayPresence.GONE),
        seen(application_exists=False),
        seen(GatewayPresence.PROVISIONING, application_exists=False),
    ],
)
def test_a_grant_whose_gateway_or_application_is_gone_is_removed(observed: GrantObservation) -> None:
    assert decide_grant(grant(), observed) == [DeleteConsumer(), ForgetGrant()]


@pytest.mark.parametrize("applied", [None, AppliedConsumer(BASE.key.lookup_hash, True, None)])
def test_a_revoked_grant_deletes_its_credential_even_if_none_was_recorded(
    applied: AppliedConsumer | None,
) -> None:
    # A crash between applying and recording must not leave a working key: delete regardless.
    assert decide_grant(grant(status=GrantStatus.REVOKED), seen(applied=applied)) == [
        DeleteConsumer(),
        ForgetGrant(),
    ]


def test_a_grant_waits_while_its_gateway_is_provisioned() -> None:
    assert decide_grant(grant(), seen(GatewayPresence.PROVISIONING)) == [WaitForGateway()]
