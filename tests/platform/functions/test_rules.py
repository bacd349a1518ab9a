"""The pure function rules of ``imprun.domain.functions``: names, methods, versions, promotion order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain.functions import (
    DraftChanges,
    FunctionDraft,
    PublishedVersion,
    changes_to,
    check_direct_publish,
    check_gateway_accepts_changes,
    check_gateway_provisioned,
    function_name_problem,
    normalize_methods,
    revise,
    source_stage_for,
    validate_function_name,
)
from imprun.domain.gateway import Gateway, PromotionPipeline
from imprun.domain.naming import EnvironmentName
from imprun.domain.phases import DesiredState, Phase
from imprun.errors import Conflict, Invalid

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
OFF = PromotionPipeline()
ON = PromotionPipeline(enabled=True)
ON_SHORT = PromotionPipeline(enabled=True, stages=("dev", "prod"))


@pytest.mark.parametrize(
    "name", ["a", "hello", "get_user", "reports/daily", "v2/users/by-id", "A" * 128, "9lives"]
)
def test_valid_names(name: str) -> None:
    assert function_name_problem(name) is None
    assert validate_function_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "1 to 128"),
        ("a" * 129, "1 to 128"),
        ("/a", "start or end"),
        ("a/", "start or end"),
        ("a//b", "'//'"),
        ("a b", "' '"),
        ("a.b", "'.'"),
        ("café", "'é'"),
        ("hello\n", "'\\n'"),
        ("_private", "reserved"),
        ("reports/publish", "last segment"),
        ("debug", "last segment"),
    ],
)
def test_invalid_names_say_why(name: str, fragment: str) -> None:
    problem = function_name_problem(name)
    assert problem is not None and fragment in problem
    with pytest.raises(Invalid) as raised:
        validate_function_name(name)
    assert raised.value.status == 422 and raised.value.details["field"] == "name"


def test_methods_are_normalized() -> None:
    assert normalize_methods(["post", "GET", "get", " put "]) == ("GET", "POST", "PUT")
    with pytest.raises(ValueError, match="unknown HTTP method"):
        normalize_methods(["GET", "FETCH"])
    with pytest.raises(ValueError, match="at least one"):
        normalize_methods([])


def _draft(**overrides: object) -> FunctionDraft:
    values: dict[str, object] = {
        "gateway_id": "gw-one",
        "name": "fn",
        "code": "def main(req): pass",
        "description": "d",
        "methods": ("GET", "POST"),
        "timeout_seconds": 10.0,
        "version": 3,
        "input_schema": {"type": "object"},
        "output_schema": None,
        "created_at": NOW,
        "created_by": "ann",
        "updated_at": NOW,
        "updated_by": "ann",
    }
    values.update(overrides)
    return FunctionDraft(**values)  # type: ignore[arg-type]


def test_only_real_changes_count() -> None:
    draft = _draft()
    unchanged = changes_to(
        draft, code=draft.code, description="d", methods=("GET", "POST"), timeout_seconds=10.0
    )
    assert unchanged.empty and unchanged == DraftChanges()
    changed = changes_to(draft, code="def main(x: int): pass", timeout_seconds=2.0)
    assert changed.changed == ("code", "timeoutSeconds")


def test_revise_bumps_the_version_and_keeps_the_rest() -> None:
    draft = _draft()
    later = NOW + timedelta(minutes=5)
    revised = revise(draft, DraftChanges(description="new"), schemas=None, at=later, by="bob")
    assert (revised.version, revised.description, revised.code) == (4, "new", draft.code)
    assert (revised.updated_at, revised.updated_by, revised.created_by) == (later, "bob", "ann")
    assert revised.input_schema == draft.input_schema
    recoded = revise(
        draft, DraftChanges(code="x"), schemas=({"type": "object", "properties": {}}, None), at=later, by="b"
    )
    assert recoded.input_schema == {"type": "object", "properties": {}} and recoded.hash != draft.hash


def test_promotion_keeps_code_and_version() -> None:
    published = PublishedVersion.of_draft(_draft(), "dev", at=NOW, by="ann")
    promoted = published.promoted_to("staging", at=NOW + timedelta(seconds=1), by="bob")
    assert (promoted.environment, promoted.promoted_from, promoted.version) == ("staging", "dev", 3)
    assert promoted.hash == published.hash and promoted.published_by == "bob"


@pytest.mark.parametrize(
    ("target", "pipeline", "explicit", "source"),
    [
        ("staging", OFF, None, "dev"),
        ("prod", OFF, None, "staging"),
        ("prod", OFF, "dev", "dev"),
        ("dev", OFF, "prod", "prod"),
        ("staging", ON, None, "dev"),
        ("prod", ON, None, "staging"),
        ("prod", ON, "staging", "staging"),
        ("prod", ON_SHORT, None, "dev"),
    ],
)
def test_source_stage(
    target: EnvironmentName, pipeline: PromotionPipeline, explicit: EnvironmentName | None, source: str
) -> None:
    assert source_stage_for(target, pipeline, explicit) == source


@pytest.mark.parametrize(
    ("target", "pipeline", "explicit", "fragment"),
    [
        ("prod", ON, "dev", "only from staging, not from dev"),
        ("staging", ON, "prod", "only from dev, not from prod"),
        ("dev", ON, None, "first stage"),
        ("dev", ON, "staging", "by publishing"),
        ("dev", OFF, None, "name the source environment"),
        ("staging", ON_SHORT, None, "not a stage"),
    ],
)
def test_promotions_the_order_forbids_are_conflicts(
    target: EnvironmentName, pipeline: PromotionPipeline, explicit: EnvironmentName | None, fragment: str
) -> None:
    with pytest.raises(Conflict) as raised:
        source_stage_for(target, pipeline, explicit)
    assert fragment in raised.value.message


def test_promoting_onto_itself_is_invalid() -> None:
    with pytest.raises(Invalid):
        source_stage_for("staging", OFF, "staging")


def test_direct_publish() -> None:
    for environment in ("dev", "staging", "prod"):
        check_direct_publish(environment, OFF)
    check_direct_publish("dev", ON)
    check_direct_publish("staging", ON_SHORT)  # outside the pipeline: not governed by it
    with pytest.raises(Conflict, match="use deploy-to-stage"):
        check_direct_publish("prod", ON)


def _gateway(phase: Phase, state: DesiredState = DesiredState.RUNNING) -> Gateway:
    gateway = Gateway.new(gateway_id="gw-one", name="one", owner_id="u1", now=NOW)
    return gateway.model_copy(update={"phase": phase, "state": state})


def test_publishing_waits_for_the_database() -> None:
    with pytest.raises(Conflict, match="still being provisioned"):
        check_gateway_provisioned(_gateway(Phase.CREATING))
    for phase in (Phase.CREATED, Phase.STARTING, Phase.STARTED, Phase.STOPPING, Phase.STOPPED):
        check_gateway_provisioned(_gateway(phase))
    check_gateway_accepts_changes(_gateway(Phase.CREATING))  # drafts need no database


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        (Phase.DELETING, DesiredState.DELETED),
        (Phase.STARTED, DesiredState.DELETED),
        (Phase.DELETED, DesiredState.DELETED),
    ],
)
def test_a_gateway_being_deleted_refuses_changes(phase: Phase, state: DesiredState) -> None:
    for check in (check_gateway_accepts_changes, check_gateway_provisioned):
        with pytest.raises(Conflict, match="being deleted"):
            check(_gateway(phase, state))
