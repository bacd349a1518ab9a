"""The variables API against a real control plane (nx-27017, Redis): validation, masking, ownership,
encryption at rest, the generation bump that hot-reloads replicas, and cleanup with the gateway."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import VARIABLES
from tests.fixtures.polling import eventually
from tests.platform.functions.conftest import Headers, new_gateway, register

SECRET = "s3cr3t-" + uuid.uuid4().hex


def url(gw: str, env: str = "dev", name: str | None = None) -> str:
    base = f"/v1/api-gateways/{gw}/environments/{env}/variables"
    return base if name is None else f"{base}/{name}"


@pytest.fixture(scope="module")
def vars_gateway(functions_client: TestClient, owner: Headers) -> Iterator[str]:
    yield new_gateway(functions_client, owner)


def needles(value: str) -> list[str]:
    raw = value.encode()
    return [value, raw.hex(), base64.b64encode(raw).decode(), base64.b64encode(raw[7:]).decode()]


def all_documents(plane: Any) -> str:
    """Every document of every database, as text (binary values in hex and base64 too)."""
    seen: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, bytes):
            seen.extend([value.hex(), base64.b64encode(value).decode(), value.decode("latin-1")])
        else:
            seen.append(str(value))

    for db_name in plane.mongo.list_database_names():
        db = plane.mongo[db_name]
        for collection in db.list_collection_names():
            for doc in db[collection].find():
                walk(doc)
    return "\n".join(seen)


def test_plain_and_secret_values_are_stored_sealed_and_secrets_are_masked(
    functions_client: TestClient, owner: Headers, vars_gateway: str, plane: Any
) -> None:
    api, gw = functions_client, vars_gateway
    plain = api.put(url(gw, name="GREETING"), json={"value": "hello there", "secret": False}, headers=owner)
    assert plain.status_code == 200, plain.text
    assert plain.json()["value"] == "hello there" and plain.json()["masked"] is False

    put = api.put(url(gw, name="API_TOKEN"), json={"value": SECRET, "secret": True}, headers=owner)
    assert put.status_code == 200, put.text
    assert put.json() | {"updatedAt": None, "updatedBy": None} == {
        "name": "API_TOKEN",
        "environment": "dev",
        "secret": True,
        "value": None,
        "masked": True,
        "updatedAt": None,
        "updatedBy": None,
    }
    listed = api.get(url(gw), headers=owner)
    one = api.get(url(gw, name="API_TOKEN"), headers=owner)
    assert listed.status_code == one.status_code == 200
    assert {v["name"]: v["value"] for v in listed.json()} == {"API_TOKEN": None, "GREETING": "hello there"}
    assert one.json()["masked"] is True and one.json()["value"] is None
    for response in (put, listed, one):
        assert SECRET not in response.text

    documents = all_documents(plane)
    for needle in needles(SECRET) + needles("hello there"):
        assert needle not in documents, f"{needle!r} is stored in MongoDB in clear"
    stored = plane.mongo[plane.settings.sys_db_name][VARIABLES].find_one({"_id": f"{gw}/dev/API_TOKEN"})
    assert stored["secret"] is True and len(stored["nonce"]) == 12 and stored["keyVersion"] == 1


def test_a_write_bumps_the_environment_generation(
    functions_client: TestClient, owner: Headers, vars_gateway: str, plane: Any
) -> None:
    feed = RuntimeFeed(plane.mongo[plane.settings.sys_db_name], plane.redis)
    before = {env: feed.generation(vars_gateway, env) for env in ("dev", "prod")}
    response = functions_client.put(url(vars_gateway, "prod", "REGION"), json={"value": "eu"}, headers=owner)
    assert response.status_code == 200
    assert feed.generation(vars_gateway, "prod") > before["prod"]
    assert feed.generation(vars_gateway, "dev") == before["dev"]
    deleted = functions_client.delete(url(vars_gateway, "prod", "REGION"), headers=owner)
    assert deleted.status_code == 204
    assert feed.generation(vars_gateway, "prod") > before["prod"] + 1


@pytest.mark.parametrize("name", ["1ABC", "with-dash", "has.dot", "x" * 129, "caf\u00e9", "sp ace"])
def test_a_name_that_is_not_an_identifier_is_refused(
    functions_client: TestClient, owner: Headers, vars_gateway: str, name: str
) -> None:
    response = functions_client.put(url(vars_gateway, name=name), json={"value": "v"}, headers=owner)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
    assert functions_client.get(url(vars_gateway, name=name), headers=owner).status_code == 422


def test_bad_bodies_are_refused_without_echoing_the_value(
    functions_client: TestClient, owner: Headers, vars_gateway: str
) -> None:
    api, gw = functions_client, vars_gateway
    huge = api.put(url(gw, name="BIG"), json={"value": "x" * (32 * 1024 + 1), "secret": True}, headers=owner)
    assert huge.status_code == 422 and "x" * 100 not in huge.text
    assert api.put(url(gw, name="BIG"), json={"value": "x" * 32 * 1024}, headers=owner).status_code == 200
    for body in (
        {"secret": True},
        {"value": 5},
        {"value": "v", "secret": "maybe"},
        {"value": "v", "extra": 1},
    ):
        response = api.put(url(gw, name="OK_NAME"), json=body, headers=owner)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid"


def test_another_users_gateway_and_unknown_places_are_not_found(
    functions_client: TestClient, owner: Headers, vars_gateway: str
) -> None:
    api, gw = functions_client, vars_gateway
    assert (
        api.put(url(gw, name="MINE"), json={"value": "v", "secret": True}, headers=owner).status_code == 200
    )
    stranger = register(api)
    assert api.get(url(gw), headers=stranger).status_code == 404
    assert api.get(url(gw, name="MINE"), headers=stranger).status_code == 404
    assert api.put(url(gw, name="MINE"), json={"value": "x"}, headers=stranger).status_code == 404
    assert api.delete(url(gw, name="MINE"), headers=stranger).status_code == 404
    assert api.get(url(gw, name="MINE"), headers=owner).json()["masked"] is True  # untouched
    assert api.get(url(gw, "qa"), headers=owner).status_code == 404
    assert api.get(url("no-such-gw"), headers=owner).status_code == 404
    assert api.get(url(gw, name="NEVER_SET"), headers=owner).status_code == 404
    assert api.get(url(gw)).status_code == 401
    assert api.delete(url(gw, name="MINE"), headers=owner).status_code == 204
    missing = api.delete(url(gw, name="MINE"), headers=owner)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_variables_belong_to_one_environment(
    functions_client: TestClient, owner: Headers, vars_gateway: str
) -> None:
    api, gw = functions_client, vars_gateway
    assert (
        api.put(url(gw, "staging", name="ONLY_STAGING"), json={"value": "s"}, headers=owner).status_code
        == 200
    )
    assert "ONLY_STAGING" not in {v["name"] for v in api.get(url(gw, "prod"), headers=owner).json()}
    assert "ONLY_STAGING" not in {v["name"] for v in api.get(url(gw, "dev"), headers=owner).json()}


def test_deleting_the_gateway_forgets_its_variables(functions_client: TestClient, plane: Any) -> None:
    headers = register(functions_client)
    gw = new_gateway(functions_client, headers)
    assert (
        functions_client.put(url(gw, name="GONE"), json={"value": "bye"}, headers=headers).status_code == 200
    )
    collection = plane.mongo[plane.settings.sys_db_name][VARIABLES]
    assert collection.count_documents({"gatewayId": gw}) == 1
    assert functions_client.delete(f"/v1/api-gateways/{gw}", headers=headers).status_code == 202
    assert eventually(lambda: collection.count_documents({"gatewayId": gw}) == 0, timeout=30, interval=0.1)


def test_a_value_can_be_changed_and_made_secret(
    functions_client: TestClient, owner: Headers, vars_gateway: str
) -> None:
    api, gw = functions_client, vars_gateway
    assert api.put(url(gw, name="REGION"), json={"value": "eu"}, headers=owner).status_code == 200
    changed = api.put(url(gw, name="REGION"), json={"value": "us"}, headers=owner)
    assert changed.status_code == 200, changed.text
    assert api.get(url(gw, name="REGION"), headers=owner).json()["value"] == "us"
    hidden = api.put(url(gw, name="REGION"), json={"value": "ap", "secret": True}, headers=owner)
    assert hidden.status_code == 200 and hidden.json()["masked"] is True
