"""Fixtures for applications and grants: a real control plane over the session's nx-27017 and Redis.

The app has its own system database (its reconcilers never meet other modules' gateways) and the
default ingress, the real ``EmbeddedIngressDriver``, driven by the real reconcile loop; only the
cluster is the ``InMemoryCluster`` fake of ``tests/platform/functions``. Helpers read what the data
plane reads (``__consumers``, ``__environments``, ``runtime_generations``) straight from MongoDB, and
``KeyLedger`` remembers every key the API handed out, for the plaintext scan.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.api.context import ControlPlane
from imprun.security.api_keys import api_key_pepper
from imprun.store.consumers import ENVIRONMENT_SETTINGS
from runtime_actors.shared.names import CONSUMERS, GENERATIONS, RELOAD_CHANNEL
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.functions.conftest import Headers, InMemoryCluster, register, wait_for_phase

REVOKE_DEADLINE = 1.0
"""Seconds within which a revoked or regenerated key must stop working (the issue's promise)."""


@dataclass
class KeyLedger:
    """Every plaintext key the API returned in this module (the plaintext scan looks for each)."""

    keys: list[str] = field(default_factory=list)

    def add(self, key: str) -> str:
        self.keys.append(key)
        return key


@pytest.fixture(scope="session")
def access_cluster() -> InMemoryCluster:
    return InMemoryCluster()


@pytest.fixture(scope="session")
def access_client(services: RunningServices, access_cluster: InMemoryCluster) -> Iterator[TestClient]:
    settings = services.settings.model_copy(
        update={
            "sys_db_name": f"imprun_sys_access_{uuid.uuid4().hex[:6]}",
            "reconcile_interval_seconds": 0.1,
        }
    )
    with TestClient(create_app(settings, driver=access_cluster)) as client:
        yield client


@pytest.fixture(scope="session")
def ledger() -> KeyLedger:
    return KeyLedger()


@pytest.fixture
def plane(access_client: TestClient) -> ControlPlane:
    current: ControlPlane = access_client.app.state.plane  # type: ignore[attr-defined]
    return current


@pytest.fixture(scope="module")
def owner(access_client: TestClient) -> Headers:
    return register(access_client)


def new_gateway(client: TestClient, headers: Headers, *, wait: bool = True) -> str:
    gw = f"ak-{uuid.uuid4().hex[:8]}"
    response = client.post("/v1/api-gateways", json={"name": gw, "gatewayId": gw}, headers=headers)
    assert response.status_code == 202, response.text
    if wait:
        wait_for_phase(client, headers, gw, "Started")
    return gw


@pytest.fixture(scope="module")
def gateway(access_client: TestClient, owner: Headers) -> str:
    return new_gateway(access_client, owner)


def new_application(client: TestClient, headers: Headers, **fields: Any) -> str:
    body = {"name": f"app-{uuid.uuid4().hex[:6]}", **fields}
    response = client.post("/v1/applications", json=body, headers=headers)
    assert response.status_code == 201, response.text
    application_id: str = response.json()["applicationId"]
    return application_id


@pytest.fixture
def application(access_client: TestClient, owner: Headers) -> str:
    return new_application(access_client, owner)


@pytest.fixture
def grant(access_client: TestClient, owner: Headers, ledger: KeyLedger) -> Callable[..., dict[str, Any]]:
    """POST a grant and return its body (the key is recorded in the ledger)."""

    def _grant(app: str, gw: str, environment: str = "dev", **extra: Any) -> dict[str, Any]:
        response = access_client.post(
            f"/v1/applications/{app}/grants",
            json={"gatewayId": gw, "environment": environment, **extra},
            headers=owner,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        ledger.add(body["apiKey"])
        return body

    return _grant


# --- what the data plane reads -----------------------------------------------------------------------


def consumers(plane: ControlPlane, gw: str, environment: str | None = None) -> list[dict[str, Any]]:
    query = {} if environment is None else {"environment": environment}
    return list(plane.mongo[f"gatewayid_{gw}"][CONSUMERS].find(query))


def consumer(plane: ControlPlane, gw: str, credential_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = plane.mongo[f"gatewayid_{gw}"][CONSUMERS].find_one({"_id": credential_id})
    return doc


def environment_settings(plane: ControlPlane, gw: str, environment: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = plane.mongo[f"gatewayid_{gw}"][ENVIRONMENT_SETTINGS].find_one(
        {"_id": environment}
    )
    return doc


def generation(plane: ControlPlane, gw: str, environment: str) -> int:
    doc = plane.mongo[plane.settings.sys_db_name][GENERATIONS].find_one({"_id": f"{gw}/{environment}"})
    return 0 if doc is None else int(doc["generation"])


def lookup_hash(plane: ControlPlane, key: str) -> str:
    """What a replica computes for a presented key: HMAC-SHA256 under the master key's pepper."""
    return hmac.new(api_key_pepper(plane.master_key), key.encode(), hashlib.sha256).hexdigest()


def wait_for(probe: Callable[[], bool], what: str, *, timeout: float = 10.0) -> None:
    assert eventually(probe, timeout=timeout, interval=0.01), f"timed out after {timeout}s waiting for {what}"


@pytest.fixture
def reload_messages(plane: ControlPlane) -> Iterator[Callable[[], list[str]]]:
    """Messages on ``imprun:reload`` since the fixture subscribed (drained on each call)."""
    pubsub = plane.redis.pubsub()
    pubsub.subscribe(RELOAD_CHANNEL)
    assert eventually(lambda: pubsub.get_message(timeout=0.1) is not None, timeout=5)  # the subscribe ack
    seen: list[str] = []

    def drain() -> list[str]:
        while (message := pubsub.get_message(timeout=0.05)) is not None:
            if message["type"] == "message":
                seen.append(message["data"])
        return seen

    yield drain
    pubsub.close()
