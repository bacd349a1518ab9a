"""A gateway namespace stuck in Terminating, with the KubeRay driver against the Kubernetes API stand-in.

On a real cluster a deleted namespace lingers in phase ``Terminating`` until its content is gone:
creating it again is a 409, creating anything in it a 403, and deleting it again a 409. The stand-in
plays that when told to (``keep_terminating``). The driver must treat a second release as done and
an apply into the lingering namespace as "not yet" (``Unavailable``, so the reconciler retries); a
control plane re-creating a deleted gateway with the same id must wait for the old namespace to go
and then converge — it must not fail for good, and it must not write into the dying namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.drivers.cluster import AppSpec, AppStatus
from imprun.drivers.kuberay import KubeRayDriver, open_api_client
from imprun.errors import Unavailable
from imprun.settings import Settings
from tests.fixtures.k8s_standin import (
    CORE,
    RAY,
    Cluster,
    kuberay_settings,
    kubernetes_cluster,
    running_cluster,
)
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.lifecycle.conftest import SMALL_BUNDLE, wait_for_phase, wait_gone

__all__ = ["kubernetes_cluster"]

NAMESPACES = (CORE, "namespaces")
RAYSERVICES = (RAY, "rayservices")


def _phase_of_namespace(cluster: Cluster, name: str) -> str | None:
    found = cluster.api.get(NAMESPACES, "", name)
    return None if found is None else str((found.get("status") or {}).get("phase"))


@pytest.fixture
def driver(kubernetes_cluster: Cluster) -> Iterator[KubeRayDriver]:
    settings = kuberay_settings(Settings(), kubernetes_cluster)
    driver = KubeRayDriver(
        open_api_client(settings),
        settings,
        runtime_args=lambda gw: {},
        gateway_mongo_url=lambda gw: "m",
        shared_runtime_mongo_url=lambda: "m",
    )
    yield driver
    driver.close()


def test_a_terminating_namespace_is_released_once_and_waited_for(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    spec = AppSpec("slow-ns", "dev", min_replicas=1, max_replicas=1, cpu=0.1, memory_mb=128)
    driver.apply(spec)
    kubernetes_cluster.api.keep_terminating("imprun-slow-ns")

    driver.release_gateway("slow-ns")
    assert _phase_of_namespace(kubernetes_cluster, "imprun-slow-ns") == "Terminating"
    assert driver.observe("slow-ns", "dev").status is AppStatus.MISSING  # its content went first
    driver.release_gateway("slow-ns")  # the API server answers 409: already being deleted, which is done

    before = len(kubernetes_cluster.api.requests)
    with pytest.raises(Unavailable, match="being deleted"):
        driver.apply(spec)
    written = [
        (m, p) for m, p, _ in kubernetes_cluster.api.requests[before:] if m in ("POST", "PUT", "DELETE")
    ]
    assert written == [], "nothing is written into (or over) the dying namespace"

    kubernetes_cluster.api.finish_terminating("imprun-slow-ns")
    assert kubernetes_cluster.api.get(NAMESPACES, "", "imprun-slow-ns") is None
    driver.apply(spec)
    assert _phase_of_namespace(kubernetes_cluster, "imprun-slow-ns") == "Active"
    assert eventually(lambda: driver.observe("slow-ns", "dev").status is AppStatus.RUNNING)


@pytest.mark.timeout(180)
def test_recreating_a_gateway_waits_for_its_old_namespace_then_converges(services: RunningServices) -> None:
    with running_cluster() as cluster:
        settings = kuberay_settings(
            services.settings,
            cluster,
            reconcile_interval_seconds=0.2,
            sys_db_name=f"imprun_sys_terminating_{uuid.uuid4().hex[:6]}",
        )
        with TestClient(create_app(settings)) as client:
            try:
                _recreate_while_terminating(client, cluster)
            finally:
                client.app.state.plane.mongo.drop_database(settings.sys_db_name)  # type: ignore[attr-defined]


def _recreate_while_terminating(client: TestClient, cluster: Cluster) -> None:
    user = {"username": f"tn-{uuid.uuid4().hex[:8]}", "password": "correct-horse-battery"}
    client.post("/v1/auth/register", json=user)
    owner = {"Authorization": f"Bearer {client.post('/v1/auth/login', json=user).json()['token']}"}
    gw = f"tn-{uuid.uuid4().hex[:8]}"
    namespace = f"imprun-{gw}"
    body = {"name": "Terminating", "gatewayId": gw, "bundle": SMALL_BUNDLE}

    assert client.post("/v1/api-gateways", json=body, headers=owner).status_code == 202
    wait_for_phase(client, owner, gw, "Started")
    cluster.api.keep_terminating(namespace)
    assert client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
    wait_gone(client, owner, gw)
    assert _phase_of_namespace(cluster, namespace) == "Terminating"

    assert client.post("/v1/api-gateways", json=body, headers=owner).status_code == 202

    def waiting_on_the_namespace() -> bool:
        events = client.get(f"/v1/api-gateways/{gw}/events", headers=owner).json()
        return any("is being deleted" in event["message"] for event in events)

    assert eventually(waiting_on_the_namespace, timeout=60, interval=0.2), "no event says what it waits for"
    gateway = client.get(f"/v1/api-gateways/{gw}", headers=owner).json()
    assert gateway["phase"] != "Started", gateway
    assert all(cluster.api.get(RAYSERVICES, namespace, f"{gw}-{env}") is None for env in ENVIRONMENT_NAMES)

    cluster.api.finish_terminating(namespace)
    started = wait_for_phase(client, owner, gw, "Started")
    assert all(not env["conditions"] for env in started["environments"]), started
    assert _phase_of_namespace(cluster, namespace) == "Active"
    assert all(
        cluster.api.get(RAYSERVICES, namespace, f"{gw}-{env}") is not None for env in ENVIRONMENT_NAMES
    )

    cluster.api.finish_terminating(namespace)  # the next delete removes it at once
    assert client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
    wait_gone(client, owner, gw)
    assert cluster.api.get(NAMESPACES, "", namespace) is None
