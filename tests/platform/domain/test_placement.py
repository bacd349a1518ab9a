"""Custom resources in a bundle, and why a replica has no node (never, or not now), without a cluster."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from imprun.domain.gateway import Bundle
from imprun.domain.observations import AppStatus
from imprun.domain.placement import (
    MAX_CUSTOM_RESOURCES,
    NodeResources,
    check_custom_resources,
    placement_problem,
    replica_request,
    unschedulable_reason,
)

MIB = 1024 * 1024
HEAD = {"CPU": 2.0, "memory": 4096.0 * MIB, "object_store_memory": 1e9}
POOL_NODE = {"CPU": 1.0, "memory": 1024.0 * MIB, "pool_a": 4.0}


def test_valid_custom_resources_come_back_as_floats() -> None:
    assert check_custom_resources({"pool_a": 1, "ssd-fast": 0.5}) == {"pool_a": 1.0, "ssd-fast": 0.5}
    assert check_custom_resources({}) == {}


@pytest.mark.parametrize(
    ("resources", "complaint"),
    [
        ({"": 1}, "must be 1-64 letters"),
        ({"1pool": 1}, "starting with a letter"),
        ({"node:10.0.0.1": 1}, "must be 1-64 letters"),
        ({"x" * 65: 1}, "must be 1-64 letters"),
        ({"CPU": 1}, "built-in resource"),
        ({"memory": 1}, "built-in resource"),
        ({"gpu": 1}, "built-in resource"),
        ({"pool_a": 0}, "between"),
        ({"pool_a": -1}, "between"),
        ({"pool_a": 0.00001}, "between"),
        ({"pool_a": math.inf}, "between"),
        ({"pool_a": math.nan}, "between"),
        ({"pool_a": "1"}, "needs a number"),
        ({"pool_a": True}, "needs a number"),
        ({f"r{i}": 1 for i in range(MAX_CUSTOM_RESOURCES + 1)}, "at most"),
    ],
)
def test_bad_custom_resources_are_refused_with_the_reason(
    resources: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_custom_resources(resources)  # type: ignore[arg-type]


def test_the_bundle_carries_validated_custom_resources_on_the_wire() -> None:
    bundle = Bundle.model_validate({"cpu": 0.25, "memory": 128, "resources": {"pool_a": 2}})
    assert bundle.resources == {"pool_a": 2.0}
    assert bundle.model_dump(mode="json")["resources"] == {"pool_a": 2.0}
    assert Bundle().resources == {}, "no custom resources unless asked for"
    assert "resources" not in Bundle().model_dump(), "documents without any keep their shape"
    with pytest.raises(ValidationError, match="built-in resource"):
        Bundle.model_validate({"resources": {"CPU": 4}})
    with pytest.raises(ValidationError):
        Bundle.model_validate({"resources": {"pool_a": 0}})


def test_a_replica_request_uses_the_clusters_names_and_drops_zero_amounts() -> None:
    assert replica_request(0.5, 256 * MIB, {"pool_a": 1}) == {"CPU": 0.5, "memory": 256 * MIB, "pool_a": 1}
    assert replica_request(0.5, 0, {}) == {"CPU": 0.5}


def test_a_request_some_node_can_hold_is_schedulable_even_if_another_cannot() -> None:
    request = replica_request(0.5, 256 * MIB, {"pool_a": 1})
    assert unschedulable_reason(request, [HEAD, POOL_NODE]) is None
    assert unschedulable_reason(replica_request(2, 0, {}), [HEAD, POOL_NODE]) is None, "totals, not free"


def test_a_custom_resource_no_node_offers_is_named_with_what_the_nodes_have() -> None:
    reason = unschedulable_reason(replica_request(0.5, 256 * MIB, {"pool_b": 1}), [HEAD, POOL_NODE])
    assert reason is not None
    assert reason.startswith("Each replica needs {CPU: 0.5, memory: 256 MiB, pool_b: 1} but no node offers")
    assert (
        "the 2 alive nodes offer {CPU: 2, memory: 4096 MiB, pool_b: 0}; {CPU: 1, memory: 1024 MiB" in reason
    )


def test_too_much_cpu_or_memory_for_every_node_is_unschedulable() -> None:
    assert unschedulable_reason({"CPU": 64.0}, [HEAD, POOL_NODE]) is not None
    assert unschedulable_reason({"memory": 8192.0 * MIB}, [HEAD]) == (
        "Each replica needs {memory: 8192 MiB} but no node offers that; the only alive node offers "
        "{memory: 4096 MiB}. Change the bundle or add a node that has it."
    )


def test_resources_split_across_nodes_do_not_add_up() -> None:
    """A replica lives on one node: CPU on one and the pool on the other is no fit."""
    assert unschedulable_reason({"CPU": 2.0, "pool_a": 1.0}, [HEAD, POOL_NODE]) is not None


def test_no_alive_node_at_all() -> None:
    assert unschedulable_reason({"CPU": 0.1}, []) == (
        "Each replica needs {CPU: 0.1} but no node of the cluster is alive."
    )


def test_the_clusters_fixed_point_rounding_does_not_make_an_exact_fit_fail() -> None:
    assert unschedulable_reason({"CPU": 0.1 + 0.2}, [{"CPU": 0.3}]) is None


# --- placement_problem: why replicas that want a node have none -------------------------------------

ASK = {"CPU": 0.5, "memory": 256.0 * MIB}


def busy(total: dict[str, float], **free: float) -> NodeResources:
    """A node with ``total`` resources of which only ``free`` (by name; the rest 0) is free now."""
    return NodeResources(total, {name: free.get(name, 0.0) for name in total})


def test_a_request_no_node_could_ever_hold_is_unschedulable_whatever_is_pending() -> None:
    problem = placement_problem(
        {"CPU": 64.0}, [NodeResources(HEAD, HEAD)], waiting=1, pending=[{"CPU": 64.0}]
    )
    assert problem is not None and problem.status is AppStatus.UNSCHEDULABLE
    assert problem.message == unschedulable_reason({"CPU": 64.0}, [HEAD])


def test_a_waiting_replica_whose_request_is_pending_and_fits_no_free_room_lacks_capacity() -> None:
    node = busy(HEAD, CPU=0.2, memory=3000.0 * MIB)
    problem = placement_problem(ASK, [node], waiting=1, pending=[{"CPU": 0.5, "memory": 256.0 * MIB}])
    assert problem is not None and problem.status is AppStatus.INSUFFICIENT_CAPACITY
    assert problem.message == (
        "1 replica waits for room: each needs {CPU: 0.5, memory: 256 MiB}, the only alive node has "
        "{CPU: 0.2, memory: 3000 MiB} free (short of CPU by 0.3)."
    )


def test_every_short_resource_is_named_with_the_roomiest_nodes_shortfall() -> None:
    ask = {"CPU": 1.0, "memory": 512.0 * MIB, "pool_a": 2.0}
    nodes = [
        busy(HEAD, CPU=0.25, memory=100.0 * MIB),
        busy(POOL_NODE, CPU=0.5, memory=500.0 * MIB, pool_a=1.0),
    ]
    problem = placement_problem(ask, nodes, waiting=3, pending=[{"CPU": 0.1}, ask])
    assert problem is not None and problem.status is AppStatus.INSUFFICIENT_CAPACITY
    assert problem.message.startswith(
        "3 replicas wait for room: each needs {CPU: 1, memory: 512 MiB, pool_a: 2}"
    )
    assert "the 2 alive nodes have {CPU: 0.25, memory: 100 MiB, pool_a: 0}; {CPU: 0.5, memory: 500 MiB" in (
        problem.message
    )
    assert problem.message.endswith("(short of CPU by 0.5, memory by 12 MiB, pool_a by 1).")


def test_room_split_across_nodes_is_said_to_be_split() -> None:
    ask = {"CPU": 1.0, "pool_a": 1.0}
    nodes = [busy(HEAD, CPU=2.0), busy(POOL_NODE, CPU=0.0, pool_a=4.0)]
    problem = placement_problem(ask, nodes, waiting=1, pending=[ask])
    assert problem is not None and problem.status is AppStatus.INSUFFICIENT_CAPACITY
    assert problem.message.endswith("(no single node has all of it free at once).")


@pytest.mark.parametrize(
    ("waiting", "pending", "free_cpu"),
    [
        (0, [ASK], 0.0),  # every replica has a node (its worker may still be starting)
        (1, [], 0.0),  # the cluster lists nothing pending: the replica is being placed
        (1, [{"CPU": 0.5}], 0.0),  # something else is pending, not this shape
        (1, [{**ASK, "pool_a": 1.0}], 0.0),
        (1, [{"CPU": 0.25, "memory": 256.0 * MIB}], 0.0),
        (1, [ASK], 0.5),  # room appeared since the cluster reported it: placed any moment
    ],
)
def test_no_capacity_problem_unless_a_waiting_replicas_own_request_is_pending_without_room(
    waiting: int, pending: list[dict[str, float]], free_cpu: float
) -> None:
    node = busy(HEAD, CPU=free_cpu, memory=4096.0 * MIB)
    assert placement_problem(ASK, [node], waiting=waiting, pending=pending) is None


def test_pending_shapes_match_within_the_clusters_rounding_and_ignore_zero_amounts() -> None:
    node = busy(HEAD)
    shape = {"CPU": 0.1 + 0.2, "memory": 256.0 * MIB, "GPU": 0.0}
    problem = placement_problem({"CPU": 0.3, "memory": 256.0 * MIB}, [node], waiting=1, pending=[shape])
    assert problem is not None and problem.status is AppStatus.INSUFFICIENT_CAPACITY


def test_no_alive_node_is_unschedulable_not_a_capacity_problem() -> None:
    problem = placement_problem(ASK, [], waiting=1, pending=[ASK])
    assert problem is not None and problem.status is AppStatus.UNSCHEDULABLE
