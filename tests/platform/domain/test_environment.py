"""The environment document and the condition helpers both documents share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from imprun.domain import (
    AuthType,
    Condition,
    ConditionType,
    DesiredState,
    Environment,
    FailureReason,
    Phase,
    RateLimit,
    find_condition,
    is_failed,
    remove_condition,
    set_condition,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def new_environment(name: str = "dev") -> Environment:
    return Environment.new(gateway_id="orders-api", name=name, state=DesiredState.RUNNING, now=NOW)  # type: ignore[arg-type]


def test_new_environment_defaults() -> None:
    environment = new_environment("staging")
    assert environment.phase is Phase.CREATING
    assert environment.state is DesiredState.RUNNING
    assert environment.auth_type is AuthType.KEY_AUTH
    assert environment.rate_limit is None
    assert environment.serve_app_name == "orders-api-staging"
    assert environment.route_prefix == "/orders-api/staging"


def test_only_the_three_environment_names_exist() -> None:
    with pytest.raises(ValidationError):
        new_environment("qa")


def test_environment_document_is_camel_case_and_round_trips() -> None:
    environment = new_environment().model_copy(
        update={"auth_type": AuthType.NONE, "rate_limit": RateLimit(count=100, window_seconds=60)}
    )
    document = environment.model_dump(mode="json")
    assert document["authType"] == "none"
    assert document["rateLimit"] == {"count": 100, "windowSeconds": 60}
    assert document["gatewayId"] == "orders-api"
    assert Environment.model_validate(document) == environment


@pytest.mark.parametrize("payload", [{"count": 0, "windowSeconds": 60}, {"count": 5, "windowSeconds": 0}])
def test_rate_limit_must_be_positive(payload: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        RateLimit.model_validate(payload)


def test_environment_rejects_an_unknown_auth_type() -> None:
    document = new_environment().model_dump(mode="json") | {"authType": "basic-auth"}
    with pytest.raises(ValidationError, match="authType"):
        Environment.model_validate(document)


def test_environment_transitions_use_the_same_table() -> None:
    started = new_environment().moved_to(Phase.CREATED, NOW).moved_to(Phase.STARTING, NOW)
    assert started.moved_to(Phase.STARTED, LATER).phase_since == LATER


# --- conditions ------------------------------------------------------------------------------------


def failed(reason: str, since: datetime, message: str = "boom") -> Condition:
    return Condition.failed(reason, message, since)


def test_set_condition_adds_then_replaces_one_per_type() -> None:
    ready = Condition(type=ConditionType.READY, status=True, reason="AppRunning", since=NOW)
    conditions = set_condition((), ready)
    conditions = set_condition(conditions, failed(FailureReason.DEPLOY_FAILED, NOW))
    conditions = set_condition(conditions, failed(FailureReason.APP_UNHEALTHY, LATER, "replicas crash"))
    assert len(conditions) == 2
    current = find_condition(conditions, ConditionType.FAILED)
    assert current is not None
    assert current.reason == "AppUnhealthy"
    assert current.message == "replicas crash"
    assert find_condition(conditions, ConditionType.READY) == ready


def test_set_condition_keeps_since_while_the_status_holds() -> None:
    conditions = set_condition((), failed(FailureReason.STUCK, NOW))
    conditions = set_condition(conditions, failed(FailureReason.STUCK, LATER))
    only = find_condition(conditions, ConditionType.FAILED)
    assert only is not None
    assert only.since == NOW


def test_set_condition_restarts_since_when_the_status_flips() -> None:
    not_ready = Condition(type=ConditionType.READY, status=False, reason="Deploying", since=NOW)
    ready = Condition(type=ConditionType.READY, status=True, reason="AppRunning", since=LATER)
    conditions = set_condition(set_condition((), not_ready), ready)
    assert conditions == (ready,)


def test_is_failed_and_remove_condition() -> None:
    assert not is_failed(())
    not_failed = Condition(type=ConditionType.FAILED, status=False, reason="Recovered", since=NOW)
    assert not is_failed((not_failed,))
    conditions = (failed(FailureReason.STUCK, NOW),)
    assert is_failed(conditions)
    assert remove_condition(conditions, ConditionType.FAILED) == ()
    assert remove_condition(conditions, ConditionType.READY) == conditions


def test_condition_requires_a_reason() -> None:
    with pytest.raises(ValidationError):
        Condition(type=ConditionType.FAILED, status=True, reason="", since=NOW)
