"""``LocalRayServeDriver`` placing replicas: custom resources reach Ray, a replica reserves the bundle's
CPU only up to the settings' cap, a replica no node of the session's real Ray cluster can hold is
reported as ``UNSCHEDULABLE`` with what is missing, and one that waits for room the head has in total
as ``INSUFFICIENT_CAPACITY`` with what is asked and free, until room frees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeInstanceDetails

from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import AppSpec, AppStatus, ObservedApp
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.fixtures.polling import eventually
from tests.fixtures.ray import TEST_SLOT

pytestmark = pytest.mark.ray

DEPLOY_TIMEOUT = 90.0


@pytest.fixture
def gateway_id(request: pytest.FixtureRequest, ray_driver: LocalRayServeDriver) -> Iterator[str]:
    name = "p-" + request.node.name.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    yield name
    ray_driver.delete(name, "dev")
    assert eventually(lambda: ray_driver.observe(name, "dev").status is AppStatus.MISSING, timeout=60)


def spec(
    gateway_id: str,
    *,
    cpu: float = 0.05,
    memory_mb: int = 64,
    resources: dict[str, float] | None = None,
    environment: str = "dev",
) -> AppSpec:
    return AppSpec(gateway_id, environment, 1, 1, cpu=cpu, memory_mb=memory_mb, resources=resources or {})


def observed_until(
    driver: LocalRayServeDriver, gateway_id: str, status: AppStatus, environment: str = "dev"
) -> ObservedApp:
    seen: list[ObservedApp] = []

    def reached() -> bool:
        seen[:] = [driver.observe(gateway_id, environment)]
        return seen[0].status is status

    assert eventually(reached, timeout=DEPLOY_TIMEOUT, interval=0.2), f"never {status}: {seen}"
    return seen[0]


def test_a_custom_resource_no_node_offers_is_unschedulable_until_the_bundle_drops_it(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id, resources={"imprun_absent_pool": 2}))

    observed = observed_until(ray_driver, gateway_id, AppStatus.UNSCHEDULABLE)
    assert "Each replica needs {CPU: 0.02, memory: 64 MiB, imprun_absent_pool: 2} but no node offers" in (
        observed.message
    )
    assert "imprun_absent_pool: 0" in observed.message, "says what the nodes have instead"
    deployment = _deployment(gateway_id)
    assert deployment.deployment_config.ray_actor_options.resources == {"imprun_absent_pool": 2.0}

    ray_driver.apply(spec(gateway_id))  # the bundle is fixed: the app is rolled out and runs
    observed_until(ray_driver, gateway_id, AppStatus.RUNNING)


def test_more_memory_than_any_node_has_is_unschedulable(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id, memory_mb=4 * 1024 * 1024))

    observed = observed_until(ray_driver, gateway_id, AppStatus.UNSCHEDULABLE)
    assert observed.message.startswith(
        "Each replica needs {CPU: 0.02, memory: 4194304 MiB} but no node offers that"
    )
    assert "Change the bundle or add a node that has it." in observed.message


def test_a_replica_reserves_the_bundles_cpu_only_up_to_the_cap(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    """More CPU than the head has is a ceiling for the replica, not a reservation: it runs."""
    assert ray_driver.reserved_cpu(spec(gateway_id, cpu=0.01)) == 0.01, "a smaller ask is reserved as is"
    ray_driver.apply(spec(gateway_id, cpu=64))

    observed_until(ray_driver, gateway_id, AppStatus.RUNNING)
    assert _deployment(gateway_id).required_resources == {"CPU": 0.02, "memory": 64 * 1024 * 1024}


def test_a_replica_waiting_for_room_lacks_capacity_until_another_frees_it(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    """The head offers 1 TEST_SLOT: dev holds 0.6 of it, so staging (0.6 too) waits until dev goes."""
    ray_driver.apply(spec(gateway_id, resources={TEST_SLOT: 0.6}))
    observed_until(ray_driver, gateway_id, AppStatus.RUNNING)
    try:
        ray_driver.apply(spec(gateway_id, resources={TEST_SLOT: 0.6}, environment="staging"))
        observed = observed_until(ray_driver, gateway_id, AppStatus.INSUFFICIENT_CAPACITY, "staging")
        assert observed.message.startswith(
            f"1 replica waits for room: each needs {{CPU: 0.02, memory: 64 MiB, {TEST_SLOT}: 0.6}}, "
            "the only alive node has {CPU: "
        ), observed.message
        assert observed.message.endswith(f"{TEST_SLOT}: 0.4}} free (short of {TEST_SLOT} by 0.2)."), (
            observed.message
        )
        assert ray_driver.observe(gateway_id, "dev").status is AppStatus.RUNNING

        ray_driver.delete(gateway_id, "dev")  # room frees: staging is placed and runs by itself
        observed_until(ray_driver, gateway_id, AppStatus.RUNNING, "staging")
    finally:
        ray_driver.delete(gateway_id, "staging")
        assert eventually(
            lambda: ray_driver.observe(gateway_id, "staging").status is AppStatus.MISSING, timeout=60
        )


def _deployment(gateway_id: str, environment: str = "dev") -> Any:
    client = _get_global_client()
    assert client is not None
    details = ServeInstanceDetails(**client.get_serve_details())
    return details.applications[serve_app_name(gateway_id, environment)].deployments["FunctionActor"]
