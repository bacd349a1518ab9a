"""Both decisions together, run in the simulator: from every start state, with crashes, things converge.

A start state is a gateway (every desired state, phase, database there or not) with its environment
records all alike (missing, or every state, phase, Serve app status, app up to date) — or, in the
randomised test, each environment different. From each, the reconcilers tick until nothing is left to
do; the end must be the settled world the desired state describes. Crashes drop the last step of a
decision (or any suffix of it) on early ticks, like a reconciler dying between two steps.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import pytest

from imprun.domain import (
    ENVIRONMENT_NAMES,
    SETTLED_PHASE,
    AppStatus,
    DesiredState,
    EnvironmentName,
    FailureReason,
    Phase,
)
from imprun.errors import ImprunError
from tests.platform.domain.lifecycle_simulator import (
    Crash,
    EnvironmentRecord,
    ServeApp,
    World,
    no_crash,
    orphans,
    run,
    tick,
)

MAX_TICKS = 60
CRASH_WINDOW = 20
TEARDOWN = (Phase.DELETING, Phase.DELETED)
APP_VARIANTS = [(AppStatus.MISSING, True)] + [
    (status, up_to_date)
    for status in AppStatus
    if status is not AppStatus.MISSING
    for up_to_date in (True, False)
]


def drop_last_step_every_other_tick(number: int, steps: Sequence[object]) -> int:
    crashing = number < CRASH_WINDOW and number % 2 == 0
    return max(len(steps) - 1, 0) if crashing else len(steps)


def random_suffix_dropper(seed: int) -> Crash:
    rng = random.Random(seed)

    def crash(number: int, steps: Sequence[object]) -> int:
        if number < CRASH_WINDOW and rng.random() < 0.5:
            return rng.randint(0, len(steps))
        return len(steps)

    return crash


def crash_for(name: str, seed: int) -> Crash:
    if name == "none":
        return no_crash
    if name == "drop-last":
        return drop_last_step_every_other_tick
    return random_suffix_dropper(seed)


def is_teardown(desired: DesiredState, phase: Phase) -> bool:
    return desired is DesiredState.DELETED or phase in TEARDOWN


def start_worlds(desired: DesiredState, phase: Phase) -> Iterator[World]:
    """Every uniform start state. Environment records are only in teardown when the gateway is: the
    lifecycle never produces anything else (deletion is one-way and starts at the gateway)."""
    teardown = is_teardown(desired, phase)
    env_states = list(DesiredState) if teardown else [DesiredState.RUNNING, DesiredState.STOPPED]
    env_phases = list(Phase) if teardown else [p for p in Phase if p not in TEARDOWN]
    for database_exists in (True, False):
        yield World(desired, phase, database_exists)
        # An app without any record: only an outside hand makes one, but teardown must still remove it.
        yield World(
            desired,
            phase,
            database_exists,
            apps={name: ServeApp(AppStatus.RUNNING) for name in ENVIRONMENT_NAMES},
        )
        for env_state, env_phase, (status, up_to_date) in itertools.product(
            env_states, env_phases, APP_VARIANTS
        ):
            yield World(
                desired,
                phase,
                database_exists,
                environments={name: EnvironmentRecord(env_state, env_phase) for name in ENVIRONMENT_NAMES},
                apps={name: ServeApp(status, up_to_date) for name in ENVIRONMENT_NAMES},
            )


def settled_problem(desired: DesiredState, start_phase: Phase | None, end: World) -> str | None:
    """What is wrong with ``end`` as the resting place of a run that started in ``start_phase``."""
    if is_teardown(desired, start_phase or Phase.DELETED):
        leftovers = [
            what
            for what, present in (
                ("gateway record", end.gateway_phase is not None),
                ("database", end.database_exists),
                ("environment records", bool(end.environments)),
                ("apps", any(app.status is not AppStatus.MISSING for app in end.apps.values())),
            )
            if present
        ]
        return f"left behind: {', '.join(leftovers)}" if leftovers else None

    target = SETTLED_PHASE[desired]
    if end.gateway_phase is not target:
        return f"gateway in {end.gateway_phase}, wanted {target}"
    if not end.database_exists:
        return "no database"
    if set(end.environments) != set(ENVIRONMENT_NAMES):
        return f"environments {sorted(end.environments)}"
    if end.gateway_failure_reason is not None:
        return f"gateway still failed: {end.gateway_failure_reason}"
    gateway_moved = any(who == "gateway" for who, _, _ in end.transitions)
    for name, record in end.environments.items():
        # A gateway at rest leaves an environment stopped or started on its own alone.
        if (gateway_moved or start_phase is not target) and record.state is not desired:
            return f"{name} wants {record.state}, gateway wants {desired}"
        if record.phase is not SETTLED_PHASE[record.state]:
            return f"{name} in {record.phase} while wanting {record.state}"
        if record.failure_reason is not None:
            return f"{name} still failed: {record.failure_reason}"
        app = end.apps[name]
        wanted_app = AppStatus.RUNNING if record.state is DesiredState.RUNNING else AppStatus.MISSING
        if app.status is not wanted_app or not app.up_to_date:
            return f"app {name} is {app.status} (up to date: {app.up_to_date}), wanted {wanted_app}"
    return None


def describe(world: World) -> str:
    environments = {name: (r.state.value, r.phase.value) for name, r in world.environments.items()}
    apps = {name: (a.status.value, a.up_to_date) for name, a in world.apps.items()}
    return (
        f"gateway {world.gateway_state.value}/{world.gateway_phase} db={world.database_exists} "
        f"envs={environments} apps={apps}"
    )


def converge(world: World, crash: Crash, check_orphans: bool = False) -> str | None:
    desired, start_phase = world.gateway_state, world.gateway_phase
    try:
        end, rested_at = run(world, MAX_TICKS, crash, check_orphans)
    except (AssertionError, ImprunError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if rested_at is None:
        return f"never came to rest; ended as {describe(world)}"
    return settled_problem(desired, start_phase, end)


def report(failures: list[str], tried: int) -> str:
    return f"{len(failures)} of {tried} start states failed, e.g.:\n" + "\n".join(failures[:8])


@pytest.mark.parametrize("crash_name", ["none", "drop-last", "random-suffix"])
@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("desired", list(DesiredState))
def test_every_start_state_converges_to_what_is_desired(
    desired: DesiredState, phase: Phase, crash_name: str
) -> None:
    failures: list[str] = []
    tried = 0
    for seed, world in enumerate(start_worlds(desired, phase)):
        tried += 1
        start = describe(world)
        if (problem := converge(world, crash_for(crash_name, seed))) is not None:
            failures.append(f"{start}: {problem}")
    assert tried > 100
    assert not failures, report(failures, tried)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("desired", list(DesiredState))
def test_no_step_boundary_leaves_an_orphan(desired: DesiredState, phase: Phase) -> None:
    failures: list[str] = []
    consistent = [world for world in start_worlds(desired, phase) if not orphans(world)]
    for seed, world in enumerate(consistent):
        start = describe(world)
        if (problem := converge(world, random_suffix_dropper(seed), check_orphans=True)) is not None:
            failures.append(f"{start}: {problem}")
    assert consistent
    assert not failures, report(failures, len(consistent))


def random_world(rng: random.Random) -> World:
    desired = rng.choice(list(DesiredState))
    phase = rng.choice(list(Phase))
    teardown = is_teardown(desired, phase)
    environments: dict[EnvironmentName, EnvironmentRecord] = {}
    apps = {name: ServeApp() for name in ENVIRONMENT_NAMES}
    for name in ENVIRONMENT_NAMES:
        if rng.random() < 0.2:
            continue
        env_phases = list(Phase) if teardown else [p for p in Phase if p not in TEARDOWN]
        env_states = list(DesiredState) if teardown else [DesiredState.RUNNING, DesiredState.STOPPED]
        reason = rng.choice([None, *(r.value for r in FailureReason)])
        environments[name] = EnvironmentRecord(rng.choice(env_states), rng.choice(env_phases), reason)
        status, up_to_date = rng.choice(APP_VARIANTS)
        apps[name] = ServeApp(status, up_to_date)
    return World(
        desired,
        phase,
        rng.random() < 0.7,
        environments=environments,
        apps=apps,
        gateway_failure_reason=rng.choice([None, *(r.value for r in FailureReason)]),
        deploy_failures_left=rng.randint(0, 3),
        stuck=rng.random() < 0.3,
    )


@pytest.mark.parametrize("seed", range(8))
def test_mixed_environments_failures_and_crashes_converge(seed: int) -> None:
    rng = random.Random(seed)
    failures: list[str] = []
    for index in range(250):
        world = random_world(rng)
        start = describe(world)
        problem = converge(
            world, random_suffix_dropper(seed * 1000 + index), check_orphans=not orphans(world)
        )
        if problem is not None:
            failures.append(f"{start}: {problem}")
    assert not failures, report(failures, 250)


# --- whole lifecycles, tick by tick ----------------------------------------------------------------


def gateway_moves(world: World) -> list[tuple[Phase, Phase]]:
    return [(from_, to) for who, from_, to in world.transitions if who == "gateway"]


def environment_moves(world: World, name: str) -> list[tuple[Phase, Phase]]:
    return [(from_, to) for who, from_, to in world.transitions if who == name]


def settle(world: World) -> World:
    end, rested_at = run(world, MAX_TICKS, check_orphans=True)
    assert rested_at is not None, describe(end)
    return end


def test_create_stop_start_delete_takes_the_documented_path() -> None:
    world = settle(World(DesiredState.RUNNING, Phase.CREATING, database_exists=False))
    assert gateway_moves(world) == [
        (Phase.CREATING, Phase.CREATED),
        (Phase.CREATED, Phase.STARTING),
        (Phase.STARTING, Phase.STARTED),
    ]
    for name in ENVIRONMENT_NAMES:
        assert environment_moves(world, name) == [
            (Phase.CREATING, Phase.CREATED),
            (Phase.CREATED, Phase.STARTING),
            (Phase.STARTING, Phase.STARTED),
        ]
        assert world.apps[name].status is AppStatus.RUNNING

    world.transitions.clear()
    world.gateway_state = DesiredState.STOPPED
    world = settle(world)
    assert gateway_moves(world) == [(Phase.STARTED, Phase.STOPPING), (Phase.STOPPING, Phase.STOPPED)]
    assert all(app.status is AppStatus.MISSING for app in world.apps.values()), "scaled to zero"
    assert world.database_exists

    world.transitions.clear()
    world.gateway_state = DesiredState.RUNNING
    world = settle(world)
    assert gateway_moves(world) == [(Phase.STOPPED, Phase.STARTING), (Phase.STARTING, Phase.STARTED)]
    assert all(app.status is AppStatus.RUNNING for app in world.apps.values())

    world.transitions.clear()
    world.gateway_state = DesiredState.DELETED
    world = settle(world)
    assert gateway_moves(world) == [(Phase.STARTED, Phase.DELETING), (Phase.DELETING, Phase.DELETED)]
    assert environment_moves(world, "prod") == [
        (Phase.STARTED, Phase.DELETING),
        (Phase.DELETING, Phase.DELETED),
    ]
    assert world.gateway_phase is None and not world.database_exists and not world.environments


@pytest.mark.parametrize("ticks_before", range(12))
@pytest.mark.parametrize("new_mind", [DesiredState.STOPPED, DesiredState.DELETED])
def test_changing_the_desired_state_at_any_tick_of_a_creation_converges(
    ticks_before: int, new_mind: DesiredState
) -> None:
    world = World(DesiredState.RUNNING, Phase.CREATING, database_exists=False)
    for number in range(ticks_before):
        tick(world, number, check_orphans=True)
    world.gateway_state = new_mind
    start_phase = world.gateway_phase
    end = settle(world)
    assert settled_problem(new_mind, start_phase, end) is None, describe(end)


def test_a_deploy_that_keeps_failing_is_visible_and_then_recovers() -> None:
    world = World(DesiredState.RUNNING, Phase.CREATING, database_exists=False, deploy_failures_left=3)
    seen_failed: set[str] = set()
    for number in range(MAX_TICKS):
        tick(world, number)
        seen_failed |= {name for name, record in world.environments.items() if record.failure_reason}
        if world.gateway_failure_reason == FailureReason.ENVIRONMENT_FAILED:
            seen_failed.add("gateway")
    assert seen_failed >= {"gateway"}
    assert world.gateway_phase is Phase.STARTED
    assert world.gateway_failure_reason is None
    assert all(record.failure_reason is None for record in world.environments.values())
