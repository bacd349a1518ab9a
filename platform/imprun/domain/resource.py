"""The lifecycle half shared by gateway and environment documents: state, phase, conditions, times.

``LifecycleResource`` holds what the reconcilers and the API both read — the desired ``state``, the
observed ``phase`` with the moment it was entered, and the conditions — and the pure copy-on-write
moves on it. ``moved_to`` is the in-memory half of the one guarded transition function: it checks the
transition table and stamps ``phase_since``; the store half compare-and-sets ``{_id, phase}`` and
records the event. ``with_state`` refuses to take back a deletion. Timestamps must be timezone-aware
(read MongoDB with ``tz_aware=True``) so deadlines compare correctly. Nothing here touches a database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime

from imprun.domain._model import DomainModel
from imprun.domain.conditions import (
    Condition,
    ConditionType,
    is_failed,
    remove_condition,
    set_condition,
)
from imprun.domain.phases import (
    DesiredState,
    Phase,
    check_transition,
    is_stuck,
    needs_reconcile,
    stuck_after,
)
from imprun.errors import Conflict


class LifecycleResource(DomainModel):
    state: DesiredState = DesiredState.RUNNING
    phase: Phase = Phase.CREATING
    conditions: tuple[Condition, ...] = ()
    created_at: AwareDatetime
    updated_at: AwareDatetime
    phase_since: AwareDatetime

    @property
    def failed(self) -> bool:
        return is_failed(self.conditions)

    @property
    def needs_reconcile(self) -> bool:
        return needs_reconcile(self.state, self.phase)

    def is_stuck(self, now: datetime) -> bool:
        return is_stuck(self.phase_since, now, stuck_after(self.phase))

    def moved_to(self, phase: Phase, now: datetime) -> Self:
        """A copy in ``phase``; raises ``Conflict`` when the transition table forbids the move."""
        check_transition(self.phase, phase)
        return self.model_copy(update={"phase": phase, "phase_since": now, "updated_at": now})

    def with_state(self, state: DesiredState, now: datetime) -> Self:
        """A copy wanting ``state``; raises ``Conflict`` when asked to undo a requested deletion."""
        deleting = self.state is DesiredState.DELETED or self.phase in (Phase.DELETING, Phase.DELETED)
        if deleting and state is not DesiredState.DELETED:
            raise Conflict(
                f"Cannot set state {state.value}: the resource is being deleted and deletion cannot be "
                "undone. Create a new one instead.",
                details={"state": self.state.value, "phase": self.phase.value, "requested": state.value},
            )
        if state is self.state:
            return self
        return self.model_copy(update={"state": state, "updated_at": now})

    def with_condition(self, condition: Condition, now: datetime) -> Self:
        conditions = set_condition(self.conditions, condition)
        if conditions == self.conditions:
            return self
        return self.model_copy(update={"conditions": conditions, "updated_at": now})

    def without_condition(self, type_: ConditionType, now: datetime) -> Self:
        conditions = remove_condition(self.conditions, type_)
        if conditions == self.conditions:
            return self
        return self.model_copy(update={"conditions": conditions, "updated_at": now})
