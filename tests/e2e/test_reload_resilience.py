"""Nothing published is lost when the reload path breaks: the node's reload hub (the one change
stream of the node) is killed, and nx-27017 itself restarts, while publishes continue."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
import ray
from fastapi.testclient import TestClient

from tests.e2e.conftest import SMALL_BUNDLE, make_public, served, wait_started
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices

ENVS = ("dev", "staging", "prod")


def code_for(version: int) -> str:
    return f"def main(req):\n    return {{'v': {version}}}\n"


def kill_reload_hubs() -> int:
    hubs = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("imprun-reload-hub-")
    ]
    for hub in hubs:
        ray.kill(ray.get_actor(hub["name"], namespace=hub["namespace"]), no_restart=True)
    return len(hubs)


def retrying(call: Callable[[], httpx.Response]) -> httpx.Response:
    """Control-plane calls while MongoDB restarts answer 503; retry until the platform is back."""
    last: list[httpx.Response] = []

    def attempt() -> bool:
        last[:] = [call()]
        return last[0].status_code != 503

    assert eventually(attempt, timeout=60, interval=0.1), last[0].text
    return last[0]


@pytest.mark.timeout(600)
def test_publishes_survive_a_killed_hub_and_a_mongo_restart(
    e2e_client: TestClient,
    e2e_user: dict[str, str],
    data_plane: httpx.Client,
    services: RunningServices,
    ray_driver: object,  # makes sure this process is connected to the session's Ray
) -> None:
    api, auth = e2e_client, e2e_user
    gw = f"reload-{uuid.uuid4().hex[:6]}"
    api.post("/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=auth)
    wait_started(api, auth, gw)
    make_public(api, auth, gw)
    base = f"/v1/api-gateways/{gw}/functions"
    api.post(base, json={"name": "counter", "code": code_for(0)}, headers=auth)

    def publish_everywhere(version: int) -> None:
        assert (
            retrying(
                lambda: api.patch(f"{base}/counter", json={"code": code_for(version)}, headers=auth)
            ).status_code
            == 200
        )
        for env in ENVS:
            published = retrying(
                lambda env=env: api.post(f"{base}/counter/publish", json={"environment": env}, headers=auth)
            )
            assert published.status_code == 200, published.text

    publish_everywhere(1)
    for env in ENVS:
        served(
            data_plane, "GET", f"/{gw}/{env}/counter", lambda r: r.status_code == 200 and r.json() == {"v": 1}
        )

    publish_everywhere(2)
    assert kill_reload_hubs() >= 1, "the environment's replicas must have a reload hub to kill"
    publish_everywhere(3)

    services.mongo.stop()
    services.mongo.start(timeout=60)
    publish_everywhere(4)
    publish_everywhere(5)
    kill_reload_hubs()  # right after the last publish: its wake-up may well be lost

    for env in ENVS:
        final = served(
            data_plane,
            "GET",
            f"/{gw}/{env}/counter",
            lambda r: r.status_code == 200 and r.json() == {"v": 5},
            timeout=60,
        )
        assert final.json() == {"v": 5}
    api.delete(f"/v1/api-gateways/{gw}", headers=auth)
