"""The steps ``decide_gateway`` and ``decide_environment`` return for a reconciler to apply, in order.

Each step is a small frozen value naming one idempotent action: applying it twice has the effect of
applying it once, and applying it when its effect is already there does nothing. That is what lets a
reconciler crash between any two steps and the next tick repair the rest. ``Transition`` is applied
through the guarded transition function (compare-and-set on ``{_id, phase}``, event recorded); a lost
compare-and-set simply ends the tick. ``WaitApp`` and ``WaitEnvironments`` do nothing: they mean
"not there yet, look again next tick" and always come last.
"""

from __future__ import annotations

from dataclasses import dataclass

from imprun.domain.naming import EnvironmentName
from imprun.domain.phases import DesiredState, Phase


@dataclass(frozen=True, slots=True)
class Transition:
    """Move the resource from the observed phase to ``to`` (compare-and-set; records an event)."""

    to: Phase


@dataclass(frozen=True, slots=True)
class MarkFailed:
    """Set (or update) the resource's Failed condition; keeps ``since`` if it was already failed."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ClearFailed:
    """Remove the resource's Failed condition, if any."""


# --- gateway steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateDatabase:
    """Create ``gatewayid_<gw>`` with ``__published_functions`` and ``__consumers`` and their indexes."""


@dataclass(frozen=True, slots=True)
class CreateEnvironments:
    """Insert the named environment records (phase Creating, desired ``state``) unless they exist."""

    names: tuple[EnvironmentName, ...]
    state: DesiredState


@dataclass(frozen=True, slots=True)
class SetEnvironmentsDesired:
    """Set the desired state of all the gateway's environment records (never un-deleting one)."""

    state: DesiredState


@dataclass(frozen=True, slots=True)
class WaitEnvironments:
    """Nothing to do until every environment reaches ``target_phase``; look again next tick."""

    target_phase: Phase


@dataclass(frozen=True, slots=True)
class DeleteApps:
    """Delete the Serve apps of the named environments during teardown (missing apps are fine)."""

    names: tuple[EnvironmentName, ...]


@dataclass(frozen=True, slots=True)
class DropDatabase:
    """Drop ``gatewayid_<gw>`` (a missing database is fine)."""


@dataclass(frozen=True, slots=True)
class DeleteEnvironmentRecords:
    """Delete all the gateway's environment records (none left is fine)."""


@dataclass(frozen=True, slots=True)
class DeleteGatewayRecord:
    """Delete the gateway record itself: the gateway is gone. Always the very last step."""


# --- environment steps -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeployApp:
    """Deploy (or redeploy with the current bundle) the Serve app ``<gw>-<env>``."""


@dataclass(frozen=True, slots=True)
class DeleteApp:
    """Delete the Serve app ``<gw>-<env>`` (a missing or already deleting app is fine)."""


@dataclass(frozen=True, slots=True)
class WaitApp:
    """Nothing to do until the Serve app settles; look again next tick."""


GatewayStep = (
    Transition
    | MarkFailed
    | ClearFailed
    | CreateDatabase
    | CreateEnvironments
    | SetEnvironmentsDesired
    | WaitEnvironments
    | DeleteApps
    | DropDatabase
    | DeleteEnvironmentRecords
    | DeleteGatewayRecord
)
EnvironmentStep = Transition | MarkFailed | ClearFailed | DeployApp | DeleteApp | WaitApp

WAIT_STEPS = (WaitApp, WaitEnvironments)
"""Step types that only mean "look again next tick"."""
