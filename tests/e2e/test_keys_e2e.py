"""API keys end to end: an application's grant opens one environment of one gateway; regenerate and
revoke take effect within a second; rate limits answer 429 and recover; no plaintext key is stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import served, small_bundle, wait_started
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices

HELLO = "def main(req):\n    return {'hello': 'keys'}\n"


@pytest.fixture(scope="module")
def keyed_gateway(
    e2e_client: TestClient, e2e_user: dict[str, str], data_plane: httpx.Client, tier: str
) -> Iterator[str]:
    gw = f"keys-{uuid.uuid4().hex[:6]}"
    api, auth = e2e_client, e2e_user
    api.post(
        "/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": small_bundle(tier)}, headers=auth
    )
    wait_started(api, auth, gw)
    api.post(f"/v1/api-gateways/{gw}/functions", json={"name": "hello", "code": HELLO}, headers=auth)
    for env in ("dev", "prod"):
        assert (
            api.post(
                f"/v1/api-gateways/{gw}/functions/hello/publish", json={"environment": env}, headers=auth
            ).status_code
            == 200
        )
    served(data_plane, "GET", f"/{gw}/prod/hello", lambda r: r.status_code == 401)
    yield gw
    api.delete(f"/v1/api-gateways/{gw}", headers=auth)


def within_a_second(data_plane: httpx.Client, path: str, key: str, status: int) -> float:
    """Seconds until ``path`` called with ``key`` answers ``status``; fails past one second."""
    started = time.monotonic()
    ok = eventually(
        lambda: data_plane.get(path, headers={"apikey": key}).status_code == status,
        timeout=1.0,
        interval=0.01,
    )
    assert ok, f"{path} did not answer {status} within one second"
    return time.monotonic() - started


def test_grant_regenerate_revoke(
    e2e_client: TestClient, e2e_user: dict[str, str], keyed_gateway: str, data_plane: httpx.Client
) -> None:
    api, auth, gw = e2e_client, e2e_user, keyed_gateway
    app = api.post("/v1/applications", json={"name": "mobile"}, headers=auth)
    assert app.status_code == 201
    app_id = app.json()["applicationId"]
    grant = api.post(
        f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "prod"}, headers=auth
    )
    assert grant.status_code == 201, grant.text
    key, grant_id = grant.json()["apiKey"], grant.json()["grantId"]
    assert key.startswith("imp_prod_")
    listed = api.get(f"/v1/applications/{app_id}/grants", headers=auth).json()
    assert key not in str(listed) and listed[0]["grantId"] == grant_id

    ok = served(
        data_plane, "GET", f"/{gw}/prod/hello", lambda r: r.status_code == 200, headers={"apikey": key}
    )
    assert ok.json() == {"hello": "keys"}
    assert data_plane.get(f"/{gw}/prod/hello", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert data_plane.get(f"/{gw}/prod/hello").status_code == 401
    assert data_plane.get(f"/{gw}/prod/hello", headers={"apikey": "imp_prod_" + "x" * 43}).status_code == 401
    assert data_plane.get(f"/{gw}/prod/hello", headers={"apikey": "\u00e9\u00e9".encode()}).status_code == 401
    assert data_plane.get(f"/{gw}/dev/hello", headers={"apikey": key}).status_code == 403

    again = api.post(
        f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "prod"}, headers=auth
    )
    assert again.status_code == 409

    regenerated = api.post(f"/v1/applications/{app_id}/grants/{grant_id}/regenerate", headers=auth)
    assert regenerated.status_code == 200
    new_key = regenerated.json()["apiKey"]
    within_a_second(data_plane, f"/{gw}/prod/hello", key, 401)
    within_a_second(data_plane, f"/{gw}/prod/hello", new_key, 200)

    assert api.delete(f"/v1/applications/{app_id}/grants/{grant_id}", headers=auth).status_code in (
        200,
        202,
        204,
    )
    within_a_second(data_plane, f"/{gw}/prod/hello", new_key, 401)


def test_rate_limit_then_recovery(
    e2e_client: TestClient, e2e_user: dict[str, str], keyed_gateway: str, data_plane: httpx.Client
) -> None:
    api, auth, gw = e2e_client, e2e_user, keyed_gateway
    app_id = api.post("/v1/applications", json={"name": "limited"}, headers=auth).json()["applicationId"]
    key = api.post(
        f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "dev"}, headers=auth
    ).json()["apiKey"]
    limit = {"rateLimit": {"count": 3, "windowSeconds": 2}}
    assert api.patch(f"/v1/api-gateways/{gw}/environments/dev", json=limit, headers=auth).status_code == 200
    headers = {"apikey": key}

    def limited() -> bool:
        statuses = [data_plane.get(f"/{gw}/dev/hello", headers=headers).status_code for _ in range(5)]
        return statuses.count(429) >= 2

    assert eventually(limited, timeout=15), "the environment's rate limit never applied"
    rejected = data_plane.get(f"/{gw}/dev/hello", headers=headers)
    assert rejected.status_code == 429 and int(rejected.headers["Retry-After"]) >= 1
    assert rejected.json()["error"]["code"] == "rate_limited"
    assert eventually(
        lambda: data_plane.get(f"/{gw}/dev/hello", headers=headers).status_code == 200, timeout=10
    )
    api.patch(f"/v1/api-gateways/{gw}/environments/dev", json={"rateLimit": None}, headers=auth)


def test_auth_type_none_serves_without_a_key(
    e2e_client: TestClient, e2e_user: dict[str, str], keyed_gateway: str, data_plane: httpx.Client
) -> None:
    api, auth, gw = e2e_client, e2e_user, keyed_gateway
    assert (
        api.patch(
            f"/v1/api-gateways/{gw}/environments/dev", json={"authType": "none"}, headers=auth
        ).status_code
        == 200
    )
    served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 200)
    assert data_plane.get(f"/{gw}/prod/hello").status_code == 401, "other environments keep key-auth"
    api.patch(f"/v1/api-gateways/{gw}/environments/dev", json={"authType": "key-auth"}, headers=auth)
    served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 401)


def test_a_forged_forwarded_for_does_not_open_a_fresh_rate_limit_bucket(
    e2e_client: TestClient, e2e_user: dict[str, str], keyed_gateway: str, data_plane: httpx.Client
) -> None:
    """``authType: none`` counts per client address, which the ingress sets from the connection: a
    caller that sends its own ``X-Forwarded-For`` is still counted as itself."""
    api, auth, gw = e2e_client, e2e_user, keyed_gateway
    dev = f"/v1/api-gateways/{gw}/environments/dev"
    anonymous = {"authType": "none", "rateLimit": {"count": 2, "windowSeconds": 60}}
    assert api.patch(dev, json=anonymous, headers=auth).status_code == 200
    try:
        assert eventually(lambda: data_plane.get(f"/{gw}/dev/hello").status_code == 429, timeout=15)
        forged = [
            data_plane.get(f"/{gw}/dev/hello", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(1, 4)
        ]
        assert forged == [429, 429, 429]
    finally:
        api.patch(dev, json={"authType": "key-auth", "rateLimit": None}, headers=auth)


def test_no_plaintext_key_anywhere(
    e2e_client: TestClient,
    e2e_user: dict[str, str],
    keyed_gateway: str,
    data_plane: httpx.Client,
    services: RunningServices,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After grant, call, regenerate and revoke: scan every MongoDB collection, Redis and the logs."""
    import logging

    caplog.set_level(logging.DEBUG)
    api, auth, gw = e2e_client, e2e_user, keyed_gateway
    app_id = api.post("/v1/applications", json={"name": "scan"}, headers=auth).json()["applicationId"]
    grant = api.post(
        f"/v1/applications/{app_id}/grants", json={"gatewayId": gw, "environment": "prod"}, headers=auth
    ).json()
    keys = [grant["apiKey"]]
    served(
        data_plane, "GET", f"/{gw}/prod/hello", lambda r: r.status_code == 200, headers={"apikey": keys[0]}
    )
    keys.append(
        api.post(f"/v1/applications/{app_id}/grants/{grant['grantId']}/regenerate", headers=auth).json()[
            "apiKey"
        ]
    )
    served(
        data_plane, "GET", f"/{gw}/prod/hello", lambda r: r.status_code == 200, headers={"apikey": keys[1]}
    )
    api.delete(f"/v1/applications/{app_id}/grants/{grant['grantId']}", headers=auth)
    secrets = [part for key in keys for part in (key, key.rsplit("_", 1)[1])]

    plane = e2e_client.app.state.plane  # type: ignore[attr-defined]
    for db_name in plane.mongo.list_database_names():
        for collection in plane.mongo[db_name].list_collection_names():
            for doc in plane.mongo[db_name][collection].find():
                text = str(doc)
                assert not any(s in text for s in secrets), f"plaintext key in {db_name}.{collection}"
    for redis_key in plane.redis.scan_iter("*"):
        kind = plane.redis.type(redis_key)
        if kind == "string":
            value = str(plane.redis.get(redis_key))
        elif kind == "hash":
            value = str(plane.redis.hgetall(redis_key))
        elif kind == "stream":
            value = str(plane.redis.xrange(redis_key))
        elif kind == "list":
            value = str(plane.redis.lrange(redis_key, 0, -1))
        elif kind == "set":
            value = str(plane.redis.smembers(redis_key))
        elif kind == "zset":
            value = str(plane.redis.zrange(redis_key, 0, -1))
        else:
            value = ""
        assert not any(s in value or s in redis_key for s in secrets), f"plaintext key in redis {redis_key}"
    assert not any(s in caplog.text for s in secrets), "plaintext key in the control plane's logs"
