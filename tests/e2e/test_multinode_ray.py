"""Multi-node Ray: an environment whose bundle asks for a custom resource runs on the second node that
offers it, serves calls through the head's ingress, is reported unhealthy (Unschedulable) when that
node dies, and serves again once the node comes back — all against the session's real Ray head."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeInstanceDetails

from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import AppStatus
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.e2e.conftest import SMALL_BUNDLE, make_public, served, wait_started
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.ray_node import RayWorkerNode

pytestmark = pytest.mark.ray

NODE_RESOURCE = "imprun_test_node"
# The head's GCS declares a SIGKILLed node dead after its health checks fail (~15-30 s by default);
# Serve then replaces the replica. Generous, because this box has two cores and other work on them.
NODE_DEATH_TIMEOUT = 240.0
RECOVERY_TIMEOUT = 240.0

HELLO = """
def main(req):
    return {"hello": "from the second node"}
"""


@pytest.fixture(scope="module")
def second_node(ray_head: RunningRayHead, ray_driver: LocalRayServeDriver) -> Iterator[RayWorkerNode]:
    ray_driver.ping()  # connects this process to the cluster, so the node can be found in ray.nodes()
    node = RayWorkerNode(ray_head.address, {NODE_RESOURCE: 4})
    try:
        node.start()
        yield node
    finally:
        node.remove()
    assert not node.pids(), "the second node must not outlive this module"


@pytest.fixture(scope="module")
def pinned_gateway(
    second_node: RayWorkerNode, e2e_client: TestClient, e2e_user: dict[str, str]
) -> Iterator[str]:
    """A gateway whose replicas need the resource only the second node offers."""
    gw = f"mn-{uuid.uuid4().hex[:8]}"
    bundle = {**SMALL_BUNDLE, "resources": {NODE_RESOURCE: 1}}
    created = e2e_client.post(
        "/v1/api-gateways", json={"name": "multi-node", "gatewayId": gw, "bundle": bundle}, headers=e2e_user
    )
    assert created.status_code == 202, created.text
    try:
        wait_started(e2e_client, e2e_user, gw, timeout=RECOVERY_TIMEOUT)
        make_public(e2e_client, e2e_user, gw)
        yield gw
    finally:
        e2e_client.delete(f"/v1/api-gateways/{gw}", headers=e2e_user)
        eventually(
            lambda: e2e_client.get(f"/v1/api-gateways/{gw}", headers=e2e_user).status_code == 404, timeout=120
        )


def replica_nodes(gw: str) -> set[str]:
    """Node ids of the dev app's running replicas, read from Serve."""
    client = _get_global_client()
    assert client is not None
    details = ServeInstanceDetails(**client.get_serve_details())
    app = details.applications.get(serve_app_name(gw, "dev"))
    if app is None:
        return set()
    replicas = app.deployments["FunctionActor"].replicas
    return {str(replica.node_id) for replica in replicas if replica.state == "RUNNING"}


def dev_environment(client: TestClient, headers: dict[str, str], gw: str) -> dict[str, Any]:
    environments = client.get(f"/v1/api-gateways/{gw}", headers=headers).json()["environments"]
    return next(e for e in environments if e["name"] == "dev")


def not_serving(data_plane: httpx.Client, path: str) -> bool:
    """An error answer or no answer in time: the ingress has no live replica to send the call to."""
    try:
        return data_plane.get(path, timeout=5).status_code != 200
    except httpx.TransportError:
        return True


def failure(environment: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in environment["conditions"] if c["type"] == "Failed" and c["status"]), None)


@pytest.mark.timeout(1200)
def test_replicas_follow_the_custom_resource_to_the_second_node_and_survive_its_death(
    e2e_client: TestClient,
    e2e_user: dict[str, str],
    pinned_gateway: str,
    second_node: RayWorkerNode,
    ray_driver: LocalRayServeDriver,
    data_plane: httpx.Client,
) -> None:
    api, gw, auth = e2e_client, pinned_gateway, e2e_user
    node_id = second_node.node_id()
    assert node_id is not None

    assert (
        api.post(
            f"/v1/api-gateways/{gw}/functions", json={"name": "hello", "code": HELLO}, headers=auth
        ).status_code
        == 201
    )
    published = api.post(
        f"/v1/api-gateways/{gw}/functions/hello/publish", json={"environment": "dev"}, headers=auth
    )
    assert published.status_code == 200, published.text
    answer = served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 200, timeout=60)
    assert answer.json() == {"hello": "from the second node"}
    assert replica_nodes(gw) == {node_id}, "the replica runs where the resource is, not on the head"

    second_node.kill()

    seen: dict[str, Any] = {}

    def reported_unschedulable() -> bool:
        nonlocal seen
        seen = dev_environment(api, auth, gw)
        return (failure(seen) or {}).get("reason") == "Unschedulable"

    assert eventually(reported_unschedulable, timeout=NODE_DEATH_TIMEOUT, interval=0.5), (
        f"the platform never reported the environment unschedulable: {seen}"
    )
    assert NODE_RESOURCE in failure(seen)["message"]  # type: ignore[index]
    assert ray_driver.observe(gw, "dev").status is AppStatus.UNSCHEDULABLE
    assert eventually(lambda: not_serving(data_plane, f"/{gw}/dev/hello"), timeout=60, interval=0.5)

    new_node_id = second_node.start()

    def recovered() -> bool:
        nonlocal seen
        seen = dev_environment(api, auth, gw)
        return seen["phase"] == "Started" and failure(seen) is None

    assert eventually(recovered, timeout=RECOVERY_TIMEOUT, interval=0.5), f"never recovered: {seen}"
    again = served(
        data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 200, timeout=RECOVERY_TIMEOUT
    )
    assert again.json() == {"hello": "from the second node"}
    assert replica_nodes(gw) == {new_node_id}
    assert ray_driver.observe(gw, "dev").status is AppStatus.RUNNING
