"""Applications and grants over the real API, enforced through the real ``EmbeddedIngressDriver`` and
reconcile loop: what ``__consumers`` and ``__environments`` hold and how fast they follow, the
generation counter and reload announcement, ownership and conflict rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from imprun.api.context import ControlPlane
from tests.platform.access.conftest import (
    REVOKE_DEADLINE,
    KeyLedger,
    consumer,
    consumers,
    environment_settings,
    generation,
    lookup_hash,
    new_application,
    new_gateway,
    wait_for,
)
from tests.platform.functions.conftest import Headers, InMemoryCluster, register, wait_for_phase

Grant = Callable[..., dict[str, Any]]
KEY_FIELDS = {"apiKey", "lookupHash", "sealedKey", "keyCiphertext", "ciphertext", "nonce"}


def applied(client: TestClient, headers: Headers, app: str, grant_id: str) -> bool:
    grants = client.get(f"/v1/applications/{app}/grants", headers=headers).json()
    return any(g["grantId"] == grant_id and g["applied"] for g in grants)


# --- applications ----------------------------------------------------------------------------------


def test_applications_are_created_listed_patched_and_private(
    access_client: TestClient, owner: Headers
) -> None:
    response = access_client.post(
        "/v1/applications",
        json={"name": "billing", "description": "invoices", "organization": "acme"},
        headers=owner,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    app = created["applicationId"]
    assert {k: created[k] for k in ("name", "description", "organization")} == {
        "name": "billing",
        "description": "invoices",
        "organization": "acme",
    }
    assert created["createdAt"]
    assert app in [a["applicationId"] for a in access_client.get("/v1/applications", headers=owner).json()]
    patched = access_client.patch(
        f"/v1/applications/{app}", json={"name": "billing-v2", "organization": None}, headers=owner
    ).json()
    assert (patched["name"], patched["description"], patched["organization"]) == (
        "billing-v2",
        "invoices",
        None,
    )
    assert access_client.get(f"/v1/applications/{app}", headers=owner).json()["name"] == "billing-v2"

    stranger = register(access_client)
    assert app not in [
        a["applicationId"] for a in access_client.get("/v1/applications", headers=stranger).json()
    ]
    for method, path, body in [
        ("GET", f"/v1/applications/{app}", None),
        ("PATCH", f"/v1/applications/{app}", {"name": "mine"}),
        ("DELETE", f"/v1/applications/{app}", None),
        ("GET", f"/v1/applications/{app}/grants", None),
    ]:
        response = access_client.request(method, path, json=body, headers=stranger)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert access_client.post("/v1/applications", json={"name": ""}, headers=owner).status_code == 422
    assert access_client.get("/v1/applications").status_code == 401


# --- grants ----------------------------------------------------------------------------------------


def test_a_grant_shows_its_key_once_and_publishes_only_its_lookup_hash(
    access_client: TestClient,
    owner: Headers,
    gateway: str,
    application: str,
    grant: Grant,
    plane: ControlPlane,
) -> None:
    before = generation(plane, gateway, "dev")
    body = grant(application, gateway, "dev")
    key = body["apiKey"]
    assert key.startswith("imp_dev_") and len(key) == len("imp_dev_") + 43
    assert body["keyPrefix"] == key[:12] and body["gatewayId"] == gateway and body["environment"] == "dev"
    assert {"grantId", "credentialId", "createdAt", "applicationId"} <= set(body)

    wait_for(lambda: consumer(plane, gateway, body["credentialId"]) is not None, "the consumer document")
    assert consumer(plane, gateway, body["credentialId"]) == {
        "_id": body["credentialId"],
        "credentialId": body["credentialId"],
        "grantId": body["grantId"],
        "applicationId": application,
        "environment": "dev",
        "lookupHash": lookup_hash(plane, key),
        "active": True,
        "rateLimit": None,
    }
    wait_for(
        lambda: generation(plane, gateway, "dev") > before, "the generation bump after the write", timeout=2
    )

    wait_for(lambda: applied(access_client, owner, application, body["grantId"]), "the grant to show applied")
    listed = access_client.get(f"/v1/applications/{application}/grants", headers=owner).json()
    assert [g["grantId"] for g in listed] == [body["grantId"]]
    assert not KEY_FIELDS & set(listed[0]) and key not in str(listed) and key[12:] not in str(listed)
    assert listed[0]["keyPrefix"] == key[:12] and listed[0]["status"] == "active"


def test_a_grant_may_carry_its_own_rate_limit(
    gateway: str, application: str, grant: Grant, plane: ControlPlane
) -> None:
    body = grant(application, gateway, "staging", rateLimit={"count": 3, "windowSeconds": 10})
    assert body["rateLimit"] == {"count": 3, "windowSeconds": 10}
    wait_for(lambda: consumer(plane, gateway, body["credentialId"]) is not None, "the consumer document")
    assert consumer(plane, gateway, body["credentialId"])["rateLimit"] == {"count": 3, "windowSeconds": 10}  # type: ignore[index]


def test_regenerating_replaces_the_published_hash_within_a_second(
    access_client: TestClient,
    owner: Headers,
    gateway: str,
    application: str,
    grant: Grant,
    plane: ControlPlane,
    ledger: KeyLedger,
    reload_messages: Callable[[], list[str]],
) -> None:
    first = grant(application, gateway, "prod")
    old_hash = lookup_hash(plane, first["apiKey"])
    wait_for(lambda: applied(access_client, owner, application, first["grantId"]), "the first key")
    before = generation(plane, gateway, "prod")
    reload_messages()

    started = time.monotonic()
    response = access_client.post(
        f"/v1/applications/{application}/grants/{first['grantId']}/regenerate", headers=owner
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    new_key = ledger.add(second["apiKey"])
    assert new_key != first["apiKey"] and new_key.startswith("imp_prod_")
    assert (second["grantId"], second["credentialId"]) == (first["grantId"], first["credentialId"])
    new_hash = lookup_hash(plane, new_key)

    def only_the_new_hash() -> bool:
        hashes = {c["lookupHash"] for c in consumers(plane, gateway)}
        return new_hash in hashes and old_hash not in hashes

    wait_for(only_the_new_hash, "only the new hash in __consumers", timeout=REVOKE_DEADLINE)
    elapsed = time.monotonic() - started
    assert elapsed < REVOKE_DEADLINE
    wait_for(
        lambda: generation(plane, gateway, "prod") > before, "the generation bump after the write", timeout=2
    )
    wait_for(lambda: f"{gateway}/prod" in reload_messages(), "the reload announcement", timeout=2)


def test_revoking_removes_the_credential_within_a_second_and_frees_the_slot(
    access_client: TestClient,
    owner: Headers,
    gateway: str,
    application: str,
    grant: Grant,
    plane: ControlPlane,
    reload_messages: Callable[[], list[str]],
) -> None:
    body = grant(application, gateway, "dev")
    credential_id = body["credentialId"]
    wait_for(lambda: applied(access_client, owner, application, body["grantId"]), "the key to be applied")
    before = generation(plane, gateway, "dev")
    reload_messages()

    started = time.monotonic()
    response = access_client.delete(f"/v1/applications/{application}/grants/{body['grantId']}", headers=owner)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "revoked"

    def revoked() -> bool:
        doc = consumer(plane, gateway, credential_id)
        return doc is None or doc["active"] is False

    wait_for(revoked, "the credential to be gone", timeout=REVOKE_DEADLINE)
    assert time.monotonic() - started < REVOKE_DEADLINE
    wait_for(
        lambda: generation(plane, gateway, "dev") > before, "the generation bump after the write", timeout=2
    )
    wait_for(lambda: f"{gateway}/dev" in reload_messages(), "the reload announcement", timeout=2)
    # The revoked grant disappears once its credential is gone; its slot is free again.
    wait_for(
        lambda: access_client.get(f"/v1/applications/{application}/grants", headers=owner).json() == [],
        "the revoked grant to be removed",
    )
    again = grant(application, gateway, "dev")
    assert again["credentialId"] != credential_id


def test_one_active_grant_per_application_and_environment(
    access_client: TestClient, owner: Headers, gateway: str, application: str, grant: Grant
) -> None:
    first = grant(application, gateway, "dev")
    response = access_client.post(
        f"/v1/applications/{application}/grants",
        json={"gatewayId": gateway, "environment": "dev"},
        headers=owner,
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict" and "revoke" in error["message"]
    assert first["apiKey"] not in response.text
    # Other environments, and other applications, are separate slots.
    grant(application, gateway, "staging")
    grant(new_application(access_client, owner), gateway, "dev")


def test_grants_only_for_your_own_live_gateways_and_known_environments(
    access_client: TestClient, owner: Headers, application: str, access_cluster: InMemoryCluster
) -> None:
    other = register(access_client)
    their_gateway = new_gateway(access_client, other)
    url = f"/v1/applications/{application}/grants"
    response = access_client.post(url, json={"gatewayId": their_gateway, "environment": "dev"}, headers=owner)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = access_client.post(url, json={"gatewayId": "no-such-gw", "environment": "dev"}, headers=owner)
    assert response.status_code == 404

    mine = new_gateway(access_client, owner)
    response = access_client.post(url, json={"gatewayId": mine, "environment": "qa"}, headers=owner)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"
    # Someone else's application is not found, even with a gateway of your own.
    response = access_client.post(url, json={"gatewayId": their_gateway, "environment": "dev"}, headers=other)
    assert response.status_code == 404

    access_cluster.hold_deletes(mine)  # keep the gateway in Deleting while we try
    try:
        assert access_client.delete(f"/v1/api-gateways/{mine}", headers=owner).status_code == 202
        response = access_client.post(url, json={"gatewayId": mine, "environment": "dev"}, headers=owner)
        assert response.status_code == 409, response.text
        assert "being deleted" in response.json()["error"]["message"]
    finally:
        access_cluster.release_deletes(mine)


def test_deleting_an_application_revokes_its_grants(
    access_client: TestClient, owner: Headers, gateway: str, grant: Grant, plane: ControlPlane
) -> None:
    app = new_application(access_client, owner)
    dev, prod = grant(app, gateway, "dev"), grant(app, gateway, "prod")
    wait_for(lambda: applied(access_client, owner, app, prod["grantId"]), "the grants to be applied")
    response = access_client.delete(f"/v1/applications/{app}", headers=owner)
    assert response.status_code == 200, response.text
    assert sorted(response.json()["revokedGrants"]) == sorted([dev["grantId"], prod["grantId"]])
    wait_for(
        lambda: all(consumer(plane, gateway, g["credentialId"]) is None for g in (dev, prod)),
        "the credentials to be gone",
        timeout=REVOKE_DEADLINE,
    )
    assert access_client.get(f"/v1/applications/{app}", headers=owner).status_code == 404
    assert access_client.get(f"/v1/applications/{app}/grants", headers=owner).status_code == 404
    grants = plane.mongo[plane.settings.sys_db_name].application_grants
    wait_for(lambda: grants.count_documents({"applicationId": app}) == 0, "the grant records to be removed")


def test_deleting_a_gateway_removes_its_grants(
    access_client: TestClient, owner: Headers, grant: Grant, plane: ControlPlane
) -> None:
    gw = new_gateway(access_client, owner)
    app = new_application(access_client, owner)
    body = grant(app, gw, "dev")
    wait_for(lambda: applied(access_client, owner, app, body["grantId"]), "the grant to be applied")
    assert access_client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
    wait_for(
        lambda: access_client.get(f"/v1/applications/{app}/grants", headers=owner).json() == [],
        "the gateway's grants to be removed",
    )
    wait_for(
        lambda: access_client.get(f"/v1/api-gateways/{gw}", headers=owner).status_code == 404,
        "the gateway to be gone",
    )
    assert f"gatewayid_{gw}" not in plane.mongo.list_database_names()


def test_a_grant_made_while_the_gateway_is_provisioned_waits_for_its_database(
    access_client: TestClient, owner: Headers, grant: Grant, plane: ControlPlane
) -> None:
    gw = new_gateway(access_client, owner, wait=False)
    app = new_application(access_client, owner)
    body = grant(app, gw, "dev")
    wait_for(lambda: consumer(plane, gw, body["credentialId"]) is not None, "the consumer document")
    # The gateway reconciler created the database with its indexes (the consumer did not pre-empt it).
    indexes = plane.mongo[f"gatewayid_{gw}"]["__consumers"].index_information().values()
    unique_keys = {tuple(name for name, _ in index["key"]) for index in indexes if index.get("unique")}
    assert {("environment", "lookupHash"), ("credentialId",)} <= unique_keys
    wait_for_phase(access_client, owner, gw, "Started")


# --- environment settings --------------------------------------------------------------------------


def test_environment_auth_type_and_rate_limit_reach_the_replicas(
    access_client: TestClient,
    owner: Headers,
    gateway: str,
    plane: ControlPlane,
    reload_messages: Callable[[], list[str]],
) -> None:
    for env in ("dev", "staging", "prod"):  # published when the environments came up
        wait_for(lambda env=env: environment_settings(plane, gateway, env) is not None, f"{env} settings")  # type: ignore[misc]
        assert environment_settings(plane, gateway, env) == {
            "_id": env,
            "environment": env,
            "authType": "key-auth",
            "rateLimit": None,
        }
    before = generation(plane, gateway, "staging")
    reload_messages()
    response = access_client.patch(
        f"/v1/api-gateways/{gateway}/environments/staging",
        json={"authType": "none", "rateLimit": {"count": 20, "windowSeconds": 60}},
        headers=owner,
    )
    assert response.status_code == 200, response.text
    wanted = {
        "_id": "staging",
        "environment": "staging",
        "authType": "none",
        "rateLimit": {"count": 20, "windowSeconds": 60},
    }
    wait_for(lambda: environment_settings(plane, gateway, "staging") == wanted, "the new settings", timeout=5)
    wait_for(
        lambda: generation(plane, gateway, "staging") > before,
        "the generation bump after the write",
        timeout=2,
    )
    wait_for(lambda: f"{gateway}/staging" in reload_messages(), "the reload announcement", timeout=2)

    response = access_client.patch(
        f"/v1/api-gateways/{gateway}/environments/staging",
        json={"authType": "key-auth", "rateLimit": None},
        headers=owner,
    )
    assert response.status_code == 200, response.text
    wanted = {"_id": "staging", "environment": "staging", "authType": "key-auth", "rateLimit": None}
    wait_for(
        lambda: environment_settings(plane, gateway, "staging") == wanted, "the settings back", timeout=5
    )
    assert environment_settings(plane, gateway, "dev")["authType"] == "key-auth"  # type: ignore[index]
