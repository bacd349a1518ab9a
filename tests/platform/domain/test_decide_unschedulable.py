"""``decide_environment`` for an app no node of the cluster can hold: a clear Unschedulable condition."""

from __future__ import annotations

from imprun.domain import (
    AppStatus,
    ClearFailed,
    DeleteApp,
    DeployApp,
    DesiredState,
    EnvironmentObservation,
    EnvironmentStep,
    MarkFailed,
    Phase,
    Transition,
    WaitApp,
    decide_environment,
)

R = DesiredState.RUNNING
WHY = "Each replica needs {CPU: 64} but no node offers that; the only alive node offers {CPU: 2}."


def decide(phase: Phase, app_status: AppStatus, **flags: object) -> list[EnvironmentStep]:
    return decide_environment(R, EnvironmentObservation(phase, app_status, **flags))  # type: ignore[arg-type]


def test_starting_reports_unschedulable_with_the_drivers_reason_and_waits_without_redeploying() -> None:
    assert decide(Phase.STARTING, AppStatus.UNSCHEDULABLE, app_message=WHY) == [
        MarkFailed(
            "Unschedulable", f"The Serve app cannot be scheduled: {WHY}. The platform keeps retrying."
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
        MarkFailed("Unschedulable", f"The Serve app cannot be scheduled: {WHY}. The platform keeps retrying.")
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
