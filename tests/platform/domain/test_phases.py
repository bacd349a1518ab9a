"""The transition table's shape (reachability, one-way deletion), its guard, and the stuck deadlines."""

from __future__ import annotations

import itertools
import math
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain import (
    ALLOWED_TRANSITIONS,
    SETTLED_PHASE,
    TRANSIENT_PHASES,
    DesiredState,
    Phase,
    check_transition,
    is_stuck,
    is_transition_allowed,
    needs_reconcile,
    stuck_after,
)
from imprun.errors import Conflict

ALL_PAIRS = list(itertools.product(Phase, Phase))


def reachable_from(start: Phase) -> set[Phase]:
    seen = {start}
    queue = deque([start])
    while queue:
        for following in ALLOWED_TRANSITIONS[queue.popleft()]:
            if following not in seen:
                seen.add(following)
                queue.append(following)
    return seen


def test_every_phase_has_a_row() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(Phase)


@pytest.mark.parametrize(
    ("from_", "to"),
    [
        (Phase.CREATING, Phase.CREATED),
        (Phase.CREATED, Phase.STARTING),
        (Phase.STARTING, Phase.STARTED),
        (Phase.STARTED, Phase.STOPPING),
        (Phase.STOPPING, Phase.STOPPED),
        (Phase.STOPPED, Phase.STARTING),
        (Phase.DELETING, Phase.DELETED),
        (Phase.CREATING, Phase.DELETING),
        (Phase.STARTING, Phase.STOPPING),
        (Phase.STOPPING, Phase.STARTING),
        (Phase.STARTED, Phase.STARTING),
    ],
)
def test_lifecycle_moves_from_the_issue_are_allowed(from_: Phase, to: Phase) -> None:
    assert is_transition_allowed(from_, to)
    check_transition(from_, to)


@pytest.mark.parametrize(
    ("from_", "to"),
    [
        (Phase.CREATING, Phase.STARTED),
        (Phase.CREATING, Phase.STARTING),
        (Phase.CREATED, Phase.CREATING),
        (Phase.STARTED, Phase.CREATED),
        (Phase.STARTED, Phase.STOPPED),
        (Phase.STOPPED, Phase.STARTED),
        (Phase.STOPPED, Phase.STOPPING),
        (Phase.DELETING, Phase.STARTING),
        (Phase.DELETING, Phase.STOPPED),
        (Phase.DELETED, Phase.CREATING),
        (Phase.DELETED, Phase.DELETING),
    ],
)
def test_shortcuts_and_resurrections_are_forbidden(from_: Phase, to: Phase) -> None:
    assert not is_transition_allowed(from_, to)
    with pytest.raises(Conflict):
        check_transition(from_, to)


@pytest.mark.parametrize("phase", list(Phase))
def test_no_phase_moves_to_itself(phase: Phase) -> None:
    assert not is_transition_allowed(phase, phase)


LIVE_PHASES = [phase for phase in Phase if phase not in (Phase.DELETING, Phase.DELETED)]


@pytest.mark.parametrize("phase", LIVE_PHASES)
def test_every_live_phase_can_be_deleted_directly(phase: Phase) -> None:
    assert is_transition_allowed(phase, Phase.DELETING)


def test_deletion_is_one_way() -> None:
    assert ALLOWED_TRANSITIONS[Phase.DELETING] == {Phase.DELETED}
    assert ALLOWED_TRANSITIONS[Phase.DELETED] == frozenset()
    assert reachable_from(Phase.DELETING) == {Phase.DELETING, Phase.DELETED}


def test_every_phase_is_reachable_from_creating() -> None:
    assert reachable_from(Phase.CREATING) == set(Phase)


@pytest.mark.parametrize("phase", LIVE_PHASES)
def test_a_live_resource_can_always_reach_started_stopped_and_deleted(phase: Phase) -> None:
    assert {Phase.STARTED, Phase.STOPPED, Phase.DELETED} <= reachable_from(phase)


@pytest.mark.parametrize(("from_", "to"), ALL_PAIRS)
def test_check_transition_agrees_with_is_transition_allowed(from_: Phase, to: Phase) -> None:
    if is_transition_allowed(from_, to):
        check_transition(from_, to)
    else:
        with pytest.raises(Conflict) as raised:
            check_transition(from_, to)
        assert from_.value in raised.value.message
        assert to.value in raised.value.message
        assert raised.value.status == 409
        assert raised.value.details["allowed"] == sorted(p.value for p in ALLOWED_TRANSITIONS[from_])


def test_conflict_message_says_where_the_phase_may_go() -> None:
    with pytest.raises(
        Conflict, match=r"Creating to phase Started: from Creating it may only move to Created"
    ):
        check_transition(Phase.CREATING, Phase.STARTED)
    with pytest.raises(Conflict, match="Deleted is final"):
        check_transition(Phase.DELETED, Phase.STARTING)


def test_the_table_cannot_be_edited_at_runtime() -> None:
    with pytest.raises(TypeError):
        ALLOWED_TRANSITIONS[Phase.DELETED] = frozenset({Phase.CREATING})  # type: ignore[index]


def test_enums_are_plain_strings_on_the_wire() -> None:
    assert isinstance(Phase.STARTED, str)
    assert str(Phase.STARTED) == "Started"
    assert DesiredState("Deleted") is DesiredState.DELETED
    assert [phase.value for phase in Phase] == [
        "Creating",
        "Created",
        "Starting",
        "Started",
        "Stopping",
        "Stopped",
        "Deleting",
        "Deleted",
    ]


@pytest.mark.parametrize("desired", list(DesiredState))
def test_settled_phase_is_a_resting_phase_reachable_by_the_matching_transient_phase(
    desired: DesiredState,
) -> None:
    settled = SETTLED_PHASE[desired]
    assert settled not in TRANSIENT_PHASES
    assert any(is_transition_allowed(transient, settled) for transient in TRANSIENT_PHASES)


@pytest.mark.parametrize(("desired", "phase"), list(itertools.product(DesiredState, Phase)))
def test_needs_reconcile_is_false_only_in_the_settled_phase(desired: DesiredState, phase: Phase) -> None:
    assert needs_reconcile(desired, phase) is (phase is not SETTLED_PHASE[desired])


@pytest.mark.parametrize("phase", list(Phase))
def test_only_transient_phases_have_a_finite_deadline(phase: Phase) -> None:
    deadline = stuck_after(phase)
    if phase in TRANSIENT_PHASES:
        assert 0 < deadline < math.inf
    else:
        assert deadline == math.inf


def test_starting_may_take_longer_than_creating() -> None:
    assert stuck_after(Phase.STARTING) > stuck_after(Phase.CREATING)


def test_is_stuck_only_strictly_after_the_deadline() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_stuck(since, since, 60)
    assert not is_stuck(since, since + timedelta(seconds=60), 60)
    assert is_stuck(since, since + timedelta(seconds=60.001), 60)
    assert not is_stuck(since, since - timedelta(seconds=5), 60)


def test_is_stuck_never_for_an_infinite_deadline() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_stuck(since, since + timedelta(days=10_000), stuck_after(Phase.STARTED))
