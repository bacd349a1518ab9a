"""Variables, live logs and metrics end to end, on the session's Ray head.

A secret set on prod reaches ``imp.env`` in the running replica within a second (no restart: the
worker pids stay the same) and its value appears in no API response, no log stream entry (a
function that logs it gets ``••••``) and no MongoDB document; promotion does not carry variables.
A follower of ``/logs?follow=true`` receives a function's ``imp.log`` line within a second of the
call, and is told when the gateway is deleted. The replica's per-function metrics reach the Ray
node's Prometheus endpoint.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray
from fastapi.testclient import TestClient

from tests.e2e.conftest import make_public, served, small_bundle, wait_started
from tests.fixtures.polling import eventually

READER = (
    "import hashlib\nimport imp\n"
    "def main(req):\n"
    "    name = req.query.get('name', 'TOKEN')\n"
    "    value = imp.env.get(name)\n"
    "    if req.query.get('log'):\n"
    "        imp.log('the value is', value, 'marker', req.query['log'])\n"
    "    try:\n"
    "        imp.env[name] = 'x'\n"
    "        writable = True\n"
    "    except TypeError:\n"
    "        writable = False\n"
    "    digest = hashlib.sha256((value or '').encode()).hexdigest()\n"
    "    return {'set': value is not None, 'sha256': digest, 'writable': writable, 'names': sorted(imp.env)}\n"
)


@pytest.fixture(scope="module")
def env_gateway(
    e2e_client: TestClient, e2e_user: dict[str, str], data_plane: httpx.Client, tier: str
) -> Iterator[str]:
    gw = f"envs-{uuid.uuid4().hex[:6]}"
    api, auth = e2e_client, e2e_user
    api.post(
        "/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": small_bundle(tier)}, headers=auth
    )
    wait_started(api, auth, gw)
    make_public(api, auth, gw)
    assert api.post(f"/v1/api-gateways/{gw}/functions", json={"name": "reader", "code": READER}, headers=auth)
    for env in ("staging", "prod"):
        published = api.post(
            f"/v1/api-gateways/{gw}/functions/reader/publish", json={"environment": env}, headers=auth
        )
        assert published.status_code == 200, published.text
    served(data_plane, "GET", f"/{gw}/prod/reader", lambda r: r.status_code == 200)
    yield gw
    api.delete(f"/v1/api-gateways/{gw}", headers=auth)


def sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_secret_set_on_prod_reaches_imp_env_within_a_second_and_nowhere_else(
    e2e_client: TestClient, e2e_user: dict[str, str], env_gateway: str, data_plane: httpx.Client
) -> None:
    api, auth, gw = e2e_client, e2e_user, env_gateway
    secret = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
    before = data_plane.get(f"/{gw}/prod/reader").json()
    assert before["set"] is False and before["writable"] is False

    put = api.put(
        f"/v1/api-gateways/{gw}/environments/prod/variables/TOKEN",
        json={"value": secret, "secret": True},
        headers=auth,
    )
    assert put.status_code == 200 and put.json()["masked"] is True
    set_at = time.monotonic()
    ok = eventually(
        lambda: data_plane.get(f"/{gw}/prod/reader").json()["sha256"] == sha256(secret),
        timeout=1.0,
        interval=0.01,
    )
    assert ok, f"the secret did not reach imp.env within a second ({time.monotonic() - set_at:.2f} s)"
    after = data_plane.get(f"/{gw}/prod/reader").json()
    assert after["names"] == ["TOKEN"] and after["writable"] is False
    # promotion carries code, never variables: staging's replica has no TOKEN
    assert data_plane.get(f"/{gw}/staging/reader").json()["set"] is False

    marker = uuid.uuid4().hex
    assert data_plane.get(f"/{gw}/prod/reader", params={"log": marker}).status_code == 200
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        entries = api.get(f"/v1/api-gateways/{gw}/environments/prod/logs", headers=auth).json()["entries"]
        found[:] = [e for e in entries if marker in e["message"]]
        return bool(found)

    assert eventually(logged, timeout=5, interval=0.05)
    assert "••••" in found[0]["message"] and secret not in found[0]["message"]

    plane = api.app.state.plane  # type: ignore[attr-defined]
    needles = [secret, secret.encode().hex(), base64.b64encode(secret.encode()).decode()]
    for response in (
        put,
        api.get(f"/v1/api-gateways/{gw}/environments/prod/variables", headers=auth),
        api.get(f"/v1/api-gateways/{gw}/environments/prod/variables/TOKEN", headers=auth),
        api.get(f"/v1/api-gateways/{gw}/environments/prod/logs", params={"limit": 1000}, headers=auth),
        api.get(f"/v1/api-gateways/{gw}/events", headers=auth),
    ):
        assert not any(n in response.text for n in needles)
    for db_name in plane.mongo.list_database_names():
        for collection in plane.mongo[db_name].list_collection_names():
            for doc in plane.mongo[db_name][collection].find():
                text = repr(doc)
                assert not any(n in text for n in needles), f"{db_name}.{collection} holds the secret"
    for key in plane.redis.scan_iter("imprun:logs:*"):
        assert not any(n in repr(plane.redis.xrange(key)) for n in needles)

    deleted = api.delete(f"/v1/api-gateways/{gw}/environments/prod/variables/TOKEN", headers=auth)
    assert deleted.status_code == 204
    assert eventually(lambda: data_plane.get(f"/{gw}/prod/reader").json()["set"] is False, timeout=1.0)


def read_events(response: Any, into: queue.Queue[tuple[str, dict[str, Any]] | None]) -> None:
    """Parse Server-Sent Events from ``response`` into ``into`` (None once the stream ends)."""
    event, data = "message", ""
    try:
        for line in response.iter_lines():
            if line == "":
                if data:
                    into.put((event, json.loads(data)))
                event, data = "message", ""
            elif line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
    finally:
        into.put(None)


def test_following_logs_shows_an_imp_log_line_within_a_second_and_ends_on_delete(
    e2e_client: TestClient, e2e_user: dict[str, str], data_plane: httpx.Client, tier: str
) -> None:
    api, auth = e2e_client, e2e_user
    gw = f"logs-{uuid.uuid4().hex[:6]}"
    api.post(
        "/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": small_bundle(tier)}, headers=auth
    )
    wait_started(api, auth, gw)
    make_public(api, auth, gw)
    code = "import imp\ndef main(word: str = 'hi'):\n    imp.log('said', word)\n    return {'ok': True}\n"
    api.post(f"/v1/api-gateways/{gw}/functions", json={"name": "talk", "code": code}, headers=auth)
    api.post(f"/v1/api-gateways/{gw}/functions/talk/publish", json={"environment": "dev"}, headers=auth)
    served(data_plane, "GET", f"/{gw}/dev/talk", lambda r: r.status_code == 200)

    events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
    url = f"/v1/api-gateways/{gw}/environments/dev/logs"
    with api.stream("GET", url, params={"follow": "true", "function": "talk"}, headers=auth) as response:
        assert response.status_code == 200
        reader = threading.Thread(target=read_events, args=(response, events), daemon=True)
        reader.start()
        marker = uuid.uuid4().hex
        assert data_plane.get(f"/{gw}/dev/talk", params={"word": marker}).status_code == 200
        called_at = time.monotonic()
        deadline = called_at + 5
        got: dict[str, Any] | None = None
        while got is None and time.monotonic() < deadline:
            item = events.get(timeout=max(0.01, deadline - time.monotonic()))
            assert item is not None, "the stream ended early"
            if marker in item[1].get("message", ""):
                got = item[1]
        assert got is not None and time.monotonic() - called_at < 1.0, "no log line within a second"
        assert got["function"] == "talk" and got["level"] == "info" and got["requestId"]

        assert api.delete(f"/v1/api-gateways/{gw}", headers=auth).status_code == 202
        last: tuple[str, dict[str, Any]] | None = None
        while True:
            item = events.get(timeout=30)
            if item is None:
                break
            last = item
        reader.join(timeout=5)
    assert last is not None and last[0] == "end" and gw in last[1]["message"]


def test_function_metrics_reach_the_prometheus_endpoint(
    env_gateway: str, data_plane: httpx.Client, e2e_client: TestClient
) -> None:
    gw = env_gateway
    assert data_plane.get(f"/{gw}/prod/reader").status_code == 200
    ports = {n["MetricsExportPort"] for n in ray.nodes() if n.get("Alive") and n.get("MetricsExportPort")}
    assert ports, "no Ray node exports metrics"
    wanted = f'gateway="{gw}"'
    seen: list[str] = []

    def exported() -> bool:
        seen.clear()
        for port in ports:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            seen.extend(line for line in text.splitlines() if "imprun_function_" in line and wanted in line)
        return any("imprun_function_invocations" in s for s in seen) and any(
            "imprun_function_latency_seconds" in s for s in seen
        )

    assert eventually(exported, timeout=60, interval=1.0), "per-function metrics never reached Prometheus"
    invocations = [s for s in seen if "imprun_function_invocations" in s]
    assert any(
        'function="reader"' in s and 'environment="prod"' in s and 'status_class="2xx"' in s
        for s in invocations
    )
