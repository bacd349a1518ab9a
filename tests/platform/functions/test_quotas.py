"""Per-user quotas: past one, 403 ``quota_exceeded`` naming the quota, its limit and the current use;
the history keeps only the newest versions. A control plane of its own on the fake driver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.services import RunningServices
from tests.platform.functions.conftest import Headers, InMemoryCluster, new_gateway, register

CODE = "def main():\n    return 1\n"


@pytest.fixture(scope="module")
def small(services: RunningServices, cluster: InMemoryCluster) -> Iterator[TestClient]:
    settings = services.settings.model_copy(
        update={
            "sys_db_name": f"imprun_sys_quotas_{uuid.uuid4().hex[:6]}",
            "reconcile_interval_seconds": 0.1,
            "quota_gateways": 1,
            "quota_functions_per_gateway": 1,
            "quota_code_bytes": 1024,
            "quota_history_versions": 2,
            "quota_variables_per_environment": 1,
            "quota_bundle_cpu": 1.0,
            "quota_bundle_replicas": 2,
        }
    )
    with TestClient(create_app(settings, driver=cluster)) as client:
        yield client


def _refused(response: Any, quota: str, limit: float, used: float) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {"quota": quota, "limit": limit, "used": used}


def test_quotas_of_one_user(small: TestClient) -> None:
    owner: Headers = register(small)
    big = {"name": "big", "gatewayId": f"q-{uuid.uuid4().hex[:8]}", "bundle": {"cpu": 4}}
    _refused(small.post("/v1/api-gateways", json=big, headers=owner), "bundle cpu", 1.0, 4.0)
    wide = {**big, "bundle": {"cpu": 0.5, "minReplicas": 1, "maxReplicas": 3}}
    _refused(small.post("/v1/api-gateways", json=wide, headers=owner), "bundle replicas", 2, 3)

    gw = new_gateway(small, owner)
    second = {"name": "second", "gatewayId": f"q-{uuid.uuid4().hex[:8]}"}
    _refused(small.post("/v1/api-gateways", json=second, headers=owner), "gateways", 1, 1)
    assert small.post("/v1/api-gateways", json=second, headers=register(small)).status_code == 202, (
        "quotas are per user"
    )

    functions = f"/v1/api-gateways/{gw}/functions"
    huge = "def main():\n    return " + repr("x" * 2000) + "\n"
    _refused(
        small.post(functions, json={"name": "huge", "code": huge}, headers=owner),
        "code bytes",
        1024,
        len(huge),
    )
    assert small.post(functions, json={"name": "fn", "code": CODE}, headers=owner).status_code == 201
    _refused(
        small.post(functions, json={"name": "fn2", "code": CODE}, headers=owner),
        "functions per gateway",
        1,
        1,
    )
    _refused(
        small.patch(f"{functions}/fn", json={"code": huge}, headers=owner), "code bytes", 1024, len(huge)
    )

    for i in range(2, 5):
        assert (
            small.patch(
                f"{functions}/fn", json={"code": f"def main():\n    return {i}\n"}, headers=owner
            ).status_code
            == 200
        )
    history = small.get(f"{functions}/fn/history", headers=owner).json()
    assert [v["version"] for v in history] == [4, 3], "only the newest two versions are kept"

    variables = f"/v1/api-gateways/{gw}/environments/dev/variables"
    assert small.put(f"{variables}/A", json={"value": "1"}, headers=owner).status_code == 200
    replaced = small.put(f"{variables}/A", json={"value": "2"}, headers=owner)
    assert replaced.status_code == 200, replaced.text  # replacing takes no new slot
    _refused(
        small.put(f"{variables}/B", json={"value": "1"}, headers=owner), "variables per environment", 1, 1
    )
