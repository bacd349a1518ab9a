"""Custom resources in a bundle and the "no node can ever hold a replica" check, without a cluster."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from imprun.domain.gateway import Bundle
from imprun.domain.placement import (
    MAX_CUSTOM_RESOURCES,
    check_custom_resources,
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
