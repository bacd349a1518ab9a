"""``decide_environment`` for an app whose replicas have no node: ``Unschedulable`` when no node of the
cluster could ever hold one, ``InsufficientCapacity`` when one waits for room — each condition said
once, with the driver's reason, no redeploy, and gone as soon as the replicas have a node."""

from __future__ import annotations

import pytest

from imprun.domain import (
    AppStatus,
    ClearFailed,
    DeleteApp,
    DeployApp,
    DesiredState,
    EnvironmentObservation,
    EnvironmentStep,
    GatewayObservation,
    MarkFailed,
    ObservedEnvironment,
    Phase,
    Transition,
    WaitApp,
    decide_environment,
    decide_gateway,
)

R = DesiredState.RUNNING
SHORT = (
    "1 replica waits for room: each needs {CPU: 0.5, memory: 256 MiB}, the only alive node has "
    "{CPU: 0.2, memory: 3000 MiB} free (short of CPU by 0.3)."
)
CONDITION = MarkFailed(
    "InsufficientCapacity",
    f"The cluster has no room for the Serve app now: {SHORT.removesuffix('.')}. It starts by itself once "
    "room frees (stop or delete another environment, or add a node).",
)

WHY = "Each replica needs {CPU: 64} but no node offers that; the only alive node offers {CPU: 2}."


def decide(phase: Phase, app_status: AppStatus, **flags: object) -> list[EnvironmentStep]:
    return decide_environment(R, EnvironmentObservation(phase, app_status, **flags))  # type: ignore[arg-type]


def test_starting_reports_unschedulable_with_the_drivers_reason_and_waits_without_redeploying() -> None:
    assert decide(Phase.STARTING, AppStatus.UNSCHEDULABLE, app_message=WHY) == [
        MarkFailed(
            "Unschedulable",
            f"The Serve app cannot be scheduled: {WHY.removesuffix('.')}. The platform keeps retrying.",
        ),
        WaitApp(),
    ]
    assert decide(Phase.STARTING, AppStatus.UNSCHEDULABLE, failure_reason="Unschedulable") == [WaitApp()]


def test_unschedulable_takes_over_from_a_generic_stuck_or_unhealthy_condition() -> None:
    for earlier in ("Stuck", "AppUnhealthy"):
        steps = decide(Phase.STARTING, AppStatus.UNSCHEDULABLE, failure_reason=earlier, stuck=True)
        assert [type(step) for step in steps] == [MarkFailed, WaitApp]
        assert isinstance(steps[0], MarkFailed) and steps[0].reason == "Unschedulable"


def test_a_started_app_that_lost_its_node_is_flagged_and_left_for_the_cluster_to_place() -> None:
    assert decide(Phase.STARTED, AppStatus.UNSCHEDULABLE, app_message=WHY) == [
        MarkFailed(
            "Unschedulable",
            f"The Serve app cannot be scheduled: {WHY.removesuffix('.')}. The platform keeps retrying.",
        )
    ]
    assert decide(Phase.STARTED, AppStatus.UNSCHEDULABLE, failure_reason="Unschedulable") == []


def test_a_fixed_bundle_is_rolled_out_while_unschedulable() -> None:
    assert decide(Phase.STARTING, AppStatus.UNSCHEDULABLE, app_up_to_date=False) == [
        MarkFailed("Unschedulable", "The Serve app cannot be scheduled. The platform keeps retrying."),
        DeployApp(),
        WaitApp(),
    ]
    assert decide(
        Phase.STARTED, AppStatus.UNSCHEDULABLE, app_up_to_date=False, failure_reason="Unschedulable"
    ) == [DeployApp()]


def test_once_a_node_fits_the_condition_clears() -> None:
    assert decide(Phase.STARTING, AppStatus.RUNNING, failure_reason="Unschedulable") == [
        ClearFailed(),
        Transition(Phase.STARTED),
    ]
    assert decide(Phase.STARTED, AppStatus.RUNNING, failure_reason="Unschedulable") == [ClearFailed()]


def test_stopping_or_deleting_an_unschedulable_environment_removes_its_app() -> None:
    for desired, phase in ((DesiredState.STOPPED, Phase.STOPPING), (DesiredState.DELETED, Phase.DELETING)):
        steps = decide_environment(desired, EnvironmentObservation(phase, AppStatus.UNSCHEDULABLE))
        assert steps == [DeleteApp(), WaitApp()]


# --- InsufficientCapacity -------------------------------------------------------------------------


def test_starting_says_what_is_short_once_and_waits_without_redeploying() -> None:
    assert decide(Phase.STARTING, AppStatus.INSUFFICIENT_CAPACITY, app_message=SHORT) == [
        CONDITION,
        WaitApp(),
    ]
    assert decide(
        Phase.STARTING,
        AppStatus.INSUFFICIENT_CAPACITY,
        app_message=SHORT,
        failure_reason="InsufficientCapacity",
    ) == [WaitApp()], "already said: no new condition (nor event) every tick"


@pytest.mark.parametrize("earlier", ["Stuck", "AppUnhealthy", "DeployFailed", "Unschedulable"])
def test_insufficient_capacity_takes_over_from_another_condition(earlier: str) -> None:
    steps = decide(Phase.STARTING, AppStatus.INSUFFICIENT_CAPACITY, failure_reason=earlier, stuck=True)
    assert [type(step) for step in steps] == [MarkFailed, WaitApp]
    assert isinstance(steps[0], MarkFailed) and steps[0].reason == "InsufficientCapacity"


@pytest.mark.parametrize("reason", ["InsufficientCapacity", "Unschedulable"])
def test_a_placement_condition_clears_as_soon_as_the_replicas_have_a_node(reason: str) -> None:
    assert decide(Phase.STARTING, AppStatus.DEPLOYING, failure_reason=reason) == [ClearFailed(), WaitApp()]
    assert decide(Phase.STARTING, AppStatus.DEPLOYING, failure_reason=reason, stuck=True) == [
        ClearFailed(),
        WaitApp(),
    ], "a Stuck condition, if due, comes next tick rather than hiding the clearing"
    assert decide(Phase.STARTING, AppStatus.RUNNING, failure_reason=reason) == [
        ClearFailed(),
        Transition(Phase.STARTED),
    ]
    assert decide(Phase.STARTED, AppStatus.DEPLOYING, failure_reason=reason) == [ClearFailed()]
    assert decide(Phase.STARTED, AppStatus.RUNNING, failure_reason=reason) == [ClearFailed()]


@pytest.mark.parametrize("reason", ["DeployFailed", "AppUnhealthy", "Stuck"])
def test_other_conditions_wait_for_the_app_to_run_before_clearing(reason: str) -> None:
    assert ClearFailed() not in decide(Phase.STARTING, AppStatus.DEPLOYING, failure_reason=reason)
    assert decide(Phase.STARTED, AppStatus.DEPLOYING, failure_reason=reason) == []


def test_a_started_app_whose_new_replica_waits_for_room_is_flagged_and_left_to_the_cluster() -> None:
    assert decide(Phase.STARTED, AppStatus.INSUFFICIENT_CAPACITY, app_message=SHORT) == [CONDITION]
    assert decide(Phase.STARTED, AppStatus.INSUFFICIENT_CAPACITY, failure_reason="InsufficientCapacity") == []


def test_a_changed_bundle_is_rolled_out_while_waiting_for_room() -> None:
    steps = decide(Phase.STARTING, AppStatus.INSUFFICIENT_CAPACITY, app_up_to_date=False)
    assert [type(step) for step in steps] == [MarkFailed, DeployApp, WaitApp]
    assert decide(
        Phase.STARTED,
        AppStatus.INSUFFICIENT_CAPACITY,
        app_up_to_date=False,
        failure_reason="InsufficientCapacity",
    ) == [DeployApp()]


def test_stopping_or_deleting_an_environment_waiting_for_room_removes_its_app() -> None:
    for desired, phase in ((DesiredState.STOPPED, Phase.STOPPING), (DesiredState.DELETED, Phase.DELETING)):
        steps = decide_environment(desired, EnvironmentObservation(phase, AppStatus.INSUFFICIENT_CAPACITY))
        assert steps == [DeleteApp(), WaitApp()]


def test_the_gateway_names_each_failed_environment_with_its_reason() -> None:
    environments = (
        ObservedEnvironment("dev", R, Phase.STARTED),
        ObservedEnvironment("staging", R, Phase.STARTING, failed=True, failure_reason="InsufficientCapacity"),
        ObservedEnvironment("prod", R, Phase.STARTING, failed=True, failure_reason="Unschedulable"),
    )
    steps = decide_gateway(R, GatewayObservation(Phase.STARTING, True, environments))
    assert steps[0] == MarkFailed(
        "EnvironmentFailed",
        "Environment(s) staging (InsufficientCapacity), prod (Unschedulable) failed while the gateway waits "
        "for them to be Started; see their conditions for the cause.",
    )
