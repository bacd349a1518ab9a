"""``ray_apps.reload_hub`` on the session's Ray head: one named hub per node, snapshots and long-polls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from pymongo import MongoClient

from imprun.drivers.local_ray import LocalRayServeDriver
from ray_apps.reload_hub import reload_hub_for_this_node
from runtime_actors.shared.names import GENERATIONS, PUBLISHED_FUNCTIONS
from tests.fixtures.services import RunningServices

pytestmark = [pytest.mark.ray, pytest.mark.services]

Document = dict[str, Any]


@pytest.fixture
def hub(services: RunningServices, ray_driver: LocalRayServeDriver) -> Any:
    ray_driver.ping()  # connects this process to the session's head
    settings = services.settings
    assert settings.mongo_url
    return reload_hub_for_this_node(settings.mongo_url, settings.redis_url, settings.sys_db_name)


@pytest.fixture
def mongo(services: RunningServices) -> Iterator[MongoClient[Document]]:
    assert services.settings.mongo_url
    client: MongoClient[Document] = MongoClient(services.settings.mongo_url)
    yield client
    client.close()


def publish(mongo: MongoClient[Document], sys_db: str, gateway_id: str, version: int) -> int:
    mongo[f"gatewayid_{gateway_id}"][PUBLISHED_FUNCTIONS].update_one(
        {"_id": "dev:hello"},
        {"$set": {"name": "hello", "environment": "dev", "code": "def main(req): ...", "version": version}},
        upsert=True,
    )
    updated = mongo[sys_db][GENERATIONS].find_one_and_update(
        {"_id": f"{gateway_id}/dev"}, {"$inc": {"generation": 1}}, upsert=True, return_document=True
    )
    assert updated is not None
    return int(updated["generation"])


def test_every_caller_on_a_node_gets_the_same_hub(hub: Any, services: RunningServices) -> None:
    settings = services.settings
    assert settings.mongo_url
    again = reload_hub_for_this_node(settings.mongo_url, settings.redis_url, settings.sys_db_name)

    assert again._actor_id == hub._actor_id
    assert ray.get(hub.stats.remote(), timeout=30)["pid"] == ray.get(again.stats.remote(), timeout=30)["pid"]


def test_snapshot_then_long_poll_for_the_next_generation(
    hub: Any, mongo: MongoClient[Document], services: RunningServices
) -> None:
    sys_db = services.settings.sys_db_name
    gateway_id = f"hub-{uuid.uuid4().hex[:8]}"
    first = publish(mongo, sys_db, gateway_id, 1)

    snapshot = ray.get(hub.snapshot.remote(gateway_id, "dev"), timeout=30)
    generation = snapshot.generation
    assert generation == first and [d["version"] for d in snapshot.documents] == [1]
    assert ray.get(hub.wait_changed.remote(gateway_id, "dev", generation, 0.2), timeout=30) is None

    waiting = hub.wait_changed.remote(gateway_id, "dev", generation, 20.0)
    second = publish(mongo, sys_db, gateway_id, 2)
    changed = ray.get(waiting, timeout=30)

    assert changed is not None
    assert changed.generation == second and [d["version"] for d in changed.documents] == [2]
