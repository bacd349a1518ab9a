"""A bundle no node of the real Ray cluster can satisfy: the environments say ``Unschedulable`` (and
why) instead of deploying forever, the gateway points at them, and such a gateway can still be
deleted. Bad custom resources are refused at the door with a 422."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.domain.observations import AppStatus
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.fixtures.polling import eventually
from tests.platform.lifecycle.conftest import SMALL_BUNDLE, UniqueGateway, wait_gone

ENVS = ("dev", "staging", "prod")


def failed_condition(environment: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in environment.get("conditions", []) if c["type"] == "Failed" and c["status"]), None)


@pytest.mark.timeout(600)
def test_a_bundle_no_node_can_hold_shows_unschedulable_on_every_environment(
    lifecycle_client: TestClient,
    owner: dict[str, str],
    unique_gateway: UniqueGateway,
    ray_driver: LocalRayServeDriver,
) -> None:
    client, gw = lifecycle_client, unique_gateway()
    bundle = {**SMALL_BUNDLE, "resources": {"imprun_absent_pool": 1}}
    created = client.post(
        "/v1/api-gateways", json={"name": "Nowhere", "gatewayId": gw, "bundle": bundle}, headers=owner
    )
    assert created.status_code == 202, created.text
    assert created.json()["bundle"]["resources"] == {"imprun_absent_pool": 1.0}

    seen: dict[str, Any] = {}

    def all_unschedulable() -> bool:
        nonlocal seen
        seen = client.get(f"/v1/api-gateways/{gw}", headers=owner).json()
        environments = seen.get("environments", [])
        return (
            len(environments) == 3
            and all((failed_condition(e) or {}).get("reason") == "Unschedulable" for e in environments)
            and (failed_condition(seen) or {}).get("reason") == "EnvironmentFailed"
        )

    assert eventually(all_unschedulable, timeout=180, interval=0.2), f"never Unschedulable: {seen}"
    for environment in seen["environments"]:
        assert environment["phase"] == "Starting", "it waits for a node, it does not pretend to be up"
        message = failed_condition(environment)["message"]  # type: ignore[index]
        assert "cannot be scheduled" in message and "imprun_absent_pool: 1" in message
        assert "no node offers that" in message
    assert seen["phase"] == "Starting", "the gateway waits for its environments and says which failed"
    assert all(ray_driver.observe(gw, env).status is AppStatus.UNSCHEDULABLE for env in ENVS)

    assert client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
    wait_gone(client, owner, gw)
    assert all(ray_driver.observe(gw, env).status is AppStatus.MISSING for env in ENVS)


@pytest.mark.parametrize(
    ("resources", "complaint"),
    [
        ({"CPU": 2}, "built-in resource"),
        ({"pool_a": 0}, "between"),
        ({"": 1}, "custom resource name"),
        ({"pool_a": "lots"}, "resources"),
    ],
)
def test_bad_custom_resources_are_a_422_naming_the_problem(
    lifecycle_client: TestClient, owner: dict[str, str], resources: dict[str, object], complaint: str
) -> None:
    bundle = {**SMALL_BUNDLE, "resources": resources}
    response = lifecycle_client.post(
        "/v1/api-gateways", json={"name": "bad", "bundle": bundle}, headers=owner
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and complaint in str(error)
