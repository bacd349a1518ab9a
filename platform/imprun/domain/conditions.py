"""Conditions: the small, typed facts about a resource that the API shows next to its phase.

A phase says how far the reconciler got; a condition says why it is not further. The reconcilers set a
``Failed`` condition (reason ``DeployFailed``, ``AppUnhealthy``, ``Unschedulable`` — no node could ever
hold a replica —, ``InsufficientCapacity`` — a replica waits for room to free —, ``Stuck``, …) when
an environment's app cannot be deployed or placed, or a phase lasts past its deadline, and clear it
once things work again, so a user reading ``GET /gateways/{id}`` sees what went wrong without
reading logs. Conditions are kept as an immutable tuple with at most one entry per type;
``set_condition`` keeps the original ``since`` while the status does not change, so re-applying the
same step every tick does not reset the clock.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, Field

from imprun.domain._model import DomainModel


class ConditionType(StrEnum):
    READY = "Ready"
    FAILED = "Failed"


class FailureReason(StrEnum):
    """Machine-readable reasons for a ``Failed`` condition raised by the lifecycle."""

    DEPLOY_FAILED = "DeployFailed"
    APP_UNHEALTHY = "AppUnhealthy"
    UNSCHEDULABLE = "Unschedulable"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    ENVIRONMENT_FAILED = "EnvironmentFailed"
    STUCK = "Stuck"


PERMANENT_FAILURE = "StepFailedPermanently"
"""Reason of the Failed condition a step that can never work (``Invalid``) leaves at once."""


class Condition(DomainModel):
    type: ConditionType
    status: bool
    reason: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=2000)
    since: AwareDatetime

    @classmethod
    def failed(cls, reason: str, message: str, now: datetime) -> Condition:
        return cls(type=ConditionType.FAILED, status=True, reason=reason, message=message, since=now)


def find_condition(conditions: tuple[Condition, ...], type_: ConditionType) -> Condition | None:
    return next((condition for condition in conditions if condition.type is type_), None)


def is_failed(conditions: tuple[Condition, ...]) -> bool:
    failed = find_condition(conditions, ConditionType.FAILED)
    return failed is not None and failed.status


def set_condition(conditions: tuple[Condition, ...], new: Condition) -> tuple[Condition, ...]:
    """Replace the condition of ``new.type``; keep its ``since`` when the status is unchanged."""
    current = find_condition(conditions, new.type)
    if current is not None and current.status == new.status:
        new = new.model_copy(update={"since": current.since})
    others = tuple(condition for condition in conditions if condition.type is not new.type)
    return (*others, new)


def remove_condition(conditions: tuple[Condition, ...], type_: ConditionType) -> tuple[Condition, ...]:
    return tuple(condition for condition in conditions if condition.type is not type_)
