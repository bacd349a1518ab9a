"""What a reconciler observed before deciding: frozen snapshots of a gateway or an environment.

The reconciler gathers these from the store and the cluster driver (is the gateway database there?
which environment records exist, wanting what, in which phase? what does Ray Serve say about the
app?) and hands them to the pure ``decide_*`` functions. ``AppStatus`` is the domain's own reading of
a Serve application's status, so the decision logic never sees a Ray type; the cluster driver maps
Serve's statuses onto it. ``stuck`` is computed by the caller with ``is_stuck`` so deciding needs no
clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from imprun.domain.naming import ENVIRONMENT_NAMES, EnvironmentName
from imprun.domain.phases import DesiredState, Phase


class AppStatus(StrEnum):
    """A Serve application's status as the cluster driver reports it."""

    MISSING = "Missing"
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    UNHEALTHY = "Unhealthy"
    DEPLOY_FAILED = "DeployFailed"
    DELETING = "Deleting"
    UNSCHEDULABLE = "Unschedulable"
    """Deployed, but no node of the cluster can ever hold one of its replicas (see ``placement``)."""
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    """Deployed, but a replica waits for room: a node could hold it, none has enough free now."""

    @property
    def exists(self) -> bool:
        return self is not AppStatus.MISSING


@dataclass(frozen=True, slots=True)
class ObservedEnvironment:
    """One environment record as the gateway reconciler sees it."""

    name: EnvironmentName
    state: DesiredState
    phase: Phase
    failed: bool = False
    failure_reason: str | None = None
    """Reason of its Failed condition (quoted in the gateway's), None when it is not failed."""


@dataclass(frozen=True, slots=True)
class GatewayObservation:
    phase: Phase
    database_exists: bool
    environments: tuple[ObservedEnvironment, ...] = ()
    apps_present: tuple[EnvironmentName, ...] = ()
    """Environments whose Serve app exists in any status (teardown checks none outlives its record)."""
    failure_reason: str | None = None
    """Reason of the gateway's Failed condition; None when it is not failed."""
    stuck: bool = False
    """The gateway has been in its (transient) phase longer than ``stuck_after`` allows."""

    def __post_init__(self) -> None:
        names = [environment.name for environment in self.environments]
        if len(set(names)) != len(names):
            raise ValueError(f"environment records must be unique per name, got {names}")

    @property
    def missing_environments(self) -> tuple[EnvironmentName, ...]:
        present = {environment.name for environment in self.environments}
        return tuple(name for name in ENVIRONMENT_NAMES if name not in present)


@dataclass(frozen=True, slots=True)
class EnvironmentObservation:
    phase: Phase
    app_status: AppStatus
    app_up_to_date: bool = True
    """The deployed app config matches the gateway's current bundle (always True when missing)."""
    app_message: str = ""
    """Serve's (or the driver's) message about the app — why a deploy failed, why no node fits a
    replica — quoted in the Failed condition."""
    failure_reason: str | None = None
    stuck: bool = False
