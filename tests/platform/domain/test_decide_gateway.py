"""``decide_gateway`` over every (desired, phase, database, environment records) combination."""

from __future__ import annotations

import itertools
import random

import pytest

from imprun.domain import (
    ALLOWED_TRANSITIONS,
    ENVIRONMENT_NAMES,
    SETTLED_PHASE,
    TRANSIENT_PHASES,
    ClearFailed,
    CreateDatabase,
    CreateEnvironments,
    DeleteApps,
    DeleteEnvironmentRecords,
    DeleteGatewayRecord,
    DesiredState,
    DropDatabase,
    EnvironmentName,
    FailureReason,
    GatewayObservation,
    GatewayStep,
    MarkFailed,
    ObservedEnvironment,
    Phase,
    SetEnvironmentsDesired,
    Transition,
    WaitEnvironments,
    decide_gateway,
)

R, S, D = DesiredState.RUNNING, DesiredState.STOPPED, DesiredState.DELETED
TEARDOWN = (Phase.DELETING, Phase.DELETED)
STEP_TYPES = (
    Transition,
    MarkFailed,
    ClearFailed,
    CreateDatabase,
    CreateEnvironments,
    SetEnvironmentsDesired,
    WaitEnvironments,
    DeleteApps,
    DropDatabase,
    DeleteEnvironmentRecords,
    DeleteGatewayRecord,
)
# The only order in which these may appear within one decision.
CANONICAL_ORDER = (
    CreateDatabase,
    CreateEnvironments,
    SetEnvironmentsDesired,
    DeleteApps,
    DropDatabase,
    DeleteEnvironmentRecords,
    MarkFailed,
    ClearFailed,
    WaitEnvironments,
    Transition,
    DeleteGatewayRecord,
)


def environment_sets() -> list[tuple[ObservedEnvironment, ...]]:
    """None, all three alike (every state, phase and failed flag), only dev, and seeded mixtures."""
    sets: list[tuple[ObservedEnvironment, ...]] = [()]
    for state, phase, failed in itertools.product(DesiredState, Phase, (False, True)):
        sets.append(tuple(ObservedEnvironment(name, state, phase, failed) for name in ENVIRONMENT_NAMES))
        sets.append((ObservedEnvironment("dev", state, phase, failed),))
    rng = random.Random(42)
    for _ in range(60):
        names = [name for name in ENVIRONMENT_NAMES if rng.random() < 0.8]
        sets.append(
            tuple(
                ObservedEnvironment(
                    name, rng.choice(list(DesiredState)), rng.choice(list(Phase)), rng.random() < 0.2
                )
                for name in names
            )
        )
    return sets


ENVIRONMENT_SETS = environment_sets()
FAILURE_REASONS = (None, FailureReason.ENVIRONMENT_FAILED.value, FailureReason.STUCK.value)
COMBINATIONS = list(itertools.product(DesiredState, Phase))


APPS_PRESENT: tuple[tuple[EnvironmentName, ...], ...] = ((), ENVIRONMENT_NAMES, ("prod",))


def observations(phase: Phase) -> list[GatewayObservation]:
    return [
        GatewayObservation(phase, database_exists, environments, apps, reason, stuck)
        for database_exists, environments, apps, reason, stuck in itertools.product(
            (True, False), ENVIRONMENT_SETS, APPS_PRESENT, FAILURE_REASONS, (False, True)
        )
    ]


def transitions(steps: list[GatewayStep]) -> list[Phase]:
    return [step.to for step in steps if isinstance(step, Transition)]


def all_environments_at(observed: GatewayObservation, state: DesiredState, phase: Phase) -> bool:
    return not observed.missing_environments and all(
        environment.state is state and environment.phase is phase for environment in observed.environments
    )


@pytest.mark.parametrize(("desired", "phase"), COMBINATIONS)
def test_decisions_are_well_formed(desired: DesiredState, phase: Phase) -> None:
    for observed in observations(phase):
        steps = decide_gateway(desired, observed)
        assert all(isinstance(step, STEP_TYPES) for step in steps), steps
        assert len(set(map(type, steps))) == len(steps), f"a step type repeated: {steps}"
        positions = [CANONICAL_ORDER.index(type(step)) for step in steps]
        assert positions == sorted(positions), f"steps out of order: {steps}"
        moves = transitions(steps)
        assert all(to in ALLOWED_TRANSITIONS[phase] for to in moves), (phase, steps)
        if WaitEnvironments in map(type, steps):
            assert isinstance(steps[-1], WaitEnvironments) and not moves, steps
        if phase in TRANSIENT_PHASES:
            assert steps, f"nothing to do in transient phase {phase}: {observed}"


@pytest.mark.parametrize(("desired", "phase"), COMBINATIONS)
def test_transitions_head_for_what_is_wanted(desired: DesiredState, phase: Phase) -> None:
    towards = {
        R: {Phase.CREATED, Phase.STARTING, Phase.STARTED},
        S: {Phase.CREATED, Phase.STOPPING, Phase.STOPPED},
        D: {Phase.DELETING, Phase.DELETED},
    }[desired]
    if phase in TEARDOWN:
        towards = {Phase.DELETED}
    for observed in observations(phase):
        assert set(transitions(decide_gateway(desired, observed))) <= towards


@pytest.mark.parametrize("phase", [phase for phase in Phase if phase not in TEARDOWN])
def test_deleted_wins_from_every_live_phase(phase: Phase) -> None:
    for observed in observations(phase):
        assert decide_gateway(D, observed) == [Transition(Phase.DELETING)]


@pytest.mark.parametrize(("desired", "phase"), list(itertools.product(DesiredState, TEARDOWN)))
def test_teardown_never_provisions_and_cannot_be_taken_back(desired: DesiredState, phase: Phase) -> None:
    for observed in observations(phase):
        steps = decide_gateway(desired, observed)
        assert not any(isinstance(step, CreateDatabase | CreateEnvironments) for step in steps)
        assert all(step.state is D for step in steps if isinstance(step, SetEnvironmentsDesired))
        assert WaitEnvironments(Phase.DELETED) in steps or DeleteGatewayRecord() in steps
        assert (
            not any(isinstance(step, DeleteApps) for step in steps)
            or not observed.environments
            or all(environment.phase is Phase.DELETED for environment in observed.environments)
        )


@pytest.mark.parametrize(("desired", "phase"), COMBINATIONS)
def test_nothing_is_orphaned_by_the_teardown_order(desired: DesiredState, phase: Phase) -> None:
    for observed in observations(phase):
        steps = decide_gateway(desired, observed)
        environments_gone = not observed.apps_present and all(
            environment.phase is Phase.DELETED for environment in observed.environments
        )
        if DropDatabase() in steps or DeleteEnvironmentRecords() in steps:
            assert environments_gone, f"dropping under live environments or apps: {observed}"
        for step in steps:
            if isinstance(step, DeleteApps):
                assert phase in TEARDOWN and step.names == observed.apps_present
        if DeleteGatewayRecord() in steps:
            assert steps[-1] == DeleteGatewayRecord()
            assert environments_gone
            assert (DropDatabase() in steps) is observed.database_exists
            assert (DeleteEnvironmentRecords() in steps) is bool(observed.environments)
            assert phase is Phase.DELETED or steps[-2] == Transition(Phase.DELETED)


LIVE_COMBINATIONS = list(itertools.product((R, S), [phase for phase in Phase if phase not in TEARDOWN]))


@pytest.mark.parametrize(("desired", "phase"), LIVE_COMBINATIONS)
def test_provisioning_creates_exactly_what_is_missing(desired: DesiredState, phase: Phase) -> None:
    for observed in observations(phase):
        steps = decide_gateway(desired, observed)
        creates = [step for step in steps if isinstance(step, CreateEnvironments)]
        if creates:
            assert creates == [CreateEnvironments(observed.missing_environments, desired)]
        if transitions(steps) == [] or phase in (Phase.CREATING, Phase.CREATED):
            assert (CreateDatabase() in steps) is not observed.database_exists
            assert bool(creates) is bool(observed.missing_environments)


@pytest.mark.parametrize(("desired", "phase"), LIVE_COMBINATIONS)
def test_settles_only_when_every_environment_has(desired: DesiredState, phase: Phase) -> None:
    target = SETTLED_PHASE[desired]
    for observed in observations(phase):
        steps = decide_gateway(desired, observed)
        if Transition(target) in steps:
            assert all_environments_at(observed, desired, target), observed
        for step in steps:
            if isinstance(step, SetEnvironmentsDesired):
                assert step.state is desired
                assert any(environment.state is not desired for environment in observed.environments)


@pytest.mark.parametrize(("desired", "phase"), COMBINATIONS)
def test_conditions_change_only_when_they_would_differ(desired: DesiredState, phase: Phase) -> None:
    for observed in observations(phase):
        for step in decide_gateway(desired, observed):
            if isinstance(step, MarkFailed):
                assert step.reason != observed.failure_reason
            if isinstance(step, ClearFailed):
                assert observed.failure_reason is not None


def at(state: DesiredState, phase: Phase, failed: bool = False) -> tuple[ObservedEnvironment, ...]:
    return tuple(ObservedEnvironment(name, state, phase, failed) for name in ENVIRONMENT_NAMES)


@pytest.mark.parametrize(("desired", "settled"), [(R, Phase.STARTED), (S, Phase.STOPPED)])
def test_at_rest_means_nothing_to_do(desired: DesiredState, settled: Phase) -> None:
    assert decide_gateway(desired, GatewayObservation(settled, True, at(desired, settled))) == []


# --- examples --------------------------------------------------------------------------------------


def test_creation_provisions_database_then_environments_then_created() -> None:
    fresh = GatewayObservation(Phase.CREATING, database_exists=False)
    assert decide_gateway(R, fresh) == [
        CreateDatabase(),
        CreateEnvironments(("dev", "staging", "prod"), R),
        Transition(Phase.CREATED),
    ]


def test_creation_interrupted_after_the_database_resumes_with_the_missing_environments() -> None:
    half = GatewayObservation(Phase.CREATING, True, (ObservedEnvironment("dev", R, Phase.CREATING),))
    assert decide_gateway(R, half) == [CreateEnvironments(("staging", "prod"), R), Transition(Phase.CREATED)]


def test_starting_points_environments_at_running_and_waits() -> None:
    observed = GatewayObservation(Phase.STARTING, True, at(S, Phase.STOPPED))
    assert decide_gateway(R, observed) == [SetEnvironmentsDesired(R), WaitEnvironments(Phase.STARTED)]
    almost = GatewayObservation(
        Phase.STARTING, True, (*at(R, Phase.STARTED)[:2], ObservedEnvironment("prod", R, Phase.STARTING))
    )
    assert decide_gateway(R, almost) == [WaitEnvironments(Phase.STARTED)]
    done = GatewayObservation(Phase.STARTING, True, at(R, Phase.STARTED))
    assert decide_gateway(R, done) == [Transition(Phase.STARTED)]


def test_an_environment_failure_shows_on_the_gateway_and_clears_when_started() -> None:
    failing = GatewayObservation(Phase.STARTING, True, at(R, Phase.STARTING, failed=True))
    [mark, wait] = decide_gateway(R, failing)
    assert isinstance(mark, MarkFailed) and mark.reason == "EnvironmentFailed"
    assert "dev, staging, prod" in mark.message
    assert wait == WaitEnvironments(Phase.STARTED)
    recovered = GatewayObservation(
        Phase.STARTING, True, at(R, Phase.STARTED), failure_reason="EnvironmentFailed"
    )
    assert decide_gateway(R, recovered) == [ClearFailed(), Transition(Phase.STARTED)]


def test_stop_and_start_flip_the_environments() -> None:
    started = GatewayObservation(Phase.STARTED, True, at(R, Phase.STARTED))
    assert decide_gateway(S, started) == [Transition(Phase.STOPPING)]
    stopping = GatewayObservation(Phase.STOPPING, True, at(R, Phase.STARTED))
    assert decide_gateway(S, stopping) == [SetEnvironmentsDesired(S), WaitEnvironments(Phase.STOPPED)]
    assert decide_gateway(R, stopping) == [Transition(Phase.STARTING)], "a mind change mid-stop"


def test_at_rest_repairs_a_missing_database_in_place() -> None:
    observed = GatewayObservation(Phase.STARTED, False, at(R, Phase.STARTED))
    assert decide_gateway(R, observed) == [CreateDatabase()]


def test_a_gateway_in_creating_can_be_deleted() -> None:
    creating = GatewayObservation(Phase.CREATING, True, (ObservedEnvironment("dev", R, Phase.CREATING),))
    assert decide_gateway(D, creating) == [Transition(Phase.DELETING)]
    deleting = GatewayObservation(Phase.DELETING, True, (ObservedEnvironment("dev", R, Phase.CREATING),))
    assert decide_gateway(D, deleting) == [SetEnvironmentsDesired(D), WaitEnvironments(Phase.DELETED)]
    nothing_yet = GatewayObservation(Phase.DELETING, False)
    assert decide_gateway(D, nothing_yet) == [Transition(Phase.DELETED), DeleteGatewayRecord()]


def test_teardown_goes_environments_database_records_gateway() -> None:
    live = GatewayObservation(Phase.DELETING, True, at(D, Phase.DELETING))
    assert decide_gateway(D, live) == [WaitEnvironments(Phase.DELETED)]
    torn_down = GatewayObservation(Phase.DELETING, True, at(D, Phase.DELETED))
    assert decide_gateway(D, torn_down) == [
        DropDatabase(),
        DeleteEnvironmentRecords(),
        Transition(Phase.DELETED),
        DeleteGatewayRecord(),
    ]
    crashed_before_record = GatewayObservation(Phase.DELETED, False)
    assert decide_gateway(D, crashed_before_record) == [DeleteGatewayRecord()]


def test_teardown_removes_an_app_that_outlived_its_environment_before_dropping_anything() -> None:
    stray = GatewayObservation(Phase.DELETING, True, at(D, Phase.DELETED), apps_present=("dev",))
    assert decide_gateway(D, stray) == [DeleteApps(("dev",)), WaitEnvironments(Phase.DELETED)]


def test_environment_records_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        GatewayObservation(Phase.STARTED, True, (ObservedEnvironment("dev", R, Phase.STARTED),) * 2)
