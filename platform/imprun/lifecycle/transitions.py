"""The one guarded transition function every phase change goes through, from the API or a reconciler.

``transition`` checks the domain's transition table and compare-and-sets ``{_id, phase}`` in the store
with its event in the same document write (the store then copies the event to the log; a crash in
between leaves it pending on the resource, copied at the next claim). A lost compare-and-set (someone
else moved the resource first, or the caller's lease was taken over) raises ``Conflict`` and writes
nothing, so the event log holds every transition that happened and only those.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from imprun.domain.environment import Environment
from imprun.domain.phases import Phase
from imprun.domain.resource import LifecycleResource
from imprun.errors import Conflict
from imprun.store.events import Event
from imprun.store.lifecycle import Lease, LifecycleRepository, environment_key

R = TypeVar("R", bound=LifecycleResource)


def resource_ref(resource: LifecycleResource) -> tuple[str, str, str]:
    """``(gateway id, kind, resource id)`` of a gateway or environment, for events."""
    if isinstance(resource, Environment):
        return resource.gateway_id, "environment", environment_key(resource.gateway_id, resource.name)
    gateway_id = str(getattr(resource, "gateway_id"))  # noqa: B009 - both kinds carry it
    return gateway_id, "gateway", gateway_id


def transition(
    repo: LifecycleRepository[R],
    resource: R,
    to: Phase,
    *,
    actor: str,
    now: datetime,
    message: str = "",
    lease: Lease | None = None,
) -> R:
    moved = resource.moved_to(to, now)
    gateway_id, kind, ref = resource_ref(resource)
    event = Event(
        gateway_id=gateway_id,
        kind=kind,
        resource=ref,
        type="Normal",
        reason="Transition",
        message=message or f"{resource.phase.value} → {to.value}",
        at=now,
        actor=actor,
        from_phase=resource.phase.value,
        to_phase=to.value,
    )
    if not repo.compare_and_set_phase(moved, expected_phase=resource.phase, lease=lease, event=event):
        raise Conflict(
            f"the resource left phase {resource.phase.value} before it could move to {to.value} "
            "(or its lease was taken over); reload it and retry"
        )
    return moved
