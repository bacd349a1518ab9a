"""A gateway's whole life on the real stack: Creating → Started with three Serve apps, stop, start,
delete leaving nothing behind; plus the API's validation and ownership rules."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from imprun.domain.observations import AppStatus
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.platform.lifecycle.conftest import SMALL_BUNDLE, UniqueGateway, wait_for_phase, wait_gone

ENVS = ("dev", "staging", "prod")


@pytest.mark.timeout(600)
def test_create_stop_start_delete(
    lifecycle_client: TestClient,
    owner: dict[str, str],
    unique_gateway: UniqueGateway,
    ray_driver: LocalRayServeDriver,
    ray_head: RunningRayHead,
) -> None:
    client, gw = lifecycle_client, unique_gateway()
    created = client.post(
        "/v1/api-gateways", json={"name": "Tax API", "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=owner
    )
    assert created.status_code == 202, created.text
    assert created.json()["phase"] == "Creating" and created.json()["state"] == "Running"
    assert created.json()["environments"] == []

    started = wait_for_phase(client, owner, gw, "Started")
    assert [e["name"] for e in started["environments"]] == list(ENVS)
    assert all(e["phase"] == "Started" for e in started["environments"])
    assert started["environments"][0]["url"].endswith(f"/{gw}/dev")
    for env in ENVS:
        assert ray_driver.observe(gw, env).status is AppStatus.RUNNING
        health = httpx.get(f"{ray_head.serve_url}/{gw}/{env}/_health", timeout=10)
        assert health.status_code == 200 and health.json()["environment"] == env
    plane = client.app.state.plane  # type: ignore[attr-defined]
    assert f"gatewayid_{gw}" in plane.mongo.list_database_names()
    assert {"__published_functions", "__consumers"} <= set(
        plane.mongo[f"gatewayid_{gw}"].list_collection_names()
    )

    assert client.patch(f"/v1/api-gateways/{gw}", json={"state": "Stopped"}, headers=owner).status_code == 200
    stopped = wait_for_phase(client, owner, gw, "Stopped")
    assert all(e["phase"] == "Stopped" for e in stopped["environments"])
    assert all(ray_driver.observe(gw, env).status is AppStatus.MISSING for env in ENVS)

    assert client.patch(f"/v1/api-gateways/{gw}", json={"state": "Running"}, headers=owner).status_code == 200
    wait_for_phase(client, owner, gw, "Started")
    assert all(ray_driver.observe(gw, env).status is AppStatus.RUNNING for env in ENVS)

    deleted = client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    assert deleted.status_code == 202 and deleted.json()["state"] == "Deleted"
    conflict = client.patch(f"/v1/api-gateways/{gw}", json={"state": "Running"}, headers=owner)
    assert conflict.status_code == 409 and "being deleted" in conflict.json()["error"]["message"]
    wait_gone(client, owner, gw)
    assert all(ray_driver.observe(gw, env).status is AppStatus.MISSING for env in ENVS)
    assert not any(name.startswith(f"{gw}-") for name in ray_driver.list_apps())
    assert f"gatewayid_{gw}" not in plane.mongo.list_database_names()
    sys_db = plane.mongo[plane.settings.sys_db_name]
    assert sys_db.environments.count_documents({"gatewayId": gw}) == 0
    assert sys_db.api_gateways.count_documents({"gatewayId": gw}) == 0
    reasons = [e["reason"] for e in sys_db.events.find({"gatewayId": gw})]
    assert reasons.count("Transition") >= 12


def test_invalid_and_duplicate_gateway_ids(
    lifecycle_client: TestClient, owner: dict[str, str], unique_gateway: UniqueGateway
) -> None:
    client = lifecycle_client
    bad = client.post("/v1/api-gateways", json={"name": "x", "gatewayId": "Not_Valid!"}, headers=owner)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
    gw = unique_gateway()
    body = {"name": "dup", "gatewayId": gw, "bundle": SMALL_BUNDLE}
    assert client.post("/v1/api-gateways", json=body, headers=owner).status_code == 202
    again = client.post("/v1/api-gateways", json=body, headers=owner)
    assert again.status_code == 409 and gw in again.json()["error"]["message"]
    bad_bundle = client.post(
        "/v1/api-gateways", json={"name": "b", "bundle": {"minReplicas": 3, "maxReplicas": 1}}, headers=owner
    )
    assert bad_bundle.status_code == 422
    client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    wait_gone(client, owner, gw)


def test_gateway_id_is_derived_from_the_name(lifecycle_client: TestClient, owner: dict[str, str]) -> None:
    import uuid

    name = f"Hometax {uuid.uuid4().hex[:6]}"
    created = lifecycle_client.post(
        "/v1/api-gateways", json={"name": name, "bundle": SMALL_BUNDLE}, headers=owner
    )
    assert created.status_code == 202
    gw = created.json()["gatewayId"]
    assert gw == name.lower().replace(" ", "-")
    lifecycle_client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    wait_gone(lifecycle_client, owner, gw)


def test_other_users_gateways_are_invisible(
    lifecycle_client: TestClient, owner: dict[str, str], unique_gateway: UniqueGateway
) -> None:
    client, gw = lifecycle_client, unique_gateway()
    assert (
        client.post(
            "/v1/api-gateways", json={"name": "mine", "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=owner
        ).status_code
        == 202
    )
    client.post("/v1/auth/register", json={"username": f"intruder-{gw}", "password": "correct-horse-battery"})
    token = client.post(
        "/v1/auth/login", json={"username": f"intruder-{gw}", "password": "correct-horse-battery"}
    ).json()["token"]
    intruder = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/v1/api-gateways/{gw}", headers=intruder).status_code == 404
    assert client.delete(f"/v1/api-gateways/{gw}", headers=intruder).status_code == 404
    assert client.get(f"/v1/api-gateways/{gw}/events", headers=intruder).status_code == 404
    assert gw not in [g["gatewayId"] for g in client.get("/v1/api-gateways", headers=intruder).json()]
    assert gw in [g["gatewayId"] for g in client.get("/v1/api-gateways", headers=owner).json()]
    assert client.get("/v1/api-gateways", headers={}).status_code == 401
    client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    wait_gone(client, owner, gw)


def test_environments_patch_and_unknown_environment(
    lifecycle_client: TestClient, owner: dict[str, str], unique_gateway: UniqueGateway
) -> None:
    client, gw = lifecycle_client, unique_gateway()
    client.post(
        "/v1/api-gateways", json={"name": "envs", "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=owner
    )
    assert eventually(
        lambda: len(client.get(f"/v1/api-gateways/{gw}/environments", headers=owner).json()) == 3
    )
    envs = client.get(f"/v1/api-gateways/{gw}/environments", headers=owner).json()
    assert [e["authType"] for e in envs] == ["key-auth"] * 3

    patched = client.patch(
        f"/v1/api-gateways/{gw}/environments/prod",
        json={"authType": "none", "rateLimit": {"count": 10, "windowSeconds": 60}},
        headers=owner,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["authType"] == "none" and patched.json()["rateLimit"] == {
        "count": 10,
        "windowSeconds": 60,
    }
    cleared = client.patch(
        f"/v1/api-gateways/{gw}/environments/prod", json={"rateLimit": None}, headers=owner
    )
    assert cleared.json()["rateLimit"] is None and cleared.json()["authType"] == "none"

    assert (
        client.patch(
            f"/v1/api-gateways/{gw}/environments/qa", json={"authType": "none"}, headers=owner
        ).status_code
        == 404
    )
    bad = client.patch(f"/v1/api-gateways/{gw}/environments/dev", json={"authType": "basic"}, headers=owner)
    assert bad.status_code == 422
    zero = client.patch(
        f"/v1/api-gateways/{gw}/environments/dev",
        json={"rateLimit": {"count": 0, "windowSeconds": 1}},
        headers=owner,
    )
    assert zero.status_code == 422

    client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    late = client.patch(f"/v1/api-gateways/{gw}/environments/dev", json={"authType": "none"}, headers=owner)
    assert late.status_code in (404, 409)
    if late.status_code == 409:
        assert "phase" in late.json()["error"]["message"]
    wait_gone(client, owner, gw)


def test_promotion_pipeline_patch(
    lifecycle_client: TestClient, owner: dict[str, str], unique_gateway: UniqueGateway
) -> None:
    client, gw = lifecycle_client, unique_gateway()
    client.post(
        "/v1/api-gateways", json={"name": "pipe", "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=owner
    )
    ok = client.patch(
        f"/v1/api-gateways/{gw}",
        json={"promotionPipeline": {"enabled": True, "stages": ["dev", "prod"]}},
        headers=owner,
    )
    assert ok.status_code == 200 and ok.json()["promotionPipeline"] == {
        "enabled": True,
        "stages": ["dev", "prod"],
    }
    assert client.get(f"/v1/api-gateways/{gw}", headers=owner).json()["promotionPipeline"]["stages"] == [
        "dev",
        "prod",
    ]
    wrong_order = client.patch(
        f"/v1/api-gateways/{gw}",
        json={"promotionPipeline": {"enabled": True, "stages": ["prod", "dev"]}},
        headers=owner,
    )
    assert wrong_order.status_code == 422
    client.delete(f"/v1/api-gateways/{gw}", headers=owner)
    wait_gone(client, owner, gw)
