"""``unplaced_pods``: why a RayService's pods wait for a node, read from the scheduler's conditions."""

from __future__ import annotations

from typing import Any

from imprun.drivers.cluster import AppStatus
from imprun.drivers.kuberay_status import unplaced_pods

SHORT = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No victims."
NOWHERE = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def pod(name: str, *, phase: str = "Pending", scheduled: dict[str, Any] | None = None) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", **scheduled}] if scheduled else []
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"resources": {"requests": {"memory": "1280Mi", "cpu": "500m"}}}]},
        "status": {"phase": phase, "conditions": conditions},
    }


def unschedulable(message: str) -> dict[str, Any]:
    return {"status": "False", "reason": "Unschedulable", "message": message}


def test_a_pod_short_of_room_is_insufficient_capacity_with_its_requests_and_the_schedulers_words() -> None:
    observed = unplaced_pods([pod("head", phase="Running"), pod("worker-0", scheduled=unschedulable(SHORT))])
    assert observed is not None and observed.status is AppStatus.INSUFFICIENT_CAPACITY
    assert (
        observed.message == f"pod worker-0 (requests {{cpu: 500m, memory: 1280Mi}}) is not scheduled: {SHORT}"
    )


def test_a_pod_no_node_matches_is_unschedulable() -> None:
    observed = unplaced_pods([pod("worker-0", scheduled=unschedulable(NOWHERE))])
    assert observed is not None and observed.status is AppStatus.UNSCHEDULABLE
    assert observed.message.endswith(NOWHERE)


def test_one_pod_short_of_room_among_others_that_match_nothing_may_still_get_room() -> None:
    pods = [
        pod("worker-0", scheduled=unschedulable(NOWHERE)),
        pod("worker-1", scheduled=unschedulable(SHORT)),
    ]
    observed = unplaced_pods(pods)
    assert observed is not None and observed.status is AppStatus.INSUFFICIENT_CAPACITY
    assert "pod worker-0" in observed.message and "pod worker-1" in observed.message


def test_pods_placed_or_not_yet_considered_say_nothing() -> None:
    assert unplaced_pods([]) is None
    assert unplaced_pods([pod("worker-0")]) is None, (
        "Pending without a verdict: the scheduler has not looked yet"
    )
    assert unplaced_pods([pod("worker-0", scheduled={"status": "True"})]) is None
    assert (
        unplaced_pods([pod("worker-0", scheduled={"status": "False", "reason": "SchedulingGated"})]) is None
    )
    assert unplaced_pods([pod("worker-0", phase="Running", scheduled=unschedulable(SHORT))]) is None
