"""Desired states, observed phases and the one table of allowed phase transitions.

Gateways and environments carry a desired ``state`` (what the user asked for: Running, Stopped or
Deleted) and an observed ``phase`` (how far the reconciler got). ``ALLOWED_TRANSITIONS`` declares every
legal FROM → TO move; ``check_transition`` is the guard the single transition function in the lifecycle
layer calls before its compare-and-set, so neither the API nor a reconciler can write an illegal phase.
Deletion is one-way: every phase except Deleted may move to Deleting, and nothing leaves Deleting but
Deleted. The module also holds the stuck-phase deadlines the reconcilers use to raise a Failed condition
when a transient phase lasts too long. Pure: no I/O, no clock reads (``now`` is always passed in).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from imprun.errors import Conflict


class DesiredState(StrEnum):
    """What the user asked for. ``Deleted`` is final: once requested it cannot be taken back."""

    RUNNING = "Running"
    STOPPED = "Stopped"
    DELETED = "Deleted"


class Phase(StrEnum):
    """Where the reconciler observed the resource to be."""

    CREATING = "Creating"
    CREATED = "Created"
    STARTING = "Starting"
    STARTED = "Started"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DELETING = "Deleting"
    DELETED = "Deleted"


_P = Phase

ALLOWED_TRANSITIONS: Mapping[Phase, frozenset[Phase]] = MappingProxyType(
    {
        # Provisioning finished (database, records), or the user deleted the gateway mid-creation.
        _P.CREATING: frozenset({_P.CREATED, _P.DELETING}),
        # Provisioned: head for whatever the user wants. Created → Stopping (not → Stopped) keeps one
        # code path that guarantees no app exists before a resource is called Stopped.
        _P.CREATED: frozenset({_P.STARTING, _P.STOPPING, _P.DELETING}),
        # The user may change their mind while a start is in flight.
        _P.STARTING: frozenset({_P.STARTED, _P.STOPPING, _P.DELETING}),
        # Started → Starting is self-healing: the app vanished (e.g. the Ray cluster restarted).
        _P.STARTED: frozenset({_P.STOPPING, _P.STARTING, _P.DELETING}),
        _P.STOPPING: frozenset({_P.STOPPED, _P.STARTING, _P.DELETING}),
        _P.STOPPED: frozenset({_P.STARTING, _P.DELETING}),
        # Deletion cannot be undone.
        _P.DELETING: frozenset({_P.DELETED}),
        _P.DELETED: frozenset(),
    }
)

SETTLED_PHASE: Mapping[DesiredState, Phase] = MappingProxyType(
    {
        DesiredState.RUNNING: Phase.STARTED,
        DesiredState.STOPPED: Phase.STOPPED,
        DesiredState.DELETED: Phase.DELETED,
    }
)
"""The phase in which a resource with a given desired state has nothing left to do."""

TRANSIENT_PHASES: frozenset[Phase] = frozenset(
    {Phase.CREATING, Phase.CREATED, Phase.STARTING, Phase.STOPPING, Phase.DELETING}
)
"""Phases a resource only passes through; a reconciler always has work to do in them."""


def is_transition_allowed(from_: Phase, to: Phase) -> bool:
    return to in ALLOWED_TRANSITIONS[from_]


def check_transition(from_: Phase, to: Phase) -> None:
    """Raise ``Conflict`` unless ``from_ → to`` is in ``ALLOWED_TRANSITIONS``."""
    if is_transition_allowed(from_, to):
        return
    allowed = sorted(phase.value for phase in ALLOWED_TRANSITIONS[from_])
    if allowed:
        hint = (
            f"from {from_.value} it may only move to {', '.join(allowed)}. "
            "Wait for the current operation to finish, then retry."
        )
    else:
        hint = f"{from_.value} is final; create a new resource instead."
    raise Conflict(
        f"Cannot move from phase {from_.value} to phase {to.value}: {hint}",
        details={"from": from_.value, "to": to.value, "allowed": allowed},
    )


def needs_reconcile(desired: DesiredState, phase: Phase) -> bool:
    """True unless the resource already rests in the phase its desired state asks for."""
    return SETTLED_PHASE[desired] is not phase


# Deadlines (seconds) after which a transient phase counts as stuck. Starting covers a cold start of
# the Serve app (≈2.3 s measured) with a wide margin for image pulls and pip installs on KubeRay.
_STUCK_AFTER_SECONDS: Mapping[Phase, float] = MappingProxyType(
    {
        Phase.CREATING: 60.0,
        Phase.CREATED: 60.0,
        Phase.STARTING: 300.0,
        Phase.STOPPING: 120.0,
        Phase.DELETING: 300.0,
    }
)


def stuck_after(phase: Phase) -> float:
    """Seconds a resource may stay in ``phase`` before it counts as stuck; ``inf`` for resting phases."""
    return _STUCK_AFTER_SECONDS.get(phase, math.inf)


def is_stuck(phase_since: datetime, now: datetime, timeout: float) -> bool:
    """True when more than ``timeout`` seconds passed between entering the phase and ``now``."""
    if math.isinf(timeout):
        return False
    return (now - phase_since).total_seconds() > timeout
