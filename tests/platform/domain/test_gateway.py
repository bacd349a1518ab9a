"""The gateway document: bundle bounds and aliases, the promotion pipeline, lifecycle moves."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from imprun.domain import (
    Bundle,
    Condition,
    ConditionType,
    DesiredState,
    FailureReason,
    Gateway,
    Phase,
    PromotionPipeline,
)
from imprun.errors import Conflict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


def new_gateway(**overrides: Any) -> Gateway:
    arguments: dict[str, Any] = {
        "gateway_id": "orders-api",
        "name": "Orders API",
        "owner_id": "u-1",
        "now": NOW,
    }
    return Gateway.new(**(arguments | overrides))


# --- bundle ----------------------------------------------------------------------------------------


def test_bundle_defaults() -> None:
    bundle = Bundle()
    assert (bundle.cpu, bundle.memory_mb, bundle.min_replicas, bundle.max_replicas) == (0.5, 256, 1, 1)
    assert bundle.memory_bytes == 256 * 1024 * 1024


def test_bundle_speaks_camel_case_with_memory_in_mib() -> None:
    bundle = Bundle.model_validate({"cpu": 2, "memory": 1024, "minReplicas": 0, "maxReplicas": 4})
    assert (bundle.cpu, bundle.memory_mb, bundle.min_replicas, bundle.max_replicas) == (2.0, 1024, 0, 4)
    assert bundle.model_dump() == {
        "tier": "dedicated",
        "cpu": 2.0,
        "memory": 1024,
        "minReplicas": 0,
        "maxReplicas": 4,
    }


def test_bundle_accepts_python_names_too() -> None:
    assert Bundle(memory_mb=512, min_replicas=2, max_replicas=3).memory_mb == 512


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu", 0),
        ("cpu", -1),
        ("cpu", 16.5),
        ("cpu", math.nan),
        ("cpu", math.inf),
        ("memory", 63),
        ("memory", 65_537),
        ("memory", 1.5),
        ("minReplicas", -1),
        ("minReplicas", 17),
        ("maxReplicas", 0),
        ("maxReplicas", 33),
    ],
)
def test_bundle_bounds(field: str, value: object) -> None:
    payload: dict[str, object] = {"minReplicas": 0, field: value}
    with pytest.raises(ValidationError) as raised:
        Bundle.model_validate(payload)
    assert raised.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("field", "value"), [("cpu", 16), ("memory", 64), ("memory", 65_536), ("maxReplicas", 32)]
)
def test_bundle_bounds_are_inclusive_where_the_issue_says_so(field: str, value: object) -> None:
    Bundle.model_validate({field: value})


def test_max_replicas_below_min_is_refused_with_both_numbers() -> None:
    with pytest.raises(ValidationError, match=r"maxReplicas \(2\) must be at least minReplicas \(3\)"):
        Bundle(min_replicas=3, max_replicas=2)


def test_bundle_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="gpu"):
        Bundle.model_validate({"gpu": 1})


def test_bundle_is_frozen() -> None:
    bundle = Bundle()
    with pytest.raises(ValidationError):
        bundle.cpu = 4  # type: ignore[misc]


# --- promotion pipeline ----------------------------------------------------------------------------


def test_pipeline_defaults_to_all_stages_disabled() -> None:
    pipeline = PromotionPipeline()
    assert not pipeline.enabled
    assert pipeline.stages == ("dev", "staging", "prod")
    assert pipeline.model_dump(mode="json") == {"enabled": False, "stages": ["dev", "staging", "prod"]}


def test_pipeline_next_stage() -> None:
    full = PromotionPipeline()
    assert full.next_stage("dev") == "staging"
    assert full.next_stage("staging") == "prod"
    assert full.next_stage("prod") is None
    short = PromotionPipeline(enabled=True, stages=("dev", "prod"))
    assert short.next_stage("dev") == "prod"
    assert short.next_stage("staging") is None


@pytest.mark.parametrize(
    ("stages", "problem"),
    [
        (["dev"], "at least two stages"),
        ([], "at least two stages"),
        (["dev", "dev"], "must not repeat"),
        (["prod", "dev"], "must follow the order"),
        (["staging", "dev", "prod"], "must follow the order"),
        (["dev", "qa"], "dev"),
    ],
)
def test_pipeline_stage_rules(stages: list[str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PromotionPipeline.model_validate({"enabled": True, "stages": stages})


# --- gateway ---------------------------------------------------------------------------------------


def test_new_gateway_wants_running_and_starts_in_creating() -> None:
    gateway = new_gateway()
    assert gateway.state is DesiredState.RUNNING
    assert gateway.phase is Phase.CREATING
    assert gateway.created_at == gateway.updated_at == gateway.phase_since == NOW
    assert gateway.bundle == Bundle()
    assert gateway.conditions == ()
    assert gateway.database_name == "gatewayid_orders-api"
    assert gateway.needs_reconcile


def test_gateway_round_trips_through_its_camel_case_document() -> None:
    gateway = new_gateway(bundle=Bundle(cpu=1, min_replicas=0, max_replicas=2))
    document = gateway.model_dump(mode="json")
    assert {"gatewayId", "ownerId", "promotionPipeline", "createdAt", "phaseSince"} <= set(document)
    assert document["bundle"] == {
        "tier": "dedicated",
        "cpu": 1.0,
        "memory": 256,
        "minReplicas": 0,
        "maxReplicas": 2,
    }
    assert Gateway.model_validate(document) == gateway


def test_gateway_id_is_validated_with_the_problem_in_the_error() -> None:
    with pytest.raises(ValidationError, match="must start with a letter"):
        new_gateway(gateway_id="9lives")


def test_gateway_name_is_trimmed_and_must_not_be_blank() -> None:
    assert new_gateway(name="  Orders  ").name == "Orders"
    with pytest.raises(ValidationError, match="blank"):
        new_gateway(name="   ")


def test_timestamps_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        new_gateway(now=datetime(2026, 1, 1))  # naive on purpose


def test_moved_to_follows_the_table_and_stamps_the_phase_clock() -> None:
    created = new_gateway().moved_to(Phase.CREATED, LATER)
    assert created.phase is Phase.CREATED
    assert created.phase_since == created.updated_at == LATER
    assert created.created_at == NOW
    with pytest.raises(Conflict, match="Created to phase Started"):
        created.moved_to(Phase.STARTED, LATER)


def test_moved_to_leaves_the_original_untouched() -> None:
    gateway = new_gateway()
    gateway.moved_to(Phase.DELETING, LATER)
    assert gateway.phase is Phase.CREATING


def test_with_state_records_the_wish_and_cannot_undo_a_deletion() -> None:
    gateway = new_gateway()
    stopped = gateway.with_state(DesiredState.STOPPED, LATER)
    assert stopped.state is DesiredState.STOPPED
    assert stopped.updated_at == LATER
    assert stopped.with_state(DesiredState.STOPPED, LATER + timedelta(seconds=1)) is stopped

    deleted = stopped.with_state(DesiredState.DELETED, LATER)
    assert deleted.with_state(DesiredState.DELETED, LATER) is deleted
    with pytest.raises(Conflict, match="deletion cannot be undone"):
        deleted.with_state(DesiredState.RUNNING, LATER)


def test_a_gateway_in_teardown_cannot_be_restarted_even_if_its_state_says_otherwise() -> None:
    deleting = new_gateway().moved_to(Phase.DELETING, LATER)
    with pytest.raises(Conflict):
        deleting.with_state(DesiredState.RUNNING, LATER)


def test_failed_condition_is_visible_and_clearable() -> None:
    gateway = new_gateway()
    failed = gateway.with_condition(Condition.failed(FailureReason.STUCK, "still Starting", NOW), LATER)
    assert failed.failed
    assert failed.model_dump(mode="json")["conditions"] == [
        {
            "type": "Failed",
            "status": True,
            "reason": "Stuck",
            "message": "still Starting",
            "since": "2026-03-01T12:00:00Z",
        }
    ]
    cleared = failed.without_condition(ConditionType.FAILED, LATER)
    assert not cleared.failed
    assert cleared.without_condition(ConditionType.FAILED, LATER) is cleared


def test_is_stuck_uses_the_phase_deadline() -> None:
    starting = new_gateway().moved_to(Phase.CREATED, NOW).moved_to(Phase.STARTING, NOW)
    assert not starting.is_stuck(NOW + timedelta(seconds=299))
    assert starting.is_stuck(NOW + timedelta(seconds=301))
    started = starting.moved_to(Phase.STARTED, NOW)
    assert not started.is_stuck(NOW + timedelta(days=365))
