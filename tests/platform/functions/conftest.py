"""Fixtures for the functions API: a real control plane over the session's nx-27017 and Redis.

The gateway lifecycle itself is covered with Ray in ``tests/platform/lifecycle``; here gateways only
need to exist and be provisioned, so the reconcilers run against ``InMemoryCluster``, a fake of the
``ClusterDriver`` Protocol whose apps are "running" as soon as they are applied. The app gets its own
system database so its reconcilers never claim another test module's gateways. One gateway per
module is shared by its tests (each test uses its own function names).

Every test of this directory also runs with the real ``KubeRayDriver`` (ids ``[fake]`` and
``[kuberay]``): a second control plane configured with ``IMPRUN_CLUSTER_DRIVER=kuberay`` against the
Kubernetes API stand-in and its fake operator, so its gateways are provisioned through namespaces and
RayServices. Two kinds of test stay on the fake only: those that take the ``cluster`` fixture (they
steer the fake, e.g. hold a gateway's deletes) and those in ``NEEDS_A_REPLICA`` — a debug run goes
to a live replica of the dev environment, which the stand-in cannot run. Other directories importing
``functions_client`` get the fake.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.domain.naming import serve_app_name
from imprun.domain.observations import AppStatus
from imprun.drivers.cluster import AppSpec, ObservedApp
from tests.fixtures.k8s_standin import kuberay_settings, running_cluster
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices

PASSWORD = "correct-horse-battery"
Headers = dict[str, str]


class InMemoryCluster:
    """``ClusterDriver`` fake: apply → Running; delete → gone, unless the gateway's deletes are held."""

    def __init__(self) -> None:
        self._apps: dict[str, AppStatus] = {}
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def apply(self, spec: AppSpec) -> None:
        with self._lock:
            self._apps[spec.app_name] = AppStatus.RUNNING

    def observe(self, gateway_id: str, environment: str) -> ObservedApp:
        with self._lock:
            return ObservedApp(self._apps.get(serve_app_name(gateway_id, environment), AppStatus.MISSING))

    def delete(self, gateway_id: str, environment: str) -> None:
        name = serve_app_name(gateway_id, environment)
        with self._lock:
            if gateway_id in self._held:
                self._apps[name] = AppStatus.DELETING
            else:
                self._apps.pop(name, None)

    def list_apps(self) -> list[str]:
        with self._lock:
            return list(self._apps)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def hold_deletes(self, gateway_id: str) -> None:
        with self._lock:
            self._held.add(gateway_id)

    def release_deletes(self, gateway_id: str) -> None:
        with self._lock:
            self._held.discard(gateway_id)
            for name in [
                n for n, s in self._apps.items() if n.startswith(f"{gateway_id}-") and s is AppStatus.DELETING
            ]:
                del self._apps[name]


@pytest.fixture(scope="session")
def cluster() -> InMemoryCluster:
    return InMemoryCluster()


DRIVERS = ("fake", "kuberay")
NEEDS_A_REPLICA = frozenset({"test_debug_run"})
"""Tests that talk to a running replica: the fake driver only."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``functions_client`` once per driver (the fake only where it must)."""
    if "functions_client" not in metafunc.fixturenames:
        return
    steers_the_fake = "cluster" in inspect.signature(metafunc.function).parameters
    fake_only = steers_the_fake or metafunc.function.__name__ in NEEDS_A_REPLICA
    kinds = ["fake"] if fake_only else list(DRIVERS)
    metafunc.parametrize("functions_client", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def functions_client(
    request: pytest.FixtureRequest, services: RunningServices, cluster: InMemoryCluster
) -> Iterator[TestClient]:
    """A control plane on the fake driver, or (param ``kuberay``) on a KubeRay driver and stand-in."""
    kind = getattr(request, "param", "fake")
    settings = services.settings.model_copy(
        update={
            "sys_db_name": f"imprun_sys_functions_{kind}_{uuid.uuid4().hex[:6]}",
            "reconcile_interval_seconds": 0.1,
        }
    )
    if kind == "fake":
        with TestClient(create_app(settings, driver=cluster)) as client:
            yield client
        return
    with (
        running_cluster() as kubernetes,
        TestClient(create_app(kuberay_settings(settings, kubernetes))) as client,
    ):
        yield client


def register(client: TestClient) -> Headers:
    username = f"dev-{uuid.uuid4().hex[:8]}"
    assert (
        client.post("/v1/auth/register", json={"username": username, "password": PASSWORD}).status_code == 201
    )
    token = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def wait_for_phase(client: TestClient, headers: Headers, gw: str, phase: str, *, timeout: float = 30) -> None:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal seen
        seen = client.get(f"/v1/api-gateways/{gw}", headers=headers).json()
        return seen.get("phase") == phase

    assert eventually(reached, timeout=timeout, interval=0.05), f"gateway {gw} never reached {phase}: {seen}"


def new_gateway(client: TestClient, headers: Headers) -> str:
    gw = f"fn-{uuid.uuid4().hex[:8]}"
    response = client.post("/v1/api-gateways", json={"name": gw, "gatewayId": gw}, headers=headers)
    assert response.status_code == 202, response.text
    wait_for_phase(client, headers, gw, "Started")
    return gw


@pytest.fixture(scope="module")
def owner(functions_client: TestClient) -> Headers:
    return register(functions_client)


@pytest.fixture(scope="module")
def gateway(functions_client: TestClient, owner: Headers) -> str:
    return new_gateway(functions_client, owner)


@pytest.fixture
def unique_function() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def plane(functions_client: TestClient) -> Any:
    return functions_client.app.state.plane  # type: ignore[attr-defined]
