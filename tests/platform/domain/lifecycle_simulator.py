"""A tiny in-memory world to run the pure lifecycle decisions against, tick by tick.

It stands in for the store (gateway and environment records, the gateway database), Ray Serve (one
app per environment that deploys, fails, heals and deletes over ticks) and the two reconcilers, which
observe, call ``decide_gateway``/``decide_environment`` and apply the returned steps in order. Steps
are applied with the semantics the real store and drivers promise: idempotent, transitions as a
compare-and-set against the observed phase through ``check_transition``, ``DeleteGatewayRecord`` only
from phase Deleted. A ``crash`` callback decides how many of a decision's steps survive, which is how
tests drop the effect of the last step (or any suffix) to model a reconciler dying mid-tick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from imprun.domain import (
    ENVIRONMENT_NAMES,
    AppStatus,
    ClearFailed,
    CreateDatabase,
    CreateEnvironments,
    DeleteApp,
    DeleteApps,
    DeleteEnvironmentRecords,
    DeleteGatewayRecord,
    DeployApp,
    DesiredState,
    DropDatabase,
    EnvironmentName,
    EnvironmentObservation,
    EnvironmentStep,
    GatewayObservation,
    GatewayStep,
    MarkFailed,
    ObservedEnvironment,
    Phase,
    SetEnvironmentsDesired,
    Transition,
    WaitApp,
    WaitEnvironments,
    check_transition,
    decide_environment,
    decide_gateway,
)

Crash = Callable[[int, Sequence[object]], int]
"""(tick, steps) → how many of the steps get applied before the reconciler "dies"."""


def no_crash(tick: int, steps: Sequence[object]) -> int:
    return len(steps)


@dataclass
class EnvironmentRecord:
    state: DesiredState
    phase: Phase
    failure_reason: str | None = None


@dataclass
class ServeApp:
    status: AppStatus = AppStatus.MISSING
    up_to_date: bool = True


@dataclass
class World:
    gateway_state: DesiredState
    gateway_phase: Phase | None  # None: the gateway record is gone
    database_exists: bool
    environments: dict[EnvironmentName, EnvironmentRecord] = field(default_factory=dict)
    apps: dict[EnvironmentName, ServeApp] = field(
        default_factory=lambda: {name: ServeApp() for name in ENVIRONMENT_NAMES}
    )
    gateway_failure_reason: str | None = None
    deploy_failures_left: int = 0
    stuck: bool = False
    transitions: list[tuple[str, Phase, Phase]] = field(default_factory=list)


class OrphanError(AssertionError):
    """Something outlived what owns it: the order of teardown (or provisioning) is wrong."""


def orphans(world: World) -> list[str]:
    """Everything in ``world`` that exists without what it depends on."""
    found: list[str] = []
    if world.gateway_phase is None:
        if world.database_exists:
            found.append("database without gateway")
        if world.environments:
            found.append("environment records without gateway")
    elif not world.database_exists:
        live = [name for name, record in world.environments.items() if record.phase is not Phase.DELETED]
        if live:
            found.append(f"live environment records {live} without gateway database")
    for name, app in world.apps.items():
        if app.status is AppStatus.MISSING:
            continue
        if name not in world.environments:
            found.append(f"app {name} without environment record")
        if not world.database_exists:
            found.append(f"app {name} without gateway database")
    return found


# --- observation -----------------------------------------------------------------------------------


def observe_gateway(world: World) -> GatewayObservation:
    assert world.gateway_phase is not None
    return GatewayObservation(
        phase=world.gateway_phase,
        database_exists=world.database_exists,
        environments=tuple(
            ObservedEnvironment(name, record.state, record.phase, failed=record.failure_reason is not None)
            for name, record in world.environments.items()
        ),
        apps_present=tuple(name for name, app in world.apps.items() if app.status is not AppStatus.MISSING),
        failure_reason=world.gateway_failure_reason,
        stuck=world.stuck,
    )


def observe_environment(world: World, name: EnvironmentName) -> EnvironmentObservation:
    record = world.environments[name]
    app = world.apps[name]
    return EnvironmentObservation(
        phase=record.phase,
        app_status=app.status,
        app_up_to_date=app.up_to_date,
        app_message="ImportError in main.py" if app.status is AppStatus.DEPLOY_FAILED else "",
        failure_reason=record.failure_reason,
        stuck=world.stuck,
    )


# --- applying steps --------------------------------------------------------------------------------


def apply_gateway_step(world: World, observed_phase: Phase, step: GatewayStep) -> None:
    match step:
        case Transition(to=to):
            if world.gateway_phase is observed_phase:  # compare-and-set on {_id, phase}
                check_transition(observed_phase, to)
                world.transitions.append(("gateway", observed_phase, to))
                world.gateway_phase = to
        case MarkFailed(reason=reason):
            world.gateway_failure_reason = reason
        case ClearFailed():
            world.gateway_failure_reason = None
        case CreateDatabase():
            world.database_exists = True
        case CreateEnvironments(names=names, state=state):
            for name in names:
                world.environments.setdefault(name, EnvironmentRecord(state, Phase.CREATING))
        case SetEnvironmentsDesired(state=state):
            for record in world.environments.values():
                if record.state is not DesiredState.DELETED:  # the store never un-deletes
                    record.state = state
        case WaitEnvironments():
            pass
        case DeleteApps(names=names):
            for name in names:
                if world.apps[name].status is not AppStatus.MISSING:
                    world.apps[name].status = AppStatus.DELETING
        case DropDatabase():
            world.database_exists = False
        case DeleteEnvironmentRecords():
            world.environments.clear()
        case DeleteGatewayRecord():
            if world.gateway_phase is not Phase.DELETED:
                raise AssertionError(f"gateway record deleted in phase {world.gateway_phase}")
            world.gateway_phase = None
        case _:
            raise AssertionError(f"not a gateway step: {step!r}")


def apply_environment_step(
    world: World, name: EnvironmentName, observed_phase: Phase, step: EnvironmentStep
) -> None:
    record = world.environments[name]
    app = world.apps[name]
    match step:
        case Transition(to=to):
            if record.phase is observed_phase:
                check_transition(observed_phase, to)
                world.transitions.append((name, observed_phase, to))
                record.phase = to
        case MarkFailed(reason=reason):
            record.failure_reason = reason
        case ClearFailed():
            record.failure_reason = None
        case DeployApp():
            if app.status is AppStatus.DELETING:
                raise AssertionError(f"deployed app {name} over an app Serve is deleting")
            app.status = AppStatus.DEPLOYING
            app.up_to_date = True
        case DeleteApp():
            if app.status is not AppStatus.MISSING:
                app.status = AppStatus.DELETING
        case WaitApp():
            pass
        case _:
            raise AssertionError(f"not an environment step: {step!r}")


def advance_serve(world: World) -> None:
    """What Ray Serve does on its own between two ticks."""
    for app in world.apps.values():
        if app.status is AppStatus.DEPLOYING:
            if world.deploy_failures_left > 0:
                world.deploy_failures_left -= 1
                app.status = AppStatus.DEPLOY_FAILED
            else:
                app.status = AppStatus.RUNNING
        elif app.status in (AppStatus.UNHEALTHY, AppStatus.UNSCHEDULABLE):  # a node that fits joins
            app.status = AppStatus.RUNNING
        elif app.status is AppStatus.INSUFFICIENT_CAPACITY:  # room frees: the replicas get a node
            app.status = AppStatus.DEPLOYING
        elif app.status is AppStatus.DELETING:
            app.status = AppStatus.MISSING
            app.up_to_date = True


# --- running ---------------------------------------------------------------------------------------


def tick(world: World, number: int, crash: Crash = no_crash, check_orphans: bool = False) -> None:
    """One round: the gateway reconciler, each environment reconciler, then Serve moves on."""
    if world.gateway_phase is not None:
        observed = observe_gateway(world)
        steps = decide_gateway(world.gateway_state, observed)
        for step in steps[: crash(number, steps)]:
            apply_gateway_step(world, observed.phase, step)
            _check(world, check_orphans, step)
    for name in list(world.environments):
        if name not in world.environments:
            continue
        env_observed = observe_environment(world, name)
        env_steps = decide_environment(world.environments[name].state, env_observed)
        for env_step in env_steps[: crash(number, env_steps)]:
            apply_environment_step(world, name, env_observed.phase, env_step)
            _check(world, check_orphans, env_step)
    advance_serve(world)
    _check(world, check_orphans, "serve")


def _check(world: World, check_orphans: bool, after: object) -> None:
    if check_orphans and (found := orphans(world)):
        raise OrphanError(f"after {after!r}: {found}")


def run(
    world: World, ticks: int, crash: Crash = no_crash, check_orphans: bool = False
) -> tuple[World, int | None]:
    """Tick until ``world`` rests (no decision returns a step) or ``ticks`` run out.

    Returns the world and the tick at which it came to rest, or None if it never did.
    """
    for number in range(ticks):
        if is_at_rest(world):
            return world, number
        tick(world, number, crash, check_orphans)
    return world, (ticks if is_at_rest(world) else None)


def is_at_rest(world: World) -> bool:
    """No reconciler has anything left to do and Serve is not about to change an app by itself."""
    in_motion = (AppStatus.DEPLOYING, AppStatus.UNHEALTHY, AppStatus.DELETING)
    if any(app.status in in_motion for app in world.apps.values()):
        return False
    if world.gateway_phase is not None and decide_gateway(world.gateway_state, observe_gateway(world)):
        return False
    return not any(
        decide_environment(record.state, observe_environment(world, name))
        for name, record in world.environments.items()
    )
