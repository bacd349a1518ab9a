"""The product, end to end on the embedded stack: write a function, publish it, call it over HTTP,
change it and see the new code served, promote it through the stages, debug-run it, delete it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import make_public, served, small_bundle, wait_started

HELLO_V1 = """
def main(req):
    return {"hello": "world", "version": 1}
"""

HELLO_V2 = """
async def main(req):
    return {"hello": "world", "version": 2}
"""

TAX = '''
def main(income: float, deductions: float = 0):
    """Korean-style flat tax for the tour.

    Args:
        income: yearly income
        deductions: amount deducted before tax
    """
    return {"tax": (income - deductions) * 0.22}
'''


@pytest.fixture(scope="module")
def gateway(e2e_client: TestClient, e2e_user: dict[str, str], tier: str) -> Iterator[str]:
    gw = f"fn-{uuid.uuid4().hex[:8]}"
    created = e2e_client.post(
        "/v1/api-gateways",
        json={"name": "functions e2e", "gatewayId": gw, "bundle": small_bundle(tier)},
        headers=e2e_user,
    )
    assert created.status_code == 202, created.text
    wait_started(e2e_client, e2e_user, gw)
    make_public(e2e_client, e2e_user, gw)
    yield gw
    e2e_client.delete(f"/v1/api-gateways/{gw}", headers=e2e_user)


def test_publish_call_change_promote_debug_delete(
    e2e_client: TestClient, e2e_user: dict[str, str], gateway: str, data_plane: httpx.Client
) -> None:
    api, gw, auth = e2e_client, gateway, e2e_user
    base = f"/v1/api-gateways/{gw}/functions"
    assert api.post(base, json={"name": "hello", "code": HELLO_V1}, headers=auth).status_code == 201
    assert api.post(f"{base}/hello/publish", json={"environment": "dev"}, headers=auth).status_code == 200
    first = served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 200)
    assert first.json() == {"hello": "world", "version": 1}
    # 404, not yet published there (polled: staging's authType: none may still be on its way: 401).
    served(data_plane, "GET", f"/{gw}/staging/hello", lambda r: r.status_code == 404)

    patched = api.patch(f"{base}/hello", json={"code": HELLO_V2, "changelog": "async"}, headers=auth)
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert data_plane.get(f"/{gw}/dev/hello").json()["version"] == 1, "a draft is not live until published"
    assert api.post(f"{base}/hello/publish", json={"environment": "dev"}, headers=auth).json()["version"] == 2
    served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.json().get("version") == 2)

    promoted = api.post(f"{base}/hello/deploy-to-stage", json={"targetStage": "staging"}, headers=auth)
    assert promoted.status_code == 200 and promoted.json()["version"] == 2
    served(
        data_plane, "GET", f"/{gw}/staging/hello", lambda r: r.status_code == 200 and r.json()["version"] == 2
    )
    assert (
        api.post(f"{base}/hello/deploy-to-stage", json={"targetStage": "prod"}, headers=auth).status_code
        == 200
    )
    served(
        data_plane, "GET", f"/{gw}/prod/hello", lambda r: r.status_code == 200 and r.json()["version"] == 2
    )

    history = api.get(f"{base}/hello/history", headers=auth).json()
    assert [h["version"] for h in history][:2] == [2, 1] and history[0]["changelog"] == "async"
    deployments = api.get(f"/v1/api-gateways/{gw}/deployments", headers=auth).json()
    assert [(d["environment"], d.get("promotedFrom")) for d in deployments[:2]] == [
        ("prod", "staging"),
        ("staging", "dev"),
    ]

    debug = api.post(
        f"{base}/hello/debug",
        json={
            "code": "import imp\ndef main(req):\n    imp.log('debugging', req.method)\n    return 'dbg'\n",
            "method": "GET",
        },
        headers=auth,
    )
    assert debug.status_code == 200, debug.text
    assert debug.json()["status"] == 200 and debug.json()["body"] == "dbg"
    assert any("debugging" in entry["message"] for entry in debug.json()["logs"])
    assert debug.json()["durationMs"] >= 0
    assert data_plane.get(f"/{gw}/dev/hello").json()["version"] == 2, "debug-run publishes nothing"

    assert api.delete(f"{base}/hello", headers=auth).status_code == 200
    for env in ("dev", "staging", "prod"):
        served(data_plane, "GET", f"/{gw}/{env}/hello", lambda r: r.status_code == 404)


def test_typed_parameters_schema_and_validation(
    e2e_client: TestClient, e2e_user: dict[str, str], gateway: str, data_plane: httpx.Client
) -> None:
    api, gw, auth = e2e_client, gateway, e2e_user
    base = f"/v1/api-gateways/{gw}/functions"
    assert api.post(base, json={"name": "tax/calculate", "code": TAX}, headers=auth).status_code == 201
    schema = api.get(f"{base}/tax/calculate", headers=auth).json()["inputSchema"]
    assert schema["required"] == ["income"] and schema["properties"]["income"]["type"] == "number"
    api.post(f"{base}/tax/calculate/publish", json={"environment": "dev"}, headers=auth)
    ok = served(
        data_plane,
        "POST",
        f"/{gw}/dev/tax/calculate",
        lambda r: r.status_code == 200,
        json={"income": 50_000_000, "deductions": 10_000_000},
    )
    assert ok.json() == {"tax": 8_800_000.0}
    from_query = data_plane.get(f"/{gw}/dev/tax/calculate", params={"income": "1000"})
    assert from_query.status_code == 200 and from_query.json() == {"tax": 220.0}
    bad = data_plane.post(f"/{gw}/dev/tax/calculate", json={"income": "lots"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
    missing = data_plane.post(f"/{gw}/dev/tax/calculate", json={})
    assert missing.status_code == 422


def test_bad_code_is_refused_and_the_live_version_keeps_serving(
    e2e_client: TestClient, e2e_user: dict[str, str], gateway: str, data_plane: httpx.Client
) -> None:
    api, gw, auth = e2e_client, gateway, e2e_user
    base = f"/v1/api-gateways/{gw}/functions"
    api.post(base, json={"name": "steady", "code": HELLO_V1}, headers=auth)
    api.post(f"{base}/steady/publish", json={"environment": "dev"}, headers=auth)
    served(data_plane, "GET", f"/{gw}/dev/steady", lambda r: r.status_code == 200)

    syntax = api.patch(f"{base}/steady", json={"code": "def main(req):\n    return (\n"}, headers=auth)
    assert syntax.status_code == 400 and syntax.json()["error"]["details"][0]["line"] >= 2
    forbidden = api.patch(
        f"{base}/steady", json={"code": "import os\ndef main(req):\n    return 1\n"}, headers=auth
    )
    assert forbidden.status_code == 400 and forbidden.json()["error"]["details"][0]["line"] == 1
    no_main = api.post(base, json={"name": "nomain", "code": "x = 1\n"}, headers=auth)
    assert no_main.status_code == 400

    crash = api.patch(
        f"{base}/steady", json={"code": "def main(req):\n    raise ValueError('boom')\n"}, headers=auth
    )
    assert crash.status_code == 200
    api.post(f"{base}/steady/publish", json={"environment": "dev"}, headers=auth)
    failed = served(data_plane, "GET", f"/{gw}/dev/steady", lambda r: r.status_code == 500)
    assert failed.json()["error"]["code"] == "internal" and failed.json()["error"]["requestId"]
    assert "boom" not in failed.text and "Traceback" not in failed.text


def test_promotion_pipeline_is_enforced(
    e2e_client: TestClient, e2e_user: dict[str, str], gateway: str
) -> None:
    api, gw, auth = e2e_client, gateway, e2e_user
    base = f"/v1/api-gateways/{gw}/functions"
    api.post(base, json={"name": "piped", "code": HELLO_V1}, headers=auth)
    pipeline = {"promotionPipeline": {"enabled": True, "stages": ["dev", "staging", "prod"]}}
    assert api.patch(f"/v1/api-gateways/{gw}", json=pipeline, headers=auth).status_code == 200
    try:
        assert (
            api.post(f"{base}/piped/publish", json={"environment": "prod"}, headers=auth).status_code == 409
        )
        assert (
            api.post(
                f"{base}/piped/deploy-to-stage", json={"targetStage": "staging"}, headers=auth
            ).status_code
            == 404
        )
        api.post(f"{base}/piped/publish", json={"environment": "dev"}, headers=auth)
        skip = api.post(
            f"{base}/piped/deploy-to-stage", json={"targetStage": "prod", "from": "dev"}, headers=auth
        )
        assert skip.status_code == 409
        assert (
            api.post(
                f"{base}/piped/deploy-to-stage", json={"targetStage": "staging"}, headers=auth
            ).status_code
            == 200
        )
    finally:
        api.patch(f"/v1/api-gateways/{gw}", json={"promotionPipeline": {"enabled": False}}, headers=auth)
