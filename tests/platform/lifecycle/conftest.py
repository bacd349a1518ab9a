"""A control plane with running reconcilers over the session's real services and Ray head."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.settings import Settings
from tests.fixtures.k8s_standin import Cluster, kuberay_settings
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices

SMALL_BUNDLE = {"cpu": 0.05, "memory": 128, "minReplicas": 1, "maxReplicas": 1}


@pytest.fixture(scope="session")
def lifecycle_client(
    services: RunningServices, ray_head: RunningRayHead, ray_driver: LocalRayServeDriver
) -> Iterator[TestClient]:
    settings = services.settings.model_copy(
        update={
            "ray_address": ray_head.address,
            "serve_port": ray_head.settings.serve_port,
            "reconcile_interval_seconds": 0.2,
        }
    )
    with TestClient(create_app(settings, driver=ray_driver)) as client:
        yield client


@pytest.fixture
def owner(lifecycle_client: TestClient) -> dict[str, str]:
    return sign_up(lifecycle_client, "owner")


def sign_up(client: TestClient, prefix: str) -> dict[str, str]:
    """A new user's authorization header."""
    user = {"username": f"{prefix}-{uuid.uuid4().hex[:8]}", "password": "correct-horse-battery"}
    client.post("/v1/auth/register", json=user)
    token = client.post("/v1/auth/login", json=user).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def kuberay_lifecycle_settings(services: RunningServices, cluster: Cluster, **update: object) -> Settings:
    """The session's services driving the Kubernetes stand-in ``cluster`` with fast reconciles and a
    private system database (``update`` on top)."""
    return kuberay_settings(
        services.settings,
        cluster,
        kuberay_ready_timeout_seconds=3.0,
        reconcile_interval_seconds=0.2,
        sys_db_name=f"imprun_sys_kuberay_{uuid.uuid4().hex[:6]}",
        **update,
    )


def wait_for_phase(
    client: TestClient, headers: dict[str, str], gw: str, phase: str, *, timeout: float = 120
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal seen
        response = client.get(f"/v1/api-gateways/{gw}", headers=headers)
        seen = response.json()
        return response.status_code == 200 and seen["phase"] == phase

    assert eventually(reached, timeout=timeout, interval=0.2), f"gateway {gw} never reached {phase}: {seen}"
    return seen


def wait_gone(client: TestClient, headers: dict[str, str], gw: str, *, timeout: float = 120) -> None:
    assert eventually(
        lambda: client.get(f"/v1/api-gateways/{gw}", headers=headers).status_code == 404,
        timeout=timeout,
        interval=0.2,
    ), f"gateway {gw} was never removed"


UniqueGateway = Callable[[], str]


@pytest.fixture
def unique_gateway() -> UniqueGateway:
    return lambda: f"gw-{uuid.uuid4().hex[:8]}"
