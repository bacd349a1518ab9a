"""``LocalRayServeDriver`` placing replicas: custom resources reach Ray, and a replica no node of the
session's real Ray cluster can hold is reported as ``UNSCHEDULABLE`` with what is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeInstanceDetails

from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import AppSpec, AppStatus, ObservedApp
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.fixtures.polling import eventually

pytestmark = pytest.mark.ray

DEPLOY_TIMEOUT = 90.0


@pytest.fixture
def gateway_id(request: pytest.FixtureRequest, ray_driver: LocalRayServeDriver) -> Iterator[str]:
    name = "p-" + request.node.name.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    yield name
    ray_driver.delete(name, "dev")
    assert eventually(lambda: ray_driver.observe(name, "dev").status is AppStatus.MISSING, timeout=60)


def spec(gateway_id: str, *, cpu: float = 0.05, resources: dict[str, float] | None = None) -> AppSpec:
    return AppSpec(gateway_id, "dev", 1, 1, cpu=cpu, memory_mb=64, resources=resources or {})


def observed_until(driver: LocalRayServeDriver, gateway_id: str, status: AppStatus) -> ObservedApp:
    seen: list[ObservedApp] = []

    def reached() -> bool:
        seen[:] = [driver.observe(gateway_id, "dev")]
        return seen[0].status is status

    assert eventually(reached, timeout=DEPLOY_TIMEOUT, interval=0.2), f"never {status}: {seen}"
    return seen[0]


def test_a_custom_resource_no_node_offers_is_unschedulable_until_the_bundle_drops_it(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id, resources={"imprun_absent_pool": 2}))

    observed = observed_until(ray_driver, gateway_id, AppStatus.UNSCHEDULABLE)
    assert "Each replica needs {CPU: 0.05, memory: 64 MiB, imprun_absent_pool: 2} but no node offers" in (
        observed.message
    )
    assert "imprun_absent_pool: 0" in observed.message, "says what the nodes have instead"
    client = _get_global_client()
    assert client is not None
    deployment = (
        ServeInstanceDetails(**client.get_serve_details())
        .applications[serve_app_name(gateway_id, "dev")]
        .deployments["FunctionActor"]
    )
    assert deployment.deployment_config.ray_actor_options.resources == {"imprun_absent_pool": 2.0}

    ray_driver.apply(spec(gateway_id))  # the bundle is fixed: the app is rolled out and runs
    observed_until(ray_driver, gateway_id, AppStatus.RUNNING)


def test_more_cpu_than_any_node_has_is_unschedulable(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id, cpu=64))

    observed = observed_until(ray_driver, gateway_id, AppStatus.UNSCHEDULABLE)
    assert observed.message.startswith("Each replica needs {CPU: 64, memory: 64 MiB} but no node offers that")
    assert "Change the bundle or add a node that has it." in observed.message
