"""The pure decisions of access control: ``decide_grant`` (grant reconciler) and ``decide_ingress``
(the environment reconciler's ingress route). No services needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain.environment import AuthType, Environment, RateLimit
from imprun.domain.phases import DesiredState, Phase
from imprun.drivers.ingress import RateLimitSpec
from imprun.lifecycle.environments import (
    ROUTE_REMOVED,
    ApplyIngressRoute,
    RemoveIngressRoute,
    decide_ingress,
    ingress_route,
    route_record,
)
from imprun.lifecycle.grants import (
    ApplyConsumer,
    DeleteConsumer,
    ForgetGrant,
    GatewayPresence,
    GrantObservation,
    WaitForGateway,
    decide_grant,
    desired_consumer,
)
from imprun.store.applications import AppliedConsumer, GrantRecord, GrantStatus, StoredKey

NOW = datetime(2025, 5, 1, 12, tzinfo=UTC)
HASH = "a" * 64
UPSTREAM = ("127.0.0.1", 8000)


def grant(**changes: object) -> GrantRecord:
    base = GrantRecord(
        grant_id="grant_1",
        application_id="app_1",
        owner_id="u1",
        gateway_id="gw-one",
        gateway_created_at=NOW,
        environment="dev",
        credential_id="cred_1",
        key=StoredKey("imp_dev_AbCd", HASH, 1, b"n" * 12, b"c" * 59),
        rate_limit=None,
        status=GrantStatus.ACTIVE,
        revision=1,
        created_at=NOW,
        key_issued_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def seen(
    gateway: GatewayPresence = GatewayPresence.READY,
    *,
    application_exists: bool = True,
    applied: AppliedConsumer | None = None,
) -> GrantObservation:
    return GrantObservation(gateway=gateway, application_exists=application_exists, applied=applied)


# --- grants ----------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("applied", [None, AppliedConsumer(HASH, True, None)])
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


# --- environment routes ----------------------------------------------------------------------------


def environment(**changes: object) -> Environment:
    base = Environment.new(gateway_id="gw-one", name="dev", state=DesiredState.RUNNING, now=NOW)
    return base.model_copy(update=changes)


def wanted(env: Environment) -> dict[str, object]:
    return route_record(env, ingress_route(env, UPSTREAM))


def test_a_route_is_applied_when_it_differs_from_the_applied_one() -> None:
    env = environment()
    assert decide_ingress(env, wanted(env), None) == [ApplyIngressRoute()]
    assert decide_ingress(env, wanted(env), wanted(env)) == []
    opened = env.model_copy(update={"auth_type": AuthType.NONE})
    limited = env.model_copy(update={"rate_limit": RateLimit(count=3, window_seconds=10)})
    assert decide_ingress(opened, wanted(opened), wanted(env)) == [ApplyIngressRoute()]
    assert decide_ingress(limited, wanted(limited), wanted(env)) == [ApplyIngressRoute()]


def test_a_route_is_applied_again_on_every_start() -> None:
    starting = environment(phase=Phase.STARTING)
    started = environment(phase=Phase.STARTED, phase_since=NOW + timedelta(seconds=5))
    restarted = environment(phase=Phase.STARTED, phase_since=NOW + timedelta(minutes=5))
    assert decide_ingress(started, wanted(started), wanted(starting)) == [ApplyIngressRoute()]
    assert decide_ingress(started, wanted(started), wanted(started)) == []
    assert decide_ingress(restarted, wanted(restarted), wanted(started)) == [ApplyIngressRoute()]


@pytest.mark.parametrize(
    "env",
    [
        environment(state=DesiredState.DELETED, phase=Phase.STARTED),
        environment(phase=Phase.DELETING),
        environment(phase=Phase.DELETED),
    ],
)
def test_a_route_is_removed_on_teardown_until_recorded_removed(env: Environment) -> None:
    assert decide_ingress(env, wanted(env), wanted(environment())) == [RemoveIngressRoute()]
    assert decide_ingress(env, wanted(env), None) == [RemoveIngressRoute()]
    assert decide_ingress(env, wanted(env), ROUTE_REMOVED) == []


def test_the_route_carries_auth_type_and_limit() -> None:
    env = environment(auth_type=AuthType.NONE, rate_limit=RateLimit(count=7, window_seconds=30))
    route = ingress_route(env, UPSTREAM)
    assert (route.auth_type, route.rate_limit) == ("none", RateLimitSpec(count=7, window_seconds=30))
    assert (route.gateway_id, route.environment, route.upstream_host, route.upstream_port) == (
        "gw-one",
        "dev",
        *UPSTREAM,
    )
