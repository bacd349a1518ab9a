"""End-to-end fixtures: a control plane whose environments run the real function runtime.

It has its own system database, so its reconcilers never meet the gateways of other test modules'
control planes, and a cluster driver whose replicas get the service URLs (reload hub, db proxy,
log stream) — the full data path of ``imprun up``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.security.api_keys import api_key_pepper
from imprun.security.master_key import load_master_key
from imprun.security.variables import variables_key
from imprun.settings import Settings
from tests.fixtures.live_stack import LiveStack
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead

SMALL_BUNDLE = {"cpu": 0.05, "memory": 256, "minReplicas": 1, "maxReplicas": 1}
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def e2e_settings(live_stack: LiveStack) -> Settings:
    """The live stack's platform (its system database, the shared runtime it deploys) through a
    second control plane that deploys no platform application itself."""
    return live_stack.settings.model_copy(update={"ai_gateway": False, "shared_runtime": False})


@pytest.fixture(params=["shared", "dedicated"], scope="session")
def tier(request: pytest.FixtureRequest) -> str:
    """The tier of the gateways a test creates: the end-to-end tests run against both."""
    return str(request.param)


def small_bundle(tier: str) -> dict[str, Any]:
    return {**SMALL_BUNDLE, "tier": tier}


@pytest.fixture(scope="session")
def e2e_client(e2e_settings: Settings, ray_head: RunningRayHead) -> Iterator[TestClient]:
    master_key = load_master_key(e2e_settings)
    driver = LocalRayServeDriver(
        ray_head.address,
        e2e_settings,
        api_key_pepper=api_key_pepper(master_key),
        variables_key=variables_key(master_key),
    )
    with TestClient(create_app(e2e_settings, driver=driver)) as client:
        yield client


@pytest.fixture(scope="session")
def e2e_user(e2e_client: TestClient) -> dict[str, str]:
    username = f"dev-{uuid.uuid4().hex[:8]}"
    e2e_client.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
    token = e2e_client.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).json()[
        "token"
    ]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def data_plane(ray_head: RunningRayHead) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ray_head.serve_url, timeout=30) as client:
        yield client


def wait_started(
    client: TestClient, headers: dict[str, str], gw: str, timeout: float = 180
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def started() -> bool:
        nonlocal seen
        seen = client.get(f"/v1/api-gateways/{gw}", headers=headers).json()
        return seen.get("phase") == "Started"

    assert eventually(started, timeout=timeout, interval=0.2), f"{gw} never Started: {seen}"
    return seen


def make_public(client: TestClient, headers: dict[str, str], gw: str) -> None:
    """``authType: none`` on every environment: these tests are about functions, not API keys."""
    for env in ("dev", "staging", "prod"):
        response = client.patch(
            f"/v1/api-gateways/{gw}/environments/{env}", json={"authType": "none"}, headers=headers
        )
        assert response.status_code == 200, response.text


def served(
    data_plane: httpx.Client,
    method: str,
    path: str,
    predicate: Callable[[httpx.Response], bool],
    *,
    timeout: float = 30,
    **request: Any,
) -> httpx.Response:
    """Call ``path`` until ``predicate(response)`` holds (hot reload is asynchronous); return that response."""
    last: list[httpx.Response] = []

    def check() -> bool:
        last[:] = [data_plane.request(method, path, **request)]
        return predicate(last[0])

    ok = eventually(check, timeout=timeout, interval=0.02)
    assert ok, f"{method} {path} never passed; last: {last[0].status_code} {last[0].text[:300]}"
    return last[0]
