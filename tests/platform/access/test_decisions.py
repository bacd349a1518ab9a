"""The pure decisions of access control on the environment side: ``decide_ingress`` (the environment
reconciler's ingress route). ``decide_grant`` is swept in ``tests/platform/domain/test_decide_access.py``.
No services needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain.environment import AuthType, Environment, RateLimit
from imprun.domain.phases import DesiredState, Phase
from imprun.drivers.ingress import EnvironmentRoute
from imprun.lifecycle.environments import (
    ROUTE_REMOVED,
    ApplyIngressRoute,
    RemoveIngressRoute,
    decide_ingress,
    ingress_route,
    route_record,
)

NOW = datetime(2025, 5, 1, 12, tzinfo=UTC)
UPSTREAM = ("127.0.0.1", 8000)


# --- environment routes ----------------------------------------------------------------------------


def environment(**changes: object) -> Environment:
    base = Environment.new(gateway_id="gw-one", name="dev", state=DesiredState.RUNNING, now=NOW)
    return base.model_copy(update=changes)


def route_of(env: Environment) -> EnvironmentRoute:
    return ingress_route(env, UPSTREAM)


def wanted(env: Environment) -> dict[str, object]:
    """What ``appliedRoute`` holds once ``env``'s route is applied."""
    return route_record(env, route_of(env))


def test_a_route_is_applied_when_it_differs_from_the_applied_one() -> None:
    env = environment()
    assert decide_ingress(env, route_of(env), None) == [ApplyIngressRoute(route_of(env))]
    assert decide_ingress(env, route_of(env), wanted(env)) == []
    opened = env.model_copy(update={"auth_type": AuthType.NONE})
    limited = env.model_copy(update={"rate_limit": RateLimit(count=3, window_seconds=10)})
    assert decide_ingress(opened, route_of(opened), wanted(env)) == [ApplyIngressRoute(route_of(opened))]
    assert decide_ingress(limited, route_of(limited), wanted(env)) == [ApplyIngressRoute(route_of(limited))]


def test_a_route_is_applied_again_on_every_start() -> None:
    starting = environment(phase=Phase.STARTING)
    started = environment(phase=Phase.STARTED, phase_since=NOW + timedelta(seconds=5))
    restarted = environment(phase=Phase.STARTED, phase_since=NOW + timedelta(minutes=5))
    assert decide_ingress(started, route_of(started), wanted(starting)) == [
        ApplyIngressRoute(route_of(started))
    ]
    assert decide_ingress(started, route_of(started), wanted(started)) == []
    assert decide_ingress(restarted, route_of(restarted), wanted(started)) == [
        ApplyIngressRoute(route_of(restarted))
    ]


@pytest.mark.parametrize(
    "env",
    [
        environment(state=DesiredState.DELETED, phase=Phase.STARTED),
        environment(phase=Phase.DELETING),
        environment(phase=Phase.DELETED),
    ],
)
def test_a_route_is_removed_on_teardown_until_recorded_removed(env: Environment) -> None:
    assert decide_ingress(env, route_of(env), wanted(environment())) == [RemoveIngressRoute()]
    assert decide_ingress(env, route_of(env), None) == [RemoveIngressRoute()]
    assert decide_ingress(env, route_of(env), ROUTE_REMOVED) == []


def test_the_route_carries_auth_type_and_limit() -> None:
    env = environment(auth_type=AuthType.NONE, rate_limit=RateLimit(count=7, window_seconds=30))
    route = ingress_route(env, UPSTREAM)
    assert (route.auth_type, route.rate_limit) == ("none", RateLimit(count=7, window_seconds=30))
    assert (route.gateway_id, route.environment, route.upstream_host, route.upstream_port) == (
        "gw-one",
        "dev",
        *UPSTREAM,
    )
