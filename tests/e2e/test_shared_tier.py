"""The shared tier end to end: many environments on one shared replica, each in its own workers.

Gateways here are created on the shared tier of the live stack's platform (``tests.e2e.conftest``):
their environments have no Serve application and are loaded into the ``shared-runtime``
application's replicas on their first call. The replica is asked what it holds through its Serve
handle (``SharedRuntime.loaded``: each environment with its workers' process ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import ray
from fastapi.testclient import TestClient
from ray import serve

from runtime_actors.shared.names import SHARED_DEPLOYMENT, SHARED_RUNTIME_APP
from tests.e2e.conftest import PASSWORD, make_public, served, small_bundle, wait_started
from tests.fixtures.polling import eventually

SLOW = "import time\ndef main(req):\n    time.sleep(1.5)\n    return {'slept': True}\n"
SPIN = "def main(req):\n    while True:\n        pass\n"
CRASH = "def main(req):\n    blob = bytearray(8 * 1024 * 1024 * 1024)\n    return len(blob)\n"
HELLO = "def main(req):\n    return {'hello': '%s'}\n"


def _loaded() -> dict[str, list[int]]:
    handle = serve.get_deployment_handle(SHARED_DEPLOYMENT, SHARED_RUNTIME_APP)
    answer: dict[str, list[int]] = handle.loaded.remote().result(timeout_s=30)
    return answer


def _spares() -> dict[str, Any]:
    handle = serve.get_deployment_handle(SHARED_DEPLOYMENT, SHARED_RUNTIME_APP)
    answer: dict[str, Any] = handle.spare_workers.remote().result(timeout_s=30)
    return answer


def _user(client: TestClient) -> dict[str, str]:
    name = f"tenant-{uuid.uuid4().hex[:8]}"
    client.post("/v1/auth/register", json={"username": name, "password": PASSWORD})
    token = client.post("/v1/auth/login", json={"username": name, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _shared_gateway(client: TestClient, auth: dict[str, str], prefix: str) -> str:
    gw = f"{prefix}-{uuid.uuid4().hex[:6]}"
    created = client.post(
        "/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": small_bundle("shared")}, headers=auth
    )
    assert created.status_code == 202, created.text
    assert created.json()["bundle"]["tier"] == "shared"
    wait_started(client, auth, gw)
    make_public(client, auth, gw)
    return gw


def _publish(client: TestClient, auth: dict[str, str], gw: str, name: str, code: str, **fields: Any) -> None:
    base = f"/v1/api-gateways/{gw}/functions"
    response = client.post(base, json={"name": name, "code": code, **fields}, headers=auth)
    assert response.status_code == 201, response.text
    assert client.post(f"{base}/{name}/publish", json={"environment": "dev"}, headers=auth).status_code == 200


@pytest.fixture(scope="module")
def tenants(
    e2e_client: TestClient, e2e_user: dict[str, str]
) -> Iterator[tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]]]]:
    """Two gateways of two users on the shared tier, each with ``hello`` published in dev."""
    other = _user(e2e_client)
    first = _shared_gateway(e2e_client, e2e_user, "tenant-a")
    second = _shared_gateway(e2e_client, other, "tenant-b")
    for gw, auth in ((first, e2e_user), (second, other)):
        _publish(e2e_client, auth, gw, "hello", HELLO % gw)
    yield (first, e2e_user), (second, other)
    for gw, auth in ((first, e2e_user), (second, other)):
        e2e_client.delete(f"/v1/api-gateways/{gw}", headers=auth)


def test_two_tenants_share_a_replica_but_never_a_worker(
    e2e_client: TestClient, tenants: Any, data_plane: httpx.Client
) -> None:
    (first, auth_a), (second, _) = tenants
    for gw in (first, second):
        served(
            data_plane,
            "GET",
            f"/{gw}/dev/hello",
            lambda r, gw=gw: r.status_code == 200 and r.json() == {"hello": gw},
        )

    loaded = _loaded()
    workers_a, workers_b = loaded[f"{first}/dev"], loaded[f"{second}/dev"]
    assert workers_a and workers_b
    assert not set(workers_a) & set(workers_b), loaded
    # Loads take workers spawned ahead; a spare, never one of a loaded environment's, waits for the next.
    assert _spares()["taken"] >= 1
    assert eventually(lambda: bool(_spares()["ready"]), timeout=30), "no spare worker was spawned again"
    assert not set(_spares()["ready"]) & {pid for pids in _loaded().values() for pid in pids}
    assert f"{first}/prod" not in loaded, "an environment nobody called is not loaded"

    def shown_loaded() -> bool:
        environments = e2e_client.get(f"/v1/api-gateways/{first}", headers=auth_a).json()["environments"]
        by_name = {e["name"]: e for e in environments}
        assert all(e["tier"] == "shared" for e in environments)
        return bool(by_name["dev"]["loadedOn"]) and not by_name["prod"]["loadedOn"]

    assert eventually(shown_loaded, timeout=30), "the API shows where the environment is loaded"


def test_one_tenants_timeout_crash_and_slow_calls_leave_the_others_calls_untouched(
    e2e_client: TestClient, tenants: Any, data_plane: httpx.Client
) -> None:
    (first, auth_a), (second, _) = tenants
    _publish(e2e_client, auth_a, first, "spin", SPIN, timeoutSeconds=1)
    _publish(e2e_client, auth_a, first, "crash", CRASH)
    served(data_plane, "GET", f"/{first}/dev/spin", lambda r: r.status_code == 504)
    served(data_plane, "GET", f"/{first}/dev/crash", lambda r: r.status_code >= 500)

    with ThreadPoolExecutor(8) as pool:
        noisy = [pool.submit(data_plane.get, f"/{first}/dev/{name}") for name in ("spin", "crash") * 2]
        calm = [pool.submit(data_plane.get, f"/{second}/dev/hello") for _ in range(20)]
        calm_answers = [future.result() for future in calm]
        noisy_answers = [future.result() for future in noisy]

    assert [r.status_code for r in calm_answers] == [200] * 20
    assert all(r.json() == {"hello": second} for r in calm_answers)
    assert {r.status_code for r in noisy_answers} <= {500, 502, 503, 504}
    assert all("requestId" in r.json()["error"] for r in noisy_answers if r.status_code >= 500)
    served(data_plane, "GET", f"/{first}/dev/hello", lambda r: r.status_code == 200)  # and A recovers


def test_an_evicted_environment_comes_back_with_its_latest_version(
    e2e_client: TestClient, tenants: Any, data_plane: httpx.Client
) -> None:
    (first, auth_a), _ = tenants
    key = f"{first}/dev"
    served(data_plane, "GET", f"/{first}/dev/hello", lambda r: r.status_code == 200)
    handle = serve.get_deployment_handle(SHARED_DEPLOYMENT, SHARED_RUNTIME_APP)
    assert eventually(
        lambda: handle.evict.remote(key).result(timeout_s=30) or key not in _loaded(), timeout=30
    )
    assert key not in _loaded()

    # published while not loaded anywhere: the next call loads it, with this version
    patched = e2e_client.patch(
        f"/v1/api-gateways/{first}/functions/hello", json={"code": HELLO % "v2"}, headers=auth_a
    )
    assert patched.status_code == 200
    publish = e2e_client.post(
        f"/v1/api-gateways/{first}/functions/hello/publish", json={"environment": "dev"}, headers=auth_a
    )
    assert publish.status_code == 200
    answer = data_plane.get(f"/{first}/dev/hello")
    assert answer.status_code == 200 and answer.json() == {"hello": "v2"}
    assert key in _loaded()


def test_moving_between_tiers_drops_no_call(
    e2e_client: TestClient, e2e_user: dict[str, str], data_plane: httpx.Client
) -> None:
    gw = _shared_gateway(e2e_client, e2e_user, "mover")
    _publish(e2e_client, e2e_user, gw, "hello", HELLO % gw)
    served(data_plane, "GET", f"/{gw}/dev/hello", lambda r: r.status_code == 200)
    statuses: list[int] = []

    def tier_is(tier: str) -> bool:
        statuses.append(data_plane.get(f"/{gw}/dev/hello").status_code)
        seen = e2e_client.get(f"/v1/api-gateways/{gw}", headers=e2e_user).json()
        return (
            seen["phase"] == "Started"
            and all(e["phase"] == "Started" for e in seen["environments"])
            and (f"{gw}/dev" in _loaded()) == (tier == "shared")
        )

    try:
        for tier in ("dedicated", "shared"):
            moved = e2e_client.patch(
                f"/v1/api-gateways/{gw}", json={"bundle": small_bundle(tier)}, headers=e2e_user
            )
            assert moved.status_code == 200 and moved.json()["bundle"]["tier"] == tier, moved.text
            assert eventually(lambda tier=tier: tier_is(tier), timeout=180, interval=0.05), statuses[-5:]
    finally:
        e2e_client.delete(f"/v1/api-gateways/{gw}", headers=e2e_user)
    assert len(statuses) > 10 and set(statuses) == {200}, sorted(set(statuses))


def test_an_unknown_path_is_a_404_in_the_apis_shape(data_plane: httpx.Client) -> None:
    answer = data_plane.get(f"/nobody-{uuid.uuid4().hex[:6]}/dev/hello")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_a_dead_shared_replica_costs_only_its_calls_in_flight(
    e2e_client: TestClient, tenants: Any, data_plane: httpx.Client
) -> None:
    (first, auth_a), (second, _) = tenants
    _publish(e2e_client, auth_a, first, "slow", SLOW)
    served(data_plane, "GET", f"/{first}/dev/slow", lambda r: r.status_code == 200)
    replicas = [
        actor
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and f"{SHARED_RUNTIME_APP}#{SHARED_DEPLOYMENT}" in actor["name"]
    ]
    assert len(replicas) == 1, replicas
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(data_plane.get, f"/{first}/dev/slow")
        assert eventually(lambda: any(_loaded().values()), timeout=10)
        ray.kill(ray.get_actor(replicas[0]["name"], namespace="serve"), no_restart=False)
        cut = in_flight.result()
    assert cut.status_code >= 500  # the call that was running answered, with an error

    # Serve replaces the replica (until then HAProxy may drop connections); both tenants'
    # environments load again on their next call
    def answers(gw: str) -> bool:
        try:
            return data_plane.get(f"/{gw}/dev/hello").status_code == 200
        except httpx.TransportError:
            return False

    for gw in (first, second):
        assert eventually(lambda gw=gw: answers(gw), timeout=120, interval=0.1), gw
