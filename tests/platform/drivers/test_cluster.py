"""``AppSpec`` and friends: the cluster driver's value objects refuse specs no cluster can run."""

from __future__ import annotations

import pytest

from imprun.drivers.cluster import AppSpec, validate_app_ref
from imprun.errors import Invalid


def test_a_spec_knows_its_serve_app_name_and_route_prefix() -> None:
    spec = AppSpec("orders-api", "staging", min_replicas=1, max_replicas=3, cpu=0.5, memory_mb=256)
    assert spec.app_name == "orders-api-staging"
    assert spec.route_prefix == "/orders-api/staging"
    assert spec.autoscaling


def test_equal_replica_bounds_mean_a_fixed_count() -> None:
    assert not AppSpec("orders-api", "dev", min_replicas=2, max_replicas=2, cpu=0.5, memory_mb=0).autoscaling


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"gateway_id": "Orders API"}, "gateway id"),
        ({"environment": "qa"}, "environment"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas"),
        ({"min_replicas": 0, "max_replicas": 0}, "replicas"),
        ({"min_replicas": -1}, "replicas"),
        ({"cpu": -0.5}, "cpu"),
        ({"cpu": float("nan")}, "cpu"),
        ({"memory_mb": -1}, "memory_mb"),
        ({"resources": {"CPU": 1}}, "resources: 'CPU' is a built-in resource"),
        ({"resources": {"pool_a": 0}}, "resources: custom resource 'pool_a' must be between"),
        ({"resources": {"": 1}}, "resources: custom resource name"),
    ],
)
def test_impossible_specs_are_invalid(changes: dict[str, object], complaint: str) -> None:
    values: dict[str, object] = {
        "gateway_id": "orders-api",
        "environment": "dev",
        "min_replicas": 1,
        "max_replicas": 1,
        "cpu": 0.5,
        "memory_mb": 128,
    } | changes
    with pytest.raises(Invalid, match=complaint):
        AppSpec(**values)  # type: ignore[arg-type]


def test_custom_resources_are_kept_as_a_plain_copy() -> None:
    asked = {"pool_a": 2}
    spec = AppSpec("orders-api", "dev", 1, 1, cpu=0.5, memory_mb=0, resources=asked)
    asked["pool_a"] = 3
    assert spec.resources == {"pool_a": 2.0}
    assert AppSpec("orders-api", "dev", 1, 1, cpu=0.5, memory_mb=0).resources == {}


def test_app_refs_are_validated_like_gateway_ids() -> None:
    validate_app_ref("orders-api", "prod")
    with pytest.raises(Invalid, match="reserved"):
        validate_app_ref("ai-gateway", "dev")
