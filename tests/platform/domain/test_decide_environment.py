"""``decide_environment`` over every (desired, phase, app status, flags) combination, plus examples."""

from __future__ import annotations

import itertools

import pytest

from imprun.domain import (
    ALLOWED_TRANSITIONS,
    TRANSIENT_PHASES,
    AppStatus,
    ClearFailed,
    DeleteApp,
    DeployApp,
    DesiredState,
    EnvironmentObservation,
    EnvironmentStep,
    FailureReason,
    MarkFailed,
    Phase,
    Transition,
    WaitApp,
    decide_environment,
)

FAILURE_REASONS: tuple[str | None, ...] = (None, *(reason.value for reason in FailureReason))
COMBINATIONS = list(itertools.product(DesiredState, Phase, AppStatus))
STEP_TYPES = (Transition, MarkFailed, ClearFailed, DeployApp, DeleteApp, WaitApp)


def observations(phase: Phase, app_status: AppStatus) -> list[EnvironmentObservation]:
    return [
        EnvironmentObservation(
            phase=phase,
            app_status=app_status,
            app_up_to_date=up_to_date,
            app_message=message,
            failure_reason=reason,
            stuck=stuck,
        )
        for up_to_date, reason, stuck, message in itertools.product(
            (True, False), FAILURE_REASONS, (False, True), ("", "ImportError: no module named x")
        )
    ]


def transitions(steps: list[EnvironmentStep]) -> list[Phase]:
    return [step.to for step in steps if isinstance(step, Transition)]


@pytest.mark.parametrize(("desired", "phase", "app_status"), COMBINATIONS)
def test_decisions_are_well_formed(desired: DesiredState, phase: Phase, app_status: AppStatus) -> None:
    for observed in observations(phase, app_status):
        steps = decide_environment(desired, observed)
        assert all(isinstance(step, STEP_TYPES) for step in steps), steps
        moves = transitions(steps)
        assert len(moves) <= 1, steps
        assert all(to in ALLOWED_TRANSITIONS[phase] for to in moves), (phase, steps)
        if moves:
            assert steps[-1] == Transition(moves[0]), "a transition ends the tick"
        waits = [step for step in steps if isinstance(step, WaitApp)]
        assert len(waits) <= 1
        if waits:
            assert steps[-1] == WaitApp() and not moves, steps
        assert len(set(map(type, steps))) == len(steps), f"a step type repeated: {steps}"


@pytest.mark.parametrize(("desired", "phase", "app_status"), COMBINATIONS)
def test_transitions_head_for_what_is_wanted(
    desired: DesiredState, phase: Phase, app_status: AppStatus
) -> None:
    towards = {
        DesiredState.RUNNING: {Phase.CREATED, Phase.STARTING, Phase.STARTED},
        DesiredState.STOPPED: {Phase.CREATED, Phase.STOPPING, Phase.STOPPED},
        DesiredState.DELETED: {Phase.DELETING, Phase.DELETED},
    }[desired]
    if phase in (Phase.DELETING, Phase.DELETED):
        towards = {Phase.DELETED}
    for observed in observations(phase, app_status):
        assert set(transitions(decide_environment(desired, observed))) <= towards


@pytest.mark.parametrize(("phase", "app_status"), list(itertools.product(Phase, AppStatus)))
def test_deleted_wins_over_everything(phase: Phase, app_status: AppStatus) -> None:
    for observed in observations(phase, app_status):
        steps = decide_environment(DesiredState.DELETED, observed)
        if phase not in (Phase.DELETING, Phase.DELETED):
            assert steps == [Transition(Phase.DELETING)]
        assert not any(isinstance(step, DeployApp) for step in steps)


@pytest.mark.parametrize("desired", [DesiredState.RUNNING, DesiredState.STOPPED])
@pytest.mark.parametrize("app_status", list(AppStatus))
@pytest.mark.parametrize("phase", [Phase.DELETING, Phase.DELETED])
def test_deletion_cannot_be_taken_back(desired: DesiredState, phase: Phase, app_status: AppStatus) -> None:
    for observed in observations(phase, app_status):
        steps = decide_environment(desired, observed)
        assert not any(isinstance(step, DeployApp) for step in steps)
        assert set(transitions(steps)) <= {Phase.DELETED}


@pytest.mark.parametrize(("desired", "phase", "app_status"), COMBINATIONS)
def test_apps_are_deployed_only_when_starting_or_started_and_deleted_only_otherwise(
    desired: DesiredState, phase: Phase, app_status: AppStatus
) -> None:
    for observed in observations(phase, app_status):
        steps = decide_environment(desired, observed)
        if DeployApp() in steps:
            assert desired is DesiredState.RUNNING and phase in (Phase.STARTING, Phase.STARTED)
            assert app_status is not AppStatus.DELETING, "Serve cannot deploy over an app being deleted"
            assert app_status is not AppStatus.RUNNING or not observed.app_up_to_date
        if DeleteApp() in steps:
            assert phase in (Phase.STOPPING, Phase.STOPPED, Phase.DELETING, Phase.DELETED)
            assert app_status not in (AppStatus.MISSING, AppStatus.DELETING)


@pytest.mark.parametrize(("desired", "phase", "app_status"), COMBINATIONS)
def test_transient_phases_always_have_a_next_step(
    desired: DesiredState, phase: Phase, app_status: AppStatus
) -> None:
    if phase in TRANSIENT_PHASES:
        for observed in observations(phase, app_status):
            assert decide_environment(desired, observed)


@pytest.mark.parametrize(("desired", "phase", "app_status"), COMBINATIONS)
def test_conditions_change_only_when_they_would_differ(
    desired: DesiredState, phase: Phase, app_status: AppStatus
) -> None:
    for observed in observations(phase, app_status):
        steps = decide_environment(desired, observed)
        for step in steps:
            if isinstance(step, MarkFailed):
                assert step.reason != observed.failure_reason
                assert step.message
            if isinstance(step, ClearFailed):
                assert observed.failure_reason is not None
        if MarkFailed in map(type, steps):
            assert ClearFailed() not in steps


@pytest.mark.parametrize(
    ("desired", "phase", "app_status"),
    [
        (DesiredState.RUNNING, Phase.STARTED, AppStatus.RUNNING),
        (DesiredState.RUNNING, Phase.STARTED, AppStatus.DEPLOYING),
        (DesiredState.STOPPED, Phase.STOPPED, AppStatus.MISSING),
        (DesiredState.STOPPED, Phase.STOPPED, AppStatus.DELETING),
        (DesiredState.DELETED, Phase.DELETED, AppStatus.MISSING),
        (DesiredState.RUNNING, Phase.DELETED, AppStatus.DELETING),
    ],
)
def test_at_rest_and_healthy_means_nothing_to_do(
    desired: DesiredState, phase: Phase, app_status: AppStatus
) -> None:
    assert decide_environment(desired, EnvironmentObservation(phase, app_status)) == []


# --- examples --------------------------------------------------------------------------------------


def decide(
    desired: DesiredState, phase: Phase, app_status: AppStatus, **flags: object
) -> list[EnvironmentStep]:
    return decide_environment(desired, EnvironmentObservation(phase, app_status, **flags))  # type: ignore[arg-type]


R, S, D = DesiredState.RUNNING, DesiredState.STOPPED, DesiredState.DELETED


def test_a_new_environment_walks_to_started() -> None:
    assert decide(R, Phase.CREATING, AppStatus.MISSING) == [Transition(Phase.CREATED)]
    assert decide(R, Phase.CREATED, AppStatus.MISSING) == [Transition(Phase.STARTING)]
    assert decide(R, Phase.STARTING, AppStatus.MISSING) == [DeployApp(), WaitApp()]
    assert decide(R, Phase.STARTING, AppStatus.DEPLOYING) == [WaitApp()]
    assert decide(R, Phase.STARTING, AppStatus.RUNNING) == [Transition(Phase.STARTED)]


def test_a_stopped_environment_has_no_app() -> None:
    assert decide(S, Phase.CREATED, AppStatus.MISSING) == [Transition(Phase.STOPPING)]
    assert decide(S, Phase.STARTED, AppStatus.RUNNING) == [Transition(Phase.STOPPING)]
    assert decide(S, Phase.STOPPING, AppStatus.RUNNING) == [DeleteApp(), WaitApp()]
    assert decide(S, Phase.STOPPING, AppStatus.DELETING) == [WaitApp()]
    assert decide(S, Phase.STOPPING, AppStatus.MISSING) == [Transition(Phase.STOPPED)]
    assert decide(S, Phase.STOPPED, AppStatus.RUNNING) == [DeleteApp()], "a stray app is removed"


def test_a_deploy_failure_is_reported_with_serves_message_and_retried() -> None:
    steps = decide(R, Phase.STARTING, AppStatus.DEPLOY_FAILED, app_message="SyntaxError at line 3")
    assert steps == [
        MarkFailed(
            "DeployFailed",
            "The Serve app failed to deploy: SyntaxError at line 3. The platform keeps retrying.",
        ),
        DeployApp(),
        WaitApp(),
    ]
    assert decide(R, Phase.STARTING, AppStatus.DEPLOY_FAILED, failure_reason="DeployFailed") == [
        DeployApp(),
        WaitApp(),
    ]


def test_recovery_clears_the_failure() -> None:
    assert decide(R, Phase.STARTING, AppStatus.RUNNING, failure_reason="DeployFailed") == [
        ClearFailed(),
        Transition(Phase.STARTED),
    ]
    assert decide(R, Phase.STARTED, AppStatus.RUNNING, failure_reason="AppUnhealthy") == [ClearFailed()]


def test_an_unhealthy_started_app_is_flagged_but_left_to_serve() -> None:
    assert decide(R, Phase.STARTED, AppStatus.UNHEALTHY) == [
        MarkFailed("AppUnhealthy", "The Serve app is unhealthy. The platform keeps retrying.")
    ]


def test_a_started_environment_whose_app_vanished_starts_again() -> None:
    for status in (AppStatus.MISSING, AppStatus.DEPLOY_FAILED, AppStatus.DELETING):
        assert decide(R, Phase.STARTED, status) == [Transition(Phase.STARTING)]


def test_a_changed_bundle_redeploys_in_place() -> None:
    assert decide(R, Phase.STARTED, AppStatus.RUNNING, app_up_to_date=False) == [DeployApp()]
    assert decide(R, Phase.STARTING, AppStatus.RUNNING, app_up_to_date=False) == [DeployApp(), WaitApp()]


def test_starting_waits_for_a_deleting_app_to_go_before_deploying() -> None:
    assert decide(R, Phase.STARTING, AppStatus.DELETING) == [WaitApp()]


def test_stuck_is_reported_once_and_never_over_a_specific_failure() -> None:
    stuck = decide(R, Phase.STARTING, AppStatus.DEPLOYING, stuck=True)
    assert stuck[0] == MarkFailed(
        "Stuck",
        "Still Starting after 300 s; the platform keeps trying. Check the environments' conditions and the cluster.",
    )
    assert decide(R, Phase.STARTING, AppStatus.DEPLOYING, stuck=True, failure_reason="Stuck") == [WaitApp()]
    assert decide(R, Phase.STARTING, AppStatus.DEPLOYING, stuck=True, failure_reason="DeployFailed") == [
        WaitApp()
    ]
    assert decide(D, Phase.DELETING, AppStatus.DELETING, stuck=True)[0].reason == "Stuck"  # type: ignore[union-attr]


def test_deleting_removes_the_app_before_the_record_is_deleted() -> None:
    assert decide(D, Phase.STARTED, AppStatus.RUNNING) == [Transition(Phase.DELETING)]
    assert decide(D, Phase.DELETING, AppStatus.RUNNING) == [DeleteApp(), WaitApp()]
    assert decide(D, Phase.DELETING, AppStatus.DELETING) == [WaitApp()]
    assert decide(D, Phase.DELETING, AppStatus.MISSING) == [Transition(Phase.DELETED)]
    assert decide(D, Phase.DELETED, AppStatus.UNHEALTHY) == [DeleteApp()]
