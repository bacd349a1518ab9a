"""The lifecycle decisions: from a desired state and an observation, the steps that move things on.

``decide_gateway`` and ``decide_environment`` are pure and total: every (desired, observation) pair
gets an answer, and only transitions the table allows. A reconciler applies the returned steps in
order and stops at the first error; because every step is idempotent and each decision re-derives
what is left from what it observes, a crash between any two steps is repaired by the next tick.

Rules, in priority order. Deletion wins: once a resource is Deleting or Deleted, or its desired state
is Deleted, it is torn down whatever else is asked. A gateway is provisioned while Creating (database,
then the three environment records, then Created); it starts or stops by setting its environments'
desired state and waiting for all of them to settle, and it is torn down bottom-up so nothing is
orphaned: environments (and their apps, including any app that outlived its record) first, then the
database, then the environment records, then its own record. An environment deploys its Serve app while Starting, deletes it while Stopping or
Deleting, and heals a Started environment whose app disappeared by starting it again; an app that
fails, turns unhealthy, fits no node of the cluster (``Unschedulable``) or waits for room on one
(``InsufficientCapacity``) raises a Failed condition naming why. A placement condition clears as soon
as the driver stops reporting it (the replicas found a node), not only once the app runs.
"""

from __future__ import annotations

from imprun.domain.conditions import FailureReason
from imprun.domain.observations import AppStatus, EnvironmentObservation, GatewayObservation
from imprun.domain.phases import SETTLED_PHASE, DesiredState, Phase, stuck_after
from imprun.domain.steps import (
    ClearFailed,
    CreateDatabase,
    CreateEnvironments,
    DeleteApp,
    DeleteApps,
    DeleteEnvironmentRecords,
    DeleteGatewayRecord,
    DeployApp,
    DropDatabase,
    EnvironmentStep,
    GatewayStep,
    MarkFailed,
    SetEnvironmentsDesired,
    Transition,
    WaitApp,
    WaitEnvironments,
)

_TEARDOWN_PHASES = (Phase.DELETING, Phase.DELETED)
_HEADING_FOR: dict[DesiredState, Phase] = {
    DesiredState.RUNNING: Phase.STARTING,
    DesiredState.STOPPED: Phase.STOPPING,
}


# --- gateway ---------------------------------------------------------------------------------------


def decide_gateway(desired: DesiredState, observed: GatewayObservation) -> list[GatewayStep]:
    phase = observed.phase
    if phase in _TEARDOWN_PHASES:
        return _tear_down_gateway(observed)
    if desired is DesiredState.DELETED:
        return [Transition(Phase.DELETING)]

    provisioning = _provisioning_steps(desired, observed)
    heading_for = _HEADING_FOR[desired]
    settled = SETTLED_PHASE[desired]
    if phase is Phase.CREATING:
        return [*provisioning, Transition(Phase.CREATED)]
    if phase is Phase.CREATED:
        return [*provisioning, Transition(heading_for)]
    if phase is heading_for:
        return [*provisioning, *_settle_environments(desired, observed)]
    if phase is settled:
        # At rest: repair what went missing (environments heal themselves); once nothing is wrong,
        # a Failed condition left from before has no cause any more.
        if provisioning or any(environment.failed for environment in observed.environments):
            return provisioning
        return [*_clear_failure(observed.failure_reason)]
    # Starting/Started while Stopped is wanted, or Stopping/Stopped while Running is wanted.
    return [Transition(heading_for)]


def _provisioning_steps(desired: DesiredState, observed: GatewayObservation) -> list[GatewayStep]:
    steps: list[GatewayStep] = []
    if not observed.database_exists:
        steps.append(CreateDatabase())
    if observed.missing_environments:
        steps.append(CreateEnvironments(names=observed.missing_environments, state=desired))
    return steps


def _settle_environments(desired: DesiredState, observed: GatewayObservation) -> list[GatewayStep]:
    """Starting or Stopping: point every environment at ``desired`` and wait until all have settled."""
    target = SETTLED_PHASE[desired]
    all_settled = not observed.missing_environments and all(
        environment.state is desired and environment.phase is target for environment in observed.environments
    )
    if all_settled:
        return [*_clear_failure(observed.failure_reason), Transition(target)]
    steps: list[GatewayStep] = []
    if any(environment.state is not desired for environment in observed.environments):
        steps.append(SetEnvironmentsDesired(desired))
    steps.extend(_waiting_failure(observed, target))
    steps.append(WaitEnvironments(target))
    return steps


def _tear_down_gateway(observed: GatewayObservation) -> list[GatewayStep]:
    """Environments (and their apps) first, then the database, the environment records, the gateway."""
    if any(environment.phase is not Phase.DELETED for environment in observed.environments):
        steps: list[GatewayStep] = []
        if any(environment.state is not DesiredState.DELETED for environment in observed.environments):
            steps.append(SetEnvironmentsDesired(DesiredState.DELETED))
        steps.extend(_waiting_failure(observed, Phase.DELETED))
        steps.append(WaitEnvironments(Phase.DELETED))
        return steps
    if observed.apps_present:
        # Every environment says Deleted, yet an app is still there (or has no record at all):
        # remove it before the database and the records that would let anyone find it again.
        return [DeleteApps(observed.apps_present), WaitEnvironments(Phase.DELETED)]
    steps = []
    if observed.database_exists:
        steps.append(DropDatabase())
    if observed.environments:
        steps.append(DeleteEnvironmentRecords())
    if observed.phase is Phase.DELETING:
        steps.append(Transition(Phase.DELETED))
    steps.append(DeleteGatewayRecord())
    return steps


def _waiting_failure(observed: GatewayObservation, target: Phase) -> list[GatewayStep]:
    """While waiting on environments: say which failed, or that the gateway is stuck."""
    failed = [environment for environment in observed.environments if environment.failed]
    if failed:
        if observed.failure_reason == FailureReason.ENVIRONMENT_FAILED:
            return []
        names = ", ".join(
            f"{environment.name} ({environment.failure_reason})"
            if environment.failure_reason
            else environment.name
            for environment in failed
        )
        return [
            MarkFailed(
                FailureReason.ENVIRONMENT_FAILED.value,
                f"Environment(s) {names} failed while the gateway waits for them to be {target.value}; "
                "see their conditions for the cause.",
            )
        ]
    return [*_stuck_failure(observed.phase, observed.stuck, observed.failure_reason)]


# --- environment -----------------------------------------------------------------------------------


def decide_environment(desired: DesiredState, observed: EnvironmentObservation) -> list[EnvironmentStep]:
    phase = observed.phase
    if phase is Phase.DELETED:
        # The record only waits for the gateway to remove it; make sure no app outlives it.
        return [DeleteApp()] if _app_needs_deleting(observed.app_status) else []
    if phase is Phase.DELETING:
        return _remove_app_then(Phase.DELETED, observed)
    if desired is DesiredState.DELETED:
        return [Transition(Phase.DELETING)]

    heading_for = _HEADING_FOR[desired]
    if phase is Phase.CREATING:
        return [Transition(Phase.CREATED)]
    if phase is Phase.CREATED:
        return [Transition(heading_for)]
    if desired is DesiredState.RUNNING:
        if phase is Phase.STARTING:
            return _bring_app_up(observed)
        if phase is Phase.STARTED:
            return _keep_app_up(observed)
        return [Transition(Phase.STARTING)]
    if phase is Phase.STOPPING:
        return _remove_app_then(Phase.STOPPED, observed)
    if phase is Phase.STOPPED:
        return _keep_app_down(observed)
    return [Transition(Phase.STOPPING)]


def _bring_app_up(observed: EnvironmentObservation) -> list[EnvironmentStep]:
    status = observed.app_status
    if status is AppStatus.RUNNING and observed.app_up_to_date:
        return [*_clear_failure(observed.failure_reason), Transition(Phase.STARTED)]
    steps: list[EnvironmentStep] = []
    if status is AppStatus.DEPLOY_FAILED:
        steps.extend(_app_failure(FailureReason.DEPLOY_FAILED, observed))
    elif status is AppStatus.UNHEALTHY:
        steps.extend(_app_failure(FailureReason.APP_UNHEALTHY, observed))
    elif status in _PLACEMENT_FAILURES:
        steps.extend(_app_failure(_PLACEMENT_FAILURES[status], observed))
    elif observed.failure_reason in _PLACEMENT_REASONS:
        steps.append(ClearFailed())  # placed now; a later Stuck deadline still counts from the phase
    else:
        steps.extend(_stuck_failure(observed.phase, observed.stuck, observed.failure_reason))
    if _app_needs_deploying(observed):
        steps.append(DeployApp())
    steps.append(WaitApp())
    return steps


def _keep_app_up(observed: EnvironmentObservation) -> list[EnvironmentStep]:
    status = observed.app_status
    if status in (AppStatus.MISSING, AppStatus.DEPLOY_FAILED, AppStatus.DELETING):
        # The app is gone or going (cluster restart, a failed update): start it again.
        return [Transition(Phase.STARTING)]
    steps: list[EnvironmentStep] = []
    if status is AppStatus.UNHEALTHY:
        steps.extend(_app_failure(FailureReason.APP_UNHEALTHY, observed))
    elif status in _PLACEMENT_FAILURES:
        # Nothing to redeploy (unless the bundle changed): the cluster lacks a node that fits a
        # replica, or room on one; Serve places it as soon as there is, and the condition clears.
        steps.extend(_app_failure(_PLACEMENT_FAILURES[status], observed))
    elif status is AppStatus.RUNNING or observed.failure_reason in _PLACEMENT_REASONS:
        steps.extend(_clear_failure(observed.failure_reason))
    if _app_needs_deploying(observed):
        steps.append(DeployApp())
    return steps


def _keep_app_down(observed: EnvironmentObservation) -> list[EnvironmentStep]:
    if _app_needs_deleting(observed.app_status):
        return [DeleteApp()]
    if observed.app_status is AppStatus.MISSING:
        return [*_clear_failure(observed.failure_reason)]
    return []


def _remove_app_then(settled: Phase, observed: EnvironmentObservation) -> list[EnvironmentStep]:
    if observed.app_status is AppStatus.MISSING:
        return [*_clear_failure(observed.failure_reason), Transition(settled)]
    steps: list[EnvironmentStep] = [*_stuck_failure(observed.phase, observed.stuck, observed.failure_reason)]
    if _app_needs_deleting(observed.app_status):
        steps.append(DeleteApp())
    steps.append(WaitApp())
    return steps


def _app_needs_deploying(observed: EnvironmentObservation) -> bool:
    status = observed.app_status
    if status in (AppStatus.MISSING, AppStatus.DEPLOY_FAILED):
        return True
    if status is AppStatus.DELETING:
        return False  # Serve cannot deploy over an app it is deleting; wait until it is gone.
    return not observed.app_up_to_date


def _app_needs_deleting(status: AppStatus) -> bool:
    return status not in (AppStatus.MISSING, AppStatus.DELETING)


_PLACEMENT_FAILURES: dict[AppStatus, FailureReason] = {
    AppStatus.UNSCHEDULABLE: FailureReason.UNSCHEDULABLE,
    AppStatus.INSUFFICIENT_CAPACITY: FailureReason.INSUFFICIENT_CAPACITY,
}
_PLACEMENT_REASONS = frozenset(reason.value for reason in _PLACEMENT_FAILURES.values())

_KEEPS_RETRYING = "The platform keeps retrying."
_FAILURE_WORDING: dict[FailureReason, tuple[str, str]] = {
    FailureReason.DEPLOY_FAILED: ("The Serve app failed to deploy", _KEEPS_RETRYING),
    FailureReason.APP_UNHEALTHY: ("The Serve app is unhealthy", _KEEPS_RETRYING),
    FailureReason.UNSCHEDULABLE: ("The Serve app cannot be scheduled", _KEEPS_RETRYING),
    FailureReason.INSUFFICIENT_CAPACITY: (
        "The cluster has no room for the Serve app now",
        "It starts by itself once room frees (stop or delete another environment, or add a node).",
    ),
}


def _app_failure(reason: FailureReason, observed: EnvironmentObservation) -> list[EnvironmentStep]:
    if observed.failure_reason == reason:
        return []
    what, then = _FAILURE_WORDING[reason]
    detail = f": {observed.app_message.removesuffix('.')}" if observed.app_message else ""
    return [MarkFailed(reason.value, f"{what}{detail}. {then}")]


# --- shared ----------------------------------------------------------------------------------------


def _clear_failure(failure_reason: str | None) -> list[ClearFailed]:
    return [] if failure_reason is None else [ClearFailed()]


def _stuck_failure(phase: Phase, stuck: bool, failure_reason: str | None) -> list[MarkFailed]:
    """A Failed(Stuck) condition, unless not stuck or already failed for a more specific reason."""
    if not stuck or failure_reason is not None:
        return []
    return [
        MarkFailed(
            FailureReason.STUCK.value,
            f"Still {phase.value} after {stuck_after(phase):.0f} s; the platform keeps trying. "
            "Check the environments' conditions and the cluster.",
        )
    ]
