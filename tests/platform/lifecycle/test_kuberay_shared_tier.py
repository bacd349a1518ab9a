"""The shared tier under the KubeRay driver, through the reconcilers, against the Kubernetes stand-in.

A real control plane (``IMPRUN_CLUSTER_DRIVER=kuberay`` pointed at the stand-in, shared runtime on,
on the session's nx-27017 and Redis with a private system database) runs the shared runtime as a
RayService in a namespace of its own. Its logins are real ``RuntimeLogins`` whose Redis side is a
recording store: nx-27017 keeps no users (its side is a no-op), and the session's Redis is shared
by every test. The store notes each grant and revocation with the placements it found at that
moment, which is what the ordering is about: the shared runtime reaches a gateway before any of its
environments is placed there, and loses it only once none is.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pymongo.collection import Collection

import imprun.api.composition as composition
from imprun.api.app import create_app
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.settings import Settings
from imprun.store.mongo_users import GatewayMongoUsers
from imprun.store.redis import connect_redis
from imprun.store.runtime_logins import RuntimeLogins
from runtime_actors.shared.names import ENVIRONMENTS, PLACED, SHARED_LOADED_KEY, SHARED_PLACEMENT
from tests.fixtures.k8s_standin import CORE, NETWORKING, RAY, Cluster, running_cluster
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.drivers.k8s_schemas import assert_valid
from tests.platform.lifecycle.conftest import (
    SMALL_BUNDLE,
    kuberay_lifecycle_settings,
    sign_up,
    wait_for_phase,
    wait_gone,
)

RAYSERVICES = (RAY, "rayservices")
SHARED_NS = "imprun-shared"
SHARED_REDIS = "redis://imprun-shared-runtime:derived@redis:6379/0"


@dataclass
class RecordingStore:
    """A store of users, in memory: ``calls`` are ``(call, gateway, environments placed then)``."""

    records: Collection[dict[str, Any]]
    granted: frozenset[str] = frozenset()  # replaced, never changed in place: two threads read it
    users: frozenset[str] = frozenset()
    calls: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)

    def _note(self, call: str, gateway_id: str = "") -> None:
        placed = self.records.find({"gatewayId": gateway_id, SHARED_PLACEMENT: PLACED}, {"name": 1})
        self.calls.append((call, gateway_id, frozenset(str(doc["name"]) for doc in placed)))

    def supported(self) -> bool:
        return True

    def ensure(self, gateway_id: str) -> None:
        self._note("ensure", gateway_id)
        self.users = self.users | {gateway_id}

    def gateway_users(self) -> set[str]:
        return set(self.users)

    def drop(self, gateway_id: str) -> None:
        self._note("drop", gateway_id)
        self.users = self.users - {gateway_id}

    def ensure_shared_runtime(self) -> None:
        self._note("ensure_shared_runtime")

    def shared_grants(self) -> set[str]:
        return set(self.granted)

    def grant_shared(self, gateway_id: str) -> None:
        self._note("grant_shared", gateway_id)
        self.granted = self.granted | {gateway_id}

    def revoke_shared(self, gateway_id: str) -> None:
        self._note("revoke_shared", gateway_id)
        self.granted = self.granted - {gateway_id}

    def url_for(self, gateway_id: str) -> str:
        return f"redis://imprun-gw-{gateway_id}:derived@redis:6379/0"

    def shared_runtime_url(self) -> str:
        return SHARED_REDIS

    def of(self, gateway_id: str) -> list[tuple[str, frozenset[str]]]:
        return [(call, placed) for call, gw, placed in self.calls if gw == gateway_id]


@dataclass
class SharedPlane:
    client: TestClient
    cluster: Cluster
    owner: dict[str, str]
    store: RecordingStore
    settings: Settings

    def record(self, gw: str, env: str) -> dict[str, Any]:
        mongo = self.client.app.state.plane.mongo  # type: ignore[attr-defined]
        found: dict[str, Any] = mongo[self.settings.sys_db_name][ENVIRONMENTS].find_one(
            {"_id": f"{gw}/{env}"}
        )
        return found

    def upstream(self, gw: str, env: str) -> str:
        return str((self.record(gw, env).get("appliedRoute") or {}).get("upstream_host"))

    def create(self, tier: str) -> str:
        gw = f"krs-{uuid.uuid4().hex[:8]}"
        body = {"name": "Shared on KubeRay", "gatewayId": gw, "bundle": {**SMALL_BUNDLE, "tier": tier}}
        assert self.client.post("/v1/api-gateways", json=body, headers=self.owner).status_code == 202
        return gw

    def delete(self, gw: str) -> None:
        assert self.client.delete(f"/v1/api-gateways/{gw}", headers=self.owner).status_code == 202
        wait_gone(self.client, self.owner, gw)

    def move(self, gw: str, tier: str) -> None:
        body = {"bundle": {**SMALL_BUNDLE, "tier": tier}}
        moved = self.client.patch(f"/v1/api-gateways/{gw}", json=body, headers=self.owner)
        assert moved.status_code == 200, moved.text


@pytest.fixture(scope="module")
def shared_plane(services: RunningServices) -> Iterator[SharedPlane]:
    stores: list[RecordingStore] = []

    def open_logins(settings: Settings, opened: composition.Stores, master_key: object) -> RuntimeLogins:
        assert settings.mongo_url is not None
        mongo = GatewayMongoUsers(opened.mongo, settings.mongo_url, settings.sys_db_name, lambda s: "derived")
        stores.append(RecordingStore(opened.sys_db[ENVIRONMENTS]))
        return RuntimeLogins(mongo, stores[-1])  # type: ignore[arg-type]

    with running_cluster() as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setattr(composition, "open_runtime_logins", open_logins)
        settings = kuberay_lifecycle_settings(services, cluster, shared_runtime=True)
        with TestClient(create_app(settings)) as client:
            (store,) = stores
            yield SharedPlane(client, cluster, sign_up(client, "krs"), store, settings)
            client.app.state.plane.mongo.drop_database(settings.sys_db_name)  # type: ignore[attr-defined]


def runtime_args(service: dict[str, Any] | None) -> dict[str, Any]:
    assert service is not None
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    args: dict[str, Any] = app["args"]
    return args


@pytest.mark.timeout(300)
def test_the_shared_runtime_runs_apart_and_reaches_only_the_gateways_it_serves(
    shared_plane: SharedPlane,
) -> None:
    plane, api, store = shared_plane, shared_plane.cluster.api, shared_plane.store
    gw = plane.create("shared")
    wait_for_phase(plane.client, plane.owner, gw, "Started")

    # the shared runtime: its own namespace, isolated, logged in as itself
    assert api.get(RAYSERVICES, "imprun-system", "shared-runtime") is None
    shared = api.get(RAYSERVICES, SHARED_NS, "shared-runtime")
    assert runtime_args(shared)["runtime"]["redis_url"] == SHARED_REDIS
    assert api.get((NETWORKING, "networkpolicies"), SHARED_NS, "imprun-default-deny") is not None
    assert api.get((CORE, "secrets"), SHARED_NS, "imprun-shared-mongo") is not None
    assert all(api.get(RAYSERVICES, f"imprun-{gw}", f"{gw}-{env}") is None for env in ENVIRONMENT_NAMES)
    shared_service = "shared-runtime-serve-svc.imprun-shared.svc"
    assert eventually(lambda: all(plane.upstream(gw, env) == shared_service for env in ENVIRONMENT_NAMES))
    # the gateway's logins were made with its database, and granted before any placement
    calls = store.of(gw)
    assert calls[0] == ("ensure", frozenset())
    assert next(placed for call, placed in calls if call == "grant_shared") == frozenset()
    assert gw in store.granted
    assert store.records.count_documents({"gatewayId": gw, SHARED_PLACEMENT: PLACED}) == 3  # as _note asks

    # moved to the dedicated tier: RayServices of its own with its own logins, routes to them, and
    # the shared runtime loses the gateway once nothing of it is placed there any more
    plane.move(gw, "dedicated")

    def on_dedicated() -> bool:
        return all(
            plane.upstream(gw, env) == f"{gw}-{env}-serve-svc.imprun-{gw}.svc"
            and plane.record(gw, env).get(SHARED_PLACEMENT) != PLACED
            for env in ENVIRONMENT_NAMES
        )

    assert eventually(on_dedicated, timeout=120, interval=0.2)
    assert eventually(lambda: gw not in store.granted, timeout=30)
    revocations = [placed for call, placed in store.of(gw) if call == "revoke_shared"]
    assert revocations and all(placed == frozenset() for placed in revocations)
    for env in ENVIRONMENT_NAMES:
        dedicated = api.get(RAYSERVICES, f"imprun-{gw}", f"{gw}-{env}")
        assert runtime_args(dedicated)["redis_url"] == store.url_for(gw)

    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)
    assert ("drop", frozenset()) in store.of(gw) and gw not in store.granted
    for written in api.written:
        assert_valid(written)


@pytest.mark.timeout(300)
def test_logins_lost_or_never_made_are_put_back(shared_plane: SharedPlane) -> None:
    """An upgrade from a release without runtime logins, or a Redis that lost its users: the next
    pass makes the gateway's user again and grants every gateway the shared tier serves."""
    plane, store = shared_plane, shared_plane.store
    gw = plane.create("shared")
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    store.granted, store.users = frozenset(), frozenset()
    assert eventually(lambda: gw in store.granted and gw in store.users, timeout=30)
    plane.delete(gw)


@pytest.mark.timeout(300)
def test_a_loaded_report_alone_grants_nothing(shared_plane: SharedPlane, services: RunningServices) -> None:
    """The shared runtime writes its own loaded reports: one naming a dedicated gateway that never
    left the shared tier must not get the runtime into that gateway."""
    plane, store = shared_plane, shared_plane.store
    gw = plane.create("dedicated")
    wait_for_phase(plane.client, plane.owner, gw, "Started")
    assert services.settings.redis_url
    redis = connect_redis(services.settings.redis_url)
    forged = {"replica": "forged", "node": "n", "environments": [f"{gw}/prod"], "at": time.time() + 3600}
    other = plane.create("shared")
    wait_for_phase(plane.client, plane.owner, other, "Started")
    redis.hset(SHARED_LOADED_KEY, "forged", json.dumps(forged))
    try:
        store.granted = frozenset()  # only a pass of the sync, which sees the forged report, grants again
        assert eventually(lambda: other in store.granted, timeout=30)
        assert gw not in store.granted
        assert all(g != gw for call, g, _ in store.calls if call == "grant_shared")
    finally:
        redis.hdel(SHARED_LOADED_KEY, "forged")
    plane.delete(other)
    plane.delete(gw)
