"""``decide_tier``: when the environment reconciler hands an environment between the shared runtime and
its dedicated application. Pure, so the table below needs no store, cluster or clock.

The rule under test: what the environment leaves is removed only once what it moves to serves it, so
a move drops no call; an environment that is not running has both tiers' left-overs removed.
"""

from __future__ import annotations

import itertools

import pytest

from imprun.domain.gateway import Tier
from imprun.domain.observations import AppStatus
from imprun.lifecycle.environments import (
    ClearSharedPlacement,
    RemoveDedicatedApp,
    TierStep,
    decide_tier,
    serving_tier,
)

RUNNING, STOPPED = True, False
PLACED, NOT_PLACED = True, False
UP_TO_DATE, OUTDATED = True, False
REMOVE = [RemoveDedicatedApp()]
CLEAR = [ClearSharedPlacement()]
NOTHING: list[TierStep] = []
NOT_RUNNING_STATUSES = [status for status in AppStatus if status is not AppStatus.RUNNING]


@pytest.mark.parametrize(
    ("running", "placed", "dedicated", "shared", "expected"),
    [
        # the shared runtime serves it: the dedicated application goes, whatever its state
        (RUNNING, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, REMOVE),
        (RUNNING, PLACED, AppStatus.DEPLOYING, AppStatus.RUNNING, REMOVE),
        (RUNNING, PLACED, AppStatus.UNHEALTHY, AppStatus.RUNNING, REMOVE),
        (RUNNING, PLACED, AppStatus.DEPLOY_FAILED, AppStatus.RUNNING, REMOVE),
        (RUNNING, PLACED, AppStatus.UNSCHEDULABLE, AppStatus.RUNNING, REMOVE),
        (RUNNING, PLACED, AppStatus.INSUFFICIENT_CAPACITY, AppStatus.RUNNING, REMOVE),
        # not served by the shared runtime yet: the dedicated application keeps serving
        (RUNNING, NOT_PLACED, AppStatus.RUNNING, AppStatus.RUNNING, NOTHING),
        (RUNNING, PLACED, AppStatus.RUNNING, AppStatus.MISSING, NOTHING),
        (RUNNING, PLACED, AppStatus.RUNNING, AppStatus.DEPLOYING, NOTHING),
        (RUNNING, PLACED, AppStatus.RUNNING, AppStatus.UNHEALTHY, NOTHING),
        (RUNNING, PLACED, AppStatus.RUNNING, AppStatus.DEPLOY_FAILED, NOTHING),
        (RUNNING, NOT_PLACED, AppStatus.RUNNING, AppStatus.MISSING, NOTHING),
        # nothing left to remove
        (RUNNING, PLACED, AppStatus.MISSING, AppStatus.RUNNING, NOTHING),
        (RUNNING, PLACED, AppStatus.DELETING, AppStatus.RUNNING, NOTHING),
        (RUNNING, NOT_PLACED, AppStatus.MISSING, AppStatus.MISSING, NOTHING),
        # not running: whatever is left of the dedicated application goes, served or not
        (STOPPED, NOT_PLACED, AppStatus.RUNNING, AppStatus.MISSING, REMOVE),
        (STOPPED, NOT_PLACED, AppStatus.UNHEALTHY, AppStatus.DEPLOYING, REMOVE),
        (STOPPED, PLACED, AppStatus.DEPLOYING, AppStatus.RUNNING, REMOVE),
        (STOPPED, NOT_PLACED, AppStatus.MISSING, AppStatus.MISSING, NOTHING),
        (STOPPED, NOT_PLACED, AppStatus.DELETING, AppStatus.MISSING, NOTHING),
    ],
)
def test_shared_tier_removes_the_dedicated_app_once_the_shared_runtime_serves_it(
    running: bool, placed: bool, dedicated: AppStatus, shared: AppStatus, expected: list[TierStep]
) -> None:
    for up_to_date in (UP_TO_DATE, OUTDATED):  # the dedicated spec plays no part on the shared tier
        assert decide_tier(Tier.SHARED, running, placed, dedicated, shared, up_to_date) == expected


@pytest.mark.parametrize(
    ("running", "placed", "dedicated", "up_to_date", "expected"),
    [
        # the dedicated application serves the current spec: the shared runtime lets go
        (RUNNING, PLACED, AppStatus.RUNNING, UP_TO_DATE, CLEAR),
        # not serving (or serving an older spec) yet: the shared runtime keeps serving
        (RUNNING, PLACED, AppStatus.RUNNING, OUTDATED, NOTHING),
        (RUNNING, PLACED, AppStatus.MISSING, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.DEPLOYING, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.UNHEALTHY, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.DEPLOY_FAILED, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.UNSCHEDULABLE, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.INSUFFICIENT_CAPACITY, UP_TO_DATE, NOTHING),
        (RUNNING, PLACED, AppStatus.DELETING, UP_TO_DATE, NOTHING),
        # not placed on the shared runtime: nothing to clear
        (RUNNING, NOT_PLACED, AppStatus.RUNNING, UP_TO_DATE, NOTHING),
        (RUNNING, NOT_PLACED, AppStatus.DEPLOYING, OUTDATED, NOTHING),
        # not running: a placement left over is cleared, served or not
        (STOPPED, PLACED, AppStatus.MISSING, UP_TO_DATE, CLEAR),
        (STOPPED, PLACED, AppStatus.DELETING, OUTDATED, CLEAR),
        (STOPPED, PLACED, AppStatus.RUNNING, OUTDATED, CLEAR),
        (STOPPED, NOT_PLACED, AppStatus.MISSING, UP_TO_DATE, NOTHING),
    ],
)
def test_dedicated_tier_clears_the_placement_once_the_dedicated_app_serves_it(
    running: bool, placed: bool, dedicated: AppStatus, up_to_date: bool, expected: list[TierStep]
) -> None:
    for shared in AppStatus:  # the shared runtime's status plays no part on the dedicated tier
        assert decide_tier(Tier.DEDICATED, running, placed, dedicated, shared, up_to_date) == expected


EVERY_OBSERVATION = list(
    itertools.product((RUNNING, STOPPED), (PLACED, NOT_PLACED), AppStatus, AppStatus, (UP_TO_DATE, OUTDATED))
)


@pytest.mark.parametrize("tier", list(Tier))
def test_the_never_rules_hold_for_every_observation(tier: Tier) -> None:
    for running, placed, dedicated, shared, up_to_date in EVERY_OBSERVATION:
        steps = decide_tier(tier, running, placed, dedicated, shared, up_to_date)
        seen = (running, placed, dedicated, shared, up_to_date)
        assert len(steps) <= 1, seen
        if RemoveDedicatedApp() in steps:
            assert tier is Tier.SHARED, seen
            assert dedicated not in (AppStatus.MISSING, AppStatus.DELETING), seen
            assert not running or (placed and shared is AppStatus.RUNNING), seen
        if ClearSharedPlacement() in steps:
            assert tier is Tier.DEDICATED, seen
            assert placed, seen
            assert not running or (dedicated is AppStatus.RUNNING and up_to_date), seen


def test_a_move_is_finished_by_each_tier_once_the_other_serves() -> None:
    """Both directions reach a state where exactly one tier is left, and neither removes its old tier
    before the new one runs."""
    # dedicated -> shared: placed, the shared runtime comes up, then the dedicated app goes
    assert decide_tier(Tier.SHARED, RUNNING, PLACED, AppStatus.RUNNING, AppStatus.DEPLOYING, True) == []
    assert decide_tier(Tier.SHARED, RUNNING, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) == REMOVE
    assert decide_tier(Tier.SHARED, RUNNING, PLACED, AppStatus.DELETING, AppStatus.RUNNING, True) == []
    # shared -> dedicated: deployed, running the new spec, then the placement goes
    assert decide_tier(Tier.DEDICATED, RUNNING, PLACED, AppStatus.DEPLOYING, AppStatus.RUNNING, True) == []
    assert decide_tier(Tier.DEDICATED, RUNNING, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) == CLEAR
    assert decide_tier(Tier.DEDICATED, RUNNING, NOT_PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) == []


# --- serving_tier: where the ingress sends the calls (the Serve Service of that tier, on KubeRay) -----


@pytest.mark.parametrize("tier", list(Tier))
def test_the_route_never_leaves_a_serving_tier_for_one_that_does_not_serve(tier: Tier) -> None:
    for running, placed, dedicated, shared, up_to_date in EVERY_OBSERVATION:
        seen = (running, placed, dedicated, shared, up_to_date)
        shared_serves = placed and shared is AppStatus.RUNNING
        dedicated_serves = dedicated is AppStatus.RUNNING and up_to_date
        serving = serving_tier(tier, placed, shared, dedicated, up_to_date)
        if shared_serves or dedicated_serves:  # some tier answers: the route goes to one that does
            assert (serving is Tier.SHARED and shared_serves) or (
                serving is Tier.DEDICATED and dedicated_serves
            ), seen
        else:
            assert serving is tier, seen  # nothing answers yet: the route waits on the wanted tier
        # whatever decide_tier removes in the same pass is never what the route points at
        steps = decide_tier(tier, running, placed, dedicated, shared, up_to_date)
        if running and RemoveDedicatedApp() in steps:
            assert serving is Tier.SHARED, seen
        if running and ClearSharedPlacement() in steps:
            assert serving is Tier.DEDICATED, seen


def test_a_move_switches_the_route_when_the_new_tier_serves() -> None:
    # dedicated -> shared: the dedicated app keeps the calls until the shared runtime serves
    assert serving_tier(Tier.SHARED, NOT_PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) is Tier.DEDICATED
    assert serving_tier(Tier.SHARED, PLACED, AppStatus.DEPLOYING, AppStatus.RUNNING, True) is Tier.DEDICATED
    assert serving_tier(Tier.SHARED, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) is Tier.SHARED
    # shared -> dedicated: the shared runtime keeps them until the new application runs its spec
    assert serving_tier(Tier.DEDICATED, PLACED, AppStatus.RUNNING, AppStatus.DEPLOYING, True) is Tier.SHARED
    assert serving_tier(Tier.DEDICATED, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, False) is Tier.SHARED
    assert serving_tier(Tier.DEDICATED, PLACED, AppStatus.RUNNING, AppStatus.RUNNING, True) is Tier.DEDICATED
