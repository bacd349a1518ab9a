"""The lifecycle reconcilers driving the KubeRay driver, against the Kubernetes API stand-in.

A real control plane (``IMPRUN_CLUSTER_DRIVER=kuberay`` pointed at the stand-in, on the session's
nx-27017 and Redis, with a private system database) builds its own ``KubeRayDriver``. A gateway goes
Creating → Started with three RayServices in its namespace, stops (the RayServices go, the namespace
stays), starts again and is deleted (the namespace goes); RayServices edited or deleted by hand are
put back; a RayService the operator never makes Ready fails the environment with the operator's
reason and recovers once it is Ready; API-server errors are retried until the gateway converges.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.domain.naming import ENVIRONMENT_NAMES
from tests.fixtures.k8s_standin import CORE, RAY, Cluster, Fault, running_cluster
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.drivers.k8s_schemas import assert_valid
from tests.platform.lifecycle.conftest import (
    SMALL_BUNDLE,
    kuberay_lifecycle_settings,
    sign_up,
    wait_for_phase,
    wait_gone,
)

RAYSERVICES = (RAY, "rayservices")


@dataclass
class KubeRayPlane:
    client: TestClient
    cluster: Cluster
    owner: dict[str, str]

    def create(self) -> str:
        gw = f"kr-{uuid.uuid4().hex[:8]}"
        body = {"name": "KubeRay", "gatewayId": gw, "bundle": SMALL_BUNDLE}
        created = self.client.post("/v1/api-gateways", json=body, headers=self.owner)
        assert created.status_code == 202, created.text
        return gw

    def gateway(self, gw: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(f"/v1/api-gateways/{gw}", headers=self.owner).json()
        return body

    def events(self, gw: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.client.get(
            f"/v1/api-gateways/{gw}/events", headers=self.owner
        ).json()
        return events

    def rayservice(self, gw: str, env: str) -> dict[str, Any] | None:
        return self.cluster.api.get(RAYSERVICES, f"imprun-{gw}", f"{gw}-{env}")


@pytest.fixture(scope="module")
def kuberay_plane(services: RunningServices) -> Iterator[KubeRayPlane]:
    with running_cluster() as cluster:
        settings = kuberay_lifecycle_settings(services, cluster)
        with TestClient(create_app(settings)) as client:
            yield KubeRayPlane(client, cluster, sign_up(client, "kr"))
            client.app.state.plane.mongo.drop_database(settings.sys_db_name)  # type: ignore[attr-defined]


@pytest.mark.timeout(300)
def test_create_stop_start_delete_with_rayservices(kuberay_plane: KubeRayPlane) -> None:
    plane, api = kuberay_plane, kuberay_plane.cluster.api
    gw = plane.create()
    started = wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert all(e["phase"] == "Started" for e in started["environments"])
    namespace = f"imprun-{gw}"
    assert api.get((CORE, "namespaces"), "", namespace) is not None
    assert api.get((CORE, "secrets"), namespace, "imprun-gateway-mongo") is not None
    assert all(plane.rayservice(gw, env) is not None for env in ENVIRONMENT_NAMES)
    messages = [e["message"] for e in plane.events(gw)]
    assert all(f"RayService {gw}-{env}: created" in messages for env in ENVIRONMENT_NAMES)
    assert plane.client.get("/readyz").status_code == 200

    stop = plane.client.patch(f"/v1/api-gateways/{gw}", json={"state": "Stopped"}, headers=plane.owner)
    assert stop.status_code == 200
    wait_for_phase(plane.client, plane.owner, gw, "Stopped")
    assert all(plane.rayservice(gw, env) is None for env in ENVIRONMENT_NAMES)
    assert api.get((CORE, "namespaces"), "", namespace) is not None  # stopped, not gone

    start = plane.client.patch(f"/v1/api-gateways/{gw}", json={"state": "Running"}, headers=plane.owner)
    assert start.status_code == 200
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert all(plane.rayservice(gw, env) is not None for env in ENVIRONMENT_NAMES)

    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)
    assert api.get((CORE, "namespaces"), "", namespace) is None
    assert all(plane.rayservice(gw, env) is None for env in ENVIRONMENT_NAMES)
    for written in api.written:
        assert_valid(written)


@pytest.mark.timeout(300)
def test_rayservices_changed_or_deleted_by_hand_are_put_back(kuberay_plane: KubeRayPlane) -> None:
    plane, api = kuberay_plane, kuberay_plane.cluster.api
    gw = plane.create()
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    original = plane.rayservice(gw, "dev")
    assert original is not None

    def scale_up(obj: dict[str, Any]) -> None:
        obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = 40

    api.edit(RAYSERVICES, f"imprun-{gw}", f"{gw}-dev", scale_up)
    api.remove(RAYSERVICES, f"imprun-{gw}", f"{gw}-prod")

    def put_back() -> bool:
        dev, prod = plane.rayservice(gw, "dev"), plane.rayservice(gw, "prod")
        return dev is not None and dev["spec"] == original["spec"] and prod is not None

    assert eventually(put_back, timeout=60)
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)


@pytest.mark.timeout(300)
def test_a_rayservice_never_ready_fails_the_environment_with_the_operators_reason(
    kuberay_plane: KubeRayPlane,
) -> None:
    plane = kuberay_plane
    gw = f"kr-{uuid.uuid4().hex[:8]}"
    plane.cluster.operator.hold(f"{gw}-dev", "WaitingForPods", "0/4 nodes are available: Insufficient memory")
    body = {"name": "Never ready", "gatewayId": gw, "bundle": SMALL_BUNDLE}
    assert plane.client.post("/v1/api-gateways", json=body, headers=plane.owner).status_code == 202

    def dev_failed() -> bool:
        (dev,) = [e for e in plane.gateway(gw).get("environments", []) if e["name"] == "dev"] or [{}]
        return any(
            c["type"] == "Failed" and "Insufficient memory" in c["message"] for c in dev.get("conditions", [])
        )

    assert eventually(dev_failed, timeout=60, interval=0.2), plane.gateway(gw)
    assert any(e["type"] == "Warning" and "WaitingForPods" in e["message"] for e in plane.events(gw))
    plane.cluster.operator.release(f"{gw}-dev")
    started = wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert all(not e["conditions"] for e in started["environments"]), "the Failed condition clears"
    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)


@pytest.mark.timeout(300)
def test_api_server_errors_are_retried_until_the_gateway_converges(kuberay_plane: KubeRayPlane) -> None:
    plane, api = kuberay_plane, kuberay_plane.cluster.api
    api.inject(Fault(method="POST", path_prefix="/apis/ray.io", status=503, times=12))
    gw = plane.create()
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert sum(1 for method, path, status in api.requests if status == 503 and "ray.io" in path) == 12
    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)
