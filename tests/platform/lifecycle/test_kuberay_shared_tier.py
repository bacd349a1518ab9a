"""The shared tier under the KubeRay driver, through the reconcilers, against the Kubernetes stand-in.

A real control plane (``IMPRUN_CLUSTER_DRIVER=kuberay`` pointed at the stand-in, shared runtime on,
on the session's nx-27017 and Redis with a private system database) runs the shared runtime as a
RayService in a namespace of its own, with a MongoDB login of its own. nx-27017 keeps no users, so
the runtimes' MongoDB users are a recording ``GatewayMongoUsers`` here: it notes each grant with the
placements it found at that moment, which is what the reconcilers' ordering is about (the shared
runtime may reach a gateway's database before any of its environments is placed there, and loses it
only once none is).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.collection import Collection

import imprun.api.composition as composition
from imprun.api.app import create_app
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.settings import Settings
from imprun.store.mongo import Mongo
from imprun.store.mongo_users import GatewayMongoUsers
from runtime_actors.shared.names import ENVIRONMENTS, PLACED, SHARED_PLACEMENT
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
SHARED_LOGIN = "mongodb://imprun-shared-runtime:derived@mongo:27017/?authSource=admin"


class RecordedUsers(GatewayMongoUsers):
    """The users a MongoDB with users would keep, recorded: ``(call, gateway, environments placed)``."""

    def __init__(self, mongo: Mongo, url: str, sys_db_name: str) -> None:
        super().__init__(mongo, url, sys_db_name, lambda subject: "derived")
        self._supported = True
        self._records: Collection[dict[str, Any]] = mongo[sys_db_name][ENVIRONMENTS]
        self.calls: list[tuple[str, str, frozenset[str]]] = []

    def _note(self, call: str, gateway_id: str = "") -> None:
        placed = self._records.find({"gatewayId": gateway_id, SHARED_PLACEMENT: PLACED}, {"name": 1})
        self.calls.append((call, gateway_id, frozenset(str(doc["name"]) for doc in placed)))

    def ensure(self, gateway_id: str) -> bool:
        self._note("ensure", gateway_id)
        return True

    def drop(self, gateway_id: str) -> None:
        self._note("drop", gateway_id)

    def ensure_shared_runtime(self) -> bool:
        self._note("ensure_shared_runtime")
        return True

    def grant_shared(self, gateway_id: str) -> None:
        self._note("grant_shared", gateway_id)

    def revoke_shared(self, gateway_id: str) -> None:
        self._note("revoke_shared", gateway_id)

    def url_for(self, gateway_id: str) -> str:
        return f"mongodb://imprun-gw-{gateway_id}:derived@mongo:27017/?authSource=admin"

    def shared_runtime_url(self) -> str:
        return SHARED_LOGIN

    def of(self, gateway_id: str) -> list[tuple[str, frozenset[str]]]:
        return [(call, placed) for call, gw, placed in self.calls if gw == gateway_id]


@dataclass
class SharedPlane:
    client: TestClient
    cluster: Cluster
    owner: dict[str, str]
    users: RecordedUsers
    settings: Settings

    def record(self, gw: str, env: str) -> dict[str, Any]:
        mongo = self.client.app.state.plane.mongo  # type: ignore[attr-defined]
        found: dict[str, Any] = mongo[self.settings.sys_db_name][ENVIRONMENTS].find_one(
            {"_id": f"{gw}/{env}"}
        )
        return found

    def upstream(self, gw: str, env: str) -> str:
        return str((self.record(gw, env).get("appliedRoute") or {}).get("upstream_host"))

    def move(self, gw: str, tier: str) -> None:
        body = {"bundle": {**SMALL_BUNDLE, "tier": tier}}
        moved = self.client.patch(f"/v1/api-gateways/{gw}", json=body, headers=self.owner)
        assert moved.status_code == 200, moved.text


@pytest.fixture(scope="module")
def shared_plane(services: RunningServices) -> Iterator[SharedPlane]:
    recorded: list[RecordedUsers] = []

    def open_users(settings: Settings, mongo: Mongo, master_key: object) -> RecordedUsers:
        assert settings.mongo_url is not None
        recorded.append(RecordedUsers(mongo, settings.mongo_url, settings.sys_db_name))
        return recorded[-1]

    with running_cluster() as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setattr(composition, "open_gateway_mongo_users", open_users)
        settings = kuberay_lifecycle_settings(services, cluster, shared_runtime=True)
        with TestClient(create_app(settings)) as client:
            (users,) = recorded
            yield SharedPlane(client, cluster, sign_up(client, "krs"), users, settings)
            client.app.state.plane.mongo.drop_database(settings.sys_db_name)  # type: ignore[attr-defined]


@pytest.mark.timeout(300)
def test_the_shared_runtime_runs_apart_and_reaches_only_placed_gateways(shared_plane: SharedPlane) -> None:
    plane, api = shared_plane, shared_plane.cluster.api
    gw = f"krs-{uuid.uuid4().hex[:8]}"
    body = {"name": "Shared on KubeRay", "gatewayId": gw, "bundle": {**SMALL_BUNDLE, "tier": "shared"}}
    assert plane.client.post("/v1/api-gateways", json=body, headers=plane.owner).status_code == 202
    wait_for_phase(plane.client, plane.owner, gw, "Started")

    # the shared runtime: its own namespace, isolated, logged in as its own MongoDB user
    assert ("ensure_shared_runtime", "", frozenset()) in plane.users.calls
    assert api.get(RAYSERVICES, SHARED_NS, "shared-runtime") is not None
    assert api.get(RAYSERVICES, "imprun-system", "shared-runtime") is None
    assert api.get((NETWORKING, "networkpolicies"), SHARED_NS, "imprun-default-deny") is not None
    secret = api.get((CORE, "secrets"), SHARED_NS, "imprun-shared-mongo")
    assert secret is not None and base64.b64decode(secret["data"]["mongo-url"]).decode() == SHARED_LOGIN
    assert all(api.get(RAYSERVICES, f"imprun-{gw}", f"{gw}-{env}") is None for env in ENVIRONMENT_NAMES)
    shared_service = "shared-runtime-serve-svc.imprun-shared.svc"
    assert eventually(lambda: all(plane.upstream(gw, env) == shared_service for env in ENVIRONMENT_NAMES))
    # its database was granted to the shared runtime before any environment was placed there
    grants = [placed for call, placed in plane.users.of(gw) if call == "grant_shared"]
    assert grants and grants[0] == frozenset()
    assert all(plane.record(gw, env)[SHARED_PLACEMENT] == PLACED for env in ENVIRONMENT_NAMES)

    # moved to the dedicated tier: RayServices of its own, routes to them, the grant goes at the end
    plane.move(gw, "dedicated")

    def on_dedicated() -> bool:
        return all(
            plane.upstream(gw, env) == f"{gw}-{env}-serve-svc.imprun-{gw}.svc"
            and plane.record(gw, env).get(SHARED_PLACEMENT) != PLACED
            for env in ENVIRONMENT_NAMES
        )

    assert eventually(on_dedicated, timeout=120, interval=0.2)
    assert eventually(lambda: ("revoke_shared", frozenset()) in plane.users.of(gw))
    revoked = plane.users.of(gw).index(("revoke_shared", frozenset()))
    assert all(placed == frozenset() for call, placed in plane.users.of(gw)[revoked:])
    assert all(api.get(RAYSERVICES, f"imprun-{gw}", f"{gw}-{env}") is not None for env in ENVIRONMENT_NAMES)

    assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=plane.owner).status_code == 202
    wait_gone(plane.client, plane.owner, gw)
    assert [call for call, _ in plane.users.of(gw)][-2:] == ["drop", "revoke_shared"]
    for written in api.written:
        assert_valid(written)
