"""Publishing and promotion over the real API: the published documents, the generation counters and
the reload announcement, the promotion pipeline's rules, deployments, unpublishing, debug-run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime_actors.shared.messages import PublishedFunction
from runtime_actors.shared.names import GENERATIONS, PUBLISHED_FUNCTIONS, RELOAD_CHANNEL
from tests.fixtures.polling import eventually
from tests.platform.functions.conftest import Headers, InMemoryCluster, new_gateway, wait_for_phase

V1 = "def main(name: str = 'world'):\n    return {'hello': name}\n"
V2 = "def main(name: str = 'world'):\n    return {'hi': name}\n"


def url(gw: str, *parts: str) -> str:
    return "/".join([f"/v1/api-gateways/{gw}/functions", *parts])


def published_doc(plane: Any, gw: str, env: str, name: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = plane.mongo[f"gatewayid_{gw}"][PUBLISHED_FUNCTIONS].find_one(
        {"name": name, "environment": env}
    )
    return doc


def generation(plane: Any, gw: str, env: str) -> int:
    doc = plane.mongo[plane.settings.sys_db_name][GENERATIONS].find_one({"_id": f"{gw}/{env}"})
    return 0 if doc is None else int(doc["generation"])


@pytest.fixture
def create(
    functions_client: TestClient, owner: Headers, unique_function: Callable[[str], str]
) -> Callable[..., str]:
    def _create(gw: str, code: str = V1) -> str:
        name = unique_function("fn")
        response = functions_client.post(url(gw), json={"name": name, "code": code}, headers=owner)
        assert response.status_code == 201, response.text
        return name

    return _create


@pytest.fixture
def reload_messages(plane: Any) -> Iterator[Callable[[], list[str]]]:
    pubsub = plane.redis.pubsub()
    pubsub.subscribe(RELOAD_CHANNEL)
    assert eventually(lambda: pubsub.get_message(timeout=0.1) is not None, timeout=5)  # the subscribe ack
    seen: list[str] = []

    def drain() -> list[str]:
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            if message["type"] == "message":
                seen.append(message["data"])
        return seen

    yield drain
    pubsub.close()


def test_publish_writes_the_document_then_bumps_the_generation(
    functions_client: TestClient,
    owner: Headers,
    gateway: str,
    create: Callable[..., str],
    plane: Any,
    reload_messages: Callable[[], list[str]],
) -> None:
    name = create(gateway)
    before, staging_before = generation(plane, gateway, "dev"), generation(plane, gateway, "staging")
    response = functions_client.post(
        url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == name and body["environment"] == "dev" and body["version"] == 1
    assert body["publishedAt"] and body["publishedBy"].startswith("dev-") and body["promotedFrom"] is None

    doc = published_doc(plane, gateway, "dev", name)
    assert doc is not None and doc["_id"] == f"dev:{name}"
    assert doc["code"] == V1 and doc["version"] == 1
    assert doc["hash"] == hashlib.sha256(V1.encode()).hexdigest()
    assert doc["methods"] == ["GET", "POST"] and doc["timeoutSeconds"] == 10
    assert doc["inputSchema"]["properties"]["name"] == {"type": "string", "default": "world"}
    runtime_view = PublishedFunction.from_document(doc)  # the shape replicas read
    assert (runtime_view.name, runtime_view.environment, runtime_view.version) == (name, "dev", 1)
    assert runtime_view.methods == ("GET", "POST") and runtime_view.published_at == doc["publishedAt"]

    assert generation(plane, gateway, "dev") == before + 1
    assert generation(plane, gateway, "staging") == staging_before  # only dev changed
    assert f"{gateway}/dev" in reload_messages()

    got = functions_client.get(url(gateway, name), headers=owner).json()
    assert set(got["published"]) == {"dev"}
    assert got["published"]["dev"]["version"] == 1 and got["published"]["dev"]["publishedAt"]

    functions_client.patch(url(gateway, name), json={"code": V2}, headers=owner)
    again = functions_client.post(url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner)
    assert again.json()["version"] == 2
    doc = published_doc(plane, gateway, "dev", name)
    assert doc is not None and doc["code"] == V2 and doc["version"] == 2
    assert plane.mongo[f"gatewayid_{gateway}"][PUBLISHED_FUNCTIONS].count_documents({"name": name}) == 1
    assert generation(plane, gateway, "dev") == before + 2


def test_promotion_copies_the_published_version_not_the_draft(
    functions_client: TestClient, owner: Headers, gateway: str, create: Callable[..., str], plane: Any
) -> None:
    name = create(gateway)
    functions_client.post(url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner)
    functions_client.patch(
        url(gateway, name), json={"code": V2, "changelog": "not tested yet"}, headers=owner
    )
    staging_before = generation(plane, gateway, "staging")

    staged = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner
    )
    assert staged.status_code == 200, staged.text
    assert staged.json()["version"] == 1 and staged.json()["promotedFrom"] == "dev"
    doc = published_doc(plane, gateway, "staging", name)
    assert doc is not None and doc["code"] == V1 and doc["version"] == 1 and doc["promotedFrom"] == "dev"
    assert generation(plane, gateway, "staging") == staging_before + 1

    prod = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "prod"}, headers=owner
    )
    assert (
        prod.status_code == 200 and prod.json()["version"] == 1 and prod.json()["promotedFrom"] == "staging"
    )
    doc = published_doc(plane, gateway, "prod", name)
    assert doc is not None and doc["code"] == V1 and doc["hash"] == hashlib.sha256(V1.encode()).hexdigest()

    got = functions_client.get(url(gateway, name), headers=owner).json()
    assert got["version"] == 2
    assert {env: p["version"] for env, p in got["published"].items()} == {"dev": 1, "staging": 1, "prod": 1}
    assert got["published"]["prod"]["promotedFrom"] == "staging"

    # With the pipeline disabled any environment may be named as the source.
    functions_client.post(url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner)
    skip = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "prod", "from": "dev"}, headers=owner
    )
    assert skip.status_code == 200 and skip.json()["version"] == 2


def test_promotion_needs_something_published_in_the_source(
    functions_client: TestClient, owner: Headers, gateway: str, create: Callable[..., str]
) -> None:
    name = create(gateway)
    response = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner
    )
    assert response.status_code == 404
    assert "not published in dev" in response.json()["error"]["message"]
    first = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "dev"}, headers=owner
    )
    assert first.status_code == 409 and "first stage" in first.json()["error"]["message"]
    same = functions_client.post(
        url(gateway, name, "deploy-to-stage"), json={"targetStage": "dev", "from": "dev"}, headers=owner
    )
    assert same.status_code == 422
    missing = functions_client.post(
        url(gateway, "no-such-fn", "publish"), json={"environment": "dev"}, headers=owner
    )
    assert missing.status_code == 404
    unknown_env = functions_client.post(
        url(gateway, name, "publish"), json={"environment": "qa"}, headers=owner
    )
    assert unknown_env.status_code == 422


def test_the_enabled_pipeline_decides_the_order(
    functions_client: TestClient, owner: Headers, create: Callable[..., str], plane: Any
) -> None:
    gw = new_gateway(functions_client, owner)
    pipeline = {"enabled": True, "stages": ["dev", "staging", "prod"]}
    assert (
        functions_client.patch(
            f"/v1/api-gateways/{gw}", json={"promotionPipeline": pipeline}, headers=owner
        ).status_code
        == 200
    )
    name = create(gw)

    direct = functions_client.post(url(gw, name, "publish"), json={"environment": "prod"}, headers=owner)
    assert direct.status_code == 409
    assert "use deploy-to-stage" in direct.json()["error"]["message"]
    assert published_doc(plane, gw, "prod", name) is None

    assert (
        functions_client.post(
            url(gw, name, "publish"), json={"environment": "dev"}, headers=owner
        ).status_code
        == 200
    )
    skip = functions_client.post(
        url(gw, name, "deploy-to-stage"), json={"targetStage": "prod", "from": "dev"}, headers=owner
    )
    assert skip.status_code == 409 and "from staging" in skip.json()["error"]["message"]
    early = functions_client.post(
        url(gw, name, "deploy-to-stage"), json={"targetStage": "prod"}, headers=owner
    )
    assert early.status_code == 404  # the stage before prod is staging, where nothing is published yet

    staged = functions_client.post(
        url(gw, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner
    )
    assert staged.status_code == 200
    prod = functions_client.post(
        url(gw, name, "deploy-to-stage"), json={"targetStage": "prod"}, headers=owner
    )
    assert prod.status_code == 200 and prod.json()["promotedFrom"] == "staging"

    short = {"enabled": True, "stages": ["dev", "prod"]}
    functions_client.patch(f"/v1/api-gateways/{gw}", json={"promotionPipeline": short}, headers=owner)
    outside = functions_client.post(
        url(gw, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner
    )
    assert outside.status_code == 409 and "not a stage" in outside.json()["error"]["message"]
    assert (
        functions_client.post(
            url(gw, name, "publish"), json={"environment": "staging"}, headers=owner
        ).status_code
        == 200
    )
    assert (
        functions_client.post(
            url(gw, name, "deploy-to-stage"), json={"targetStage": "prod"}, headers=owner
        ).status_code
        == 200
    )


def test_delete_unpublishes_everywhere(
    functions_client: TestClient, owner: Headers, gateway: str, create: Callable[..., str], plane: Any
) -> None:
    name = create(gateway)
    functions_client.post(url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner)
    functions_client.post(url(gateway, name, "publish"), json={"environment": "prod"}, headers=owner)
    before = {env: generation(plane, gateway, env) for env in ("dev", "staging", "prod")}

    deleted = functions_client.delete(url(gateway, name), headers=owner)
    assert deleted.status_code == 200 and deleted.json()["unpublishedFrom"] == ["dev", "prod"]
    assert all(published_doc(plane, gateway, env, name) is None for env in ("dev", "staging", "prod"))
    after = {env: generation(plane, gateway, env) for env in ("dev", "staging", "prod")}
    assert after == {"dev": before["dev"] + 1, "staging": before["staging"], "prod": before["prod"] + 1}


def test_deployments_are_listed_newest_first(
    functions_client: TestClient, owner: Headers, create: Callable[..., str]
) -> None:
    gw = new_gateway(functions_client, owner)
    first, second = create(gw), create(gw)
    functions_client.post(url(gw, first, "publish"), json={"environment": "dev"}, headers=owner)
    functions_client.post(url(gw, first, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner)
    functions_client.patch(url(gw, second), json={"code": V2}, headers=owner)
    functions_client.post(url(gw, second, "publish"), json={"environment": "prod"}, headers=owner)

    deployments = functions_client.get(f"/v1/api-gateways/{gw}/deployments", headers=owner).json()
    assert [(d["function"], d["environment"], d["version"], d["promotedFrom"]) for d in deployments] == [
        (second, "prod", 2, None),
        (first, "staging", 1, "dev"),
        (first, "dev", 1, None),
    ]
    assert all(d["by"].startswith("dev-") and d["at"] for d in deployments)
    assert deployments[0]["at"] >= deployments[1]["at"] >= deployments[2]["at"]
    only_first = functions_client.get(
        f"/v1/api-gateways/{gw}/deployments", params={"function": first}, headers=owner
    )
    assert [d["environment"] for d in only_first.json()] == ["staging", "dev"]
    limited = functions_client.get(f"/v1/api-gateways/{gw}/deployments", params={"limit": 1}, headers=owner)
    assert len(limited.json()) == 1


class RecordingRuntime:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def debug(
        self, gateway_id: str, environment: str, code: str, invocation: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append((gateway_id, environment, code, invocation))
        return {"status": 200, "headers": {}, "body": {"ok": True}, "logs": [], "durationMs": 1.0}


def test_debug_run(
    functions_client: TestClient, owner: Headers, gateway: str, create: Callable[..., str], plane: Any
) -> None:
    name = create(gateway)
    bad = functions_client.post(
        url(gateway, name, "debug"), json={"code": "import os\ndef main(req): pass"}, headers=owner
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["line"] == 1
    if getattr(plane, "function_runtime", None) is None:
        unavailable = functions_client.post(url(gateway, name, "debug"), json={}, headers=owner)
        assert unavailable.status_code == 503 and "needs Ray" in unavailable.json()["error"]["message"]
    wrong_method = functions_client.post(url(gateway, name, "debug"), json={"method": "FETCH"}, headers=owner)
    assert wrong_method.status_code == 422

    previous = getattr(plane, "function_runtime", None)
    runtime = RecordingRuntime()
    plane.function_runtime = runtime
    try:
        ran = functions_client.post(
            url(gateway, name, "debug"),
            json={
                "method": "get",
                "query": {"a": "1", "b": ["2", "3"]},
                "headers": {"X-Test": "y"},
                "body": {"k": 1},
            },
            headers=owner,
        )
        assert ran.status_code == 200 and ran.json()["body"] == {"ok": True}
        given = functions_client.post(
            url(gateway, name, "debug"), json={"code": V2, "body": "raw"}, headers=owner
        )
        assert given.status_code == 200
    finally:
        plane.function_runtime = previous
    (gw, env, code, invocation), (_, _, given_code, raw) = runtime.calls
    assert (gw, env, code, given_code) == (gateway, "dev", V1, V2)
    assert invocation["method"] == "GET" and invocation["function"] == name and invocation["path"] == ""
    assert invocation["query"] == {"a": ["1"], "b": ["2", "3"]}
    assert invocation["headers"] == {"x-test": "y", "content-type": "application/json"}
    assert json.loads(invocation["body"]) == {"k": 1} and invocation["request_id"]
    assert raw["method"] == "POST" and raw["body"] == b"raw" and "content-type" not in raw["headers"]
    assert published_doc(plane, gateway, "dev", name) is None  # a debug run publishes nothing


def test_a_gateway_being_deleted_refuses_function_changes(
    functions_client: TestClient,
    owner: Headers,
    create: Callable[..., str],
    cluster: InMemoryCluster,
    plane: Any,
) -> None:
    gw = new_gateway(functions_client, owner)
    name = create(gw)
    functions_client.post(url(gw, name, "publish"), json={"environment": "dev"}, headers=owner)
    cluster.hold_deletes(gw)
    try:
        assert functions_client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
        wait_for_phase(functions_client, owner, gw, "Deleting")
        attempts = [
            functions_client.post(url(gw), json={"name": "late", "code": V1}, headers=owner),
            functions_client.patch(url(gw, name), json={"code": V2}, headers=owner),
            functions_client.post(url(gw, name, "publish"), json={"environment": "dev"}, headers=owner),
            functions_client.post(
                url(gw, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=owner
            ),
            functions_client.delete(url(gw, name), headers=owner),
        ]
        assert [a.status_code for a in attempts] == [409] * len(attempts)
        assert all("being deleted" in a.json()["error"]["message"] for a in attempts)
        assert functions_client.get(url(gw, name), headers=owner).status_code == 200  # reads still work
    finally:
        cluster.release_deletes(gw)
    assert eventually(
        lambda: functions_client.get(f"/v1/api-gateways/{gw}", headers=owner).status_code == 404, timeout=30
    )

    sys_db = plane.mongo[plane.settings.sys_db_name]
    generation_before = generation(plane, gw, "dev")
    plane.functions.forget_gateway(gw)  # what the gateway teardown should call (see the report)
    assert sys_db.functions.count_documents({"gatewayId": gw}) == 0
    assert sys_db.function_history.count_documents({"gatewayId": gw}) == 0
    assert sys_db.deployments.count_documents({"gatewayId": gw}) == 0
    assert generation(plane, gw, "dev") == generation_before >= 1  # counters only ever grow
