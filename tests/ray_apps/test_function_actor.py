"""The environment app end to end on the session's Ray head: hub, supervisor, jailed pool, HTTP.

One throwaway gateway's dev environment is deployed through ``LocalRayServeDriver`` with the session
services' URLs; the tests publish the way the functions API does (write the document into
``gatewayid_<gw>.__published_functions``, ``$inc`` the generation, ``PUBLISH imprun:reload``) and
call the functions over the Serve ingress, polling with deadlines for reloads to land. The worker
pool runs jailed (Landlock + seccomp are available on this machine).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray
import redis
from pymongo import MongoClient

from imprun.drivers.cluster import AppSpec, AppStatus
from imprun.drivers.function_runtime import RayFunctionRuntime
from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.errors import Conflict
from ray_apps.reload_hub import HUB_NAMESPACE, hub_name
from runtime_actors.protocol import GENERATIONS, LOG_STREAM_PREFIX, PUBLISHED_FUNCTIONS, RELOAD_CHANNEL
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices

pytestmark = [pytest.mark.ray, pytest.mark.services]

DEPLOY_TIMEOUT = 120.0
RELOAD_DEADLINE = 10.0
MAX_REQUEST_BYTES = 4096
Document = dict[str, Any]


class Environment:
    """The deployed dev environment of a throwaway gateway, and how to publish into it."""

    def __init__(self, services: RunningServices, ray_head: RunningRayHead, gateway_id: str) -> None:
        assert services.settings.mongo_url and services.settings.redis_url
        self.gateway_id = gateway_id
        self.key = f"{gateway_id}/dev"
        self.base = f"{ray_head.serve_url}/{gateway_id}/dev"
        self.settings = services.settings
        self.mongo: MongoClient[Document] = MongoClient(services.settings.mongo_url)
        self.redis = redis.Redis.from_url(services.settings.redis_url)
        self.http = httpx.Client(timeout=30)

    def publish(self, name: str, code: str, version: int, **fields: Any) -> int:
        document = {
            "name": name,
            "environment": "dev",
            "code": code,
            "version": version,
            "hash": hashlib.sha256(code.encode()).hexdigest(),
            **fields,
        }
        self._functions().update_one({"_id": f"dev:{name}"}, {"$set": document}, upsert=True)
        return self._bump()

    def unpublish(self, name: str) -> int:
        self._functions().delete_one({"_id": f"dev:{name}"})
        return self._bump()

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self.http.request(method, f"{self.base}/{path}", **options)

    def _functions(self) -> Any:
        return self.mongo[f"gatewayid_{self.gateway_id}"][PUBLISHED_FUNCTIONS]

    def _bump(self) -> int:
        updated = self.mongo[self.settings.sys_db_name][GENERATIONS].find_one_and_update(
            {"_id": self.key}, {"$inc": {"generation": 1}}, upsert=True, return_document=True
        )
        self.redis.publish(RELOAD_CHANNEL, self.key)
        assert updated is not None
        return int(updated["generation"])


def hello(answer: str) -> str:
    return f"def main(req):\n    return {{'answer': {answer!r}, 'path': req.path, 'method': req.method}}\n"


@pytest.fixture(scope="module")
def runtime_driver(
    services: RunningServices, ray_head: RunningRayHead, ray_driver: LocalRayServeDriver
) -> LocalRayServeDriver:
    """A driver that deploys replicas with the session services' URLs (sharing ray_driver's connection)."""
    ray_driver.ping()  # ray_driver owns the process's Ray connection; this driver only borrows it
    settings = ray_head.settings.model_copy(
        update={
            "mongo_url": services.settings.mongo_url,
            "redis_url": services.settings.redis_url,
            "max_request_bytes": MAX_REQUEST_BYTES,
        }
    )
    return LocalRayServeDriver(ray_head.address, settings)


@pytest.fixture(scope="module")
def env(
    services: RunningServices, ray_head: RunningRayHead, runtime_driver: LocalRayServeDriver
) -> Iterator[Environment]:
    environment = Environment(services, ray_head, f"fa-{uuid.uuid4().hex[:8]}")
    environment.publish("hello", hello("v1"), 1)
    runtime_driver.apply(AppSpec(environment.gateway_id, "dev", 1, 1, cpu=0.1, memory_mb=0))
    try:
        assert eventually(
            lambda: runtime_driver.observe(environment.gateway_id, "dev").status is AppStatus.RUNNING,
            timeout=DEPLOY_TIMEOUT,
        )
        assert eventually(lambda: environment.call("GET", "hello").status_code == 200, timeout=30)
        yield environment
    finally:
        runtime_driver.delete(environment.gateway_id, "dev")
        environment.mongo.drop_database(f"gatewayid_{environment.gateway_id}")
        environment.mongo.close()


def answer_of(env: Environment, path: str) -> Any:
    response = env.call("GET", path)
    return response.json().get("answer") if response.status_code == 200 else response.status_code


def test_a_published_function_answers_over_http(env: Environment) -> None:
    response = env.call("GET", "hello/sub/path?x=1", headers={"x-request-id": "req-hello-1"})

    assert response.status_code == 200
    assert response.json() == {"answer": "v1", "path": "/sub/path", "method": "GET"}
    assert response.headers["x-request-id"] == "req-hello-1"


def test_a_new_version_is_served_within_the_deadline(env: Environment) -> None:
    env.publish("hello", hello("v2"), 2)
    assert eventually(lambda: answer_of(env, "hello") == "v2", timeout=RELOAD_DEADLINE)


def test_a_version_that_fails_to_load_never_replaces_the_live_one(env: Environment) -> None:
    env.publish("stable", hello("good"), 1)
    assert eventually(lambda: answer_of(env, "stable") == "good", timeout=RELOAD_DEADLINE)

    env.publish("stable", "def main(req:\n    return 1\n", 2)
    env.publish("marker", hello("marker"), 1, methods=["GET"])  # a later generation than the broken one
    assert eventually(lambda: loaded(env, "marker"), timeout=RELOAD_DEADLINE)

    assert answer_of(env, "stable") == "good"

    def load_errors() -> list[str]:
        entries = env.redis.xrange(LOG_STREAM_PREFIX + env.key)
        return [
            fields[b"message"].decode()
            for _, fields in entries
            if fields[b"function"] == b"stable" and fields[b"level"] == b"error"
        ]

    assert eventually(lambda: any("failed to load" in m for m in load_errors()), timeout=5)


def test_an_unpublished_function_is_404(env: Environment) -> None:
    env.publish("temporary", hello("here"), 1)
    assert eventually(lambda: answer_of(env, "temporary") == "here", timeout=RELOAD_DEADLINE)

    env.unpublish("temporary")

    assert eventually(lambda: answer_of(env, "temporary") == 404, timeout=RELOAD_DEADLINE)
    assert env.call("GET", "temporary").json()["error"]["code"] == "not_found"


def test_nested_names_route_to_the_longest_prefix(env: Environment) -> None:
    env.publish("orders", hello("orders"), 1)
    env.publish("orders/items", hello("items"), 1)
    assert eventually(lambda: answer_of(env, "orders/items") == "items", timeout=RELOAD_DEADLINE)

    assert env.call("GET", "orders/items/42").json() == {"answer": "items", "path": "/42", "method": "GET"}
    assert env.call("GET", "orders/other").json()["answer"] == "orders"


def test_a_method_outside_the_functions_methods_is_405(env: Environment) -> None:
    env.publish("post-only", hello("posted"), 1, methods=["POST"])
    assert eventually(lambda: env.call("POST", "post-only").status_code == 200, timeout=RELOAD_DEADLINE)

    refused = env.call("GET", "post-only")

    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "invalid"


def test_a_body_over_the_limit_is_413(env: Environment) -> None:
    assert env.call("POST", "hello", content=b"x" * MAX_REQUEST_BYTES).status_code == 200
    too_big = env.call("POST", "hello", content=b"x" * (MAX_REQUEST_BYTES + 1))
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "too_large"


def test_a_function_past_its_timeout_is_504(env: Environment) -> None:
    env.publish(
        "spin", "def main(req):\n    while True:\n        pass\n", 1, timeoutSeconds=0.5, methods=["GET"]
    )
    assert eventually(lambda: loaded(env, "spin"), timeout=RELOAD_DEADLINE)

    started = time.monotonic()
    response = env.call("GET", "spin")

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert time.monotonic() - started < 5
    assert env.call("GET", "hello").status_code == 200  # the pool replaced the killed worker


def test_an_exception_is_500_with_a_request_id_that_is_in_the_log_stream(env: Environment) -> None:
    code = "import imp\n\ndef main(req):\n    imp.log('about to fail')\n    raise ValueError('boom')\n"
    env.publish("fails", code, 1, methods=["GET"])
    assert eventually(lambda: loaded(env, "fails"), timeout=RELOAD_DEADLINE)
    request_id = f"req-{uuid.uuid4().hex[:12]}"

    response = env.call("GET", "fails", headers={"x-request-id": request_id})

    assert response.status_code == 500
    assert response.json()["error"]["requestId"] == request_id
    assert response.headers["x-request-id"] == request_id

    def logged() -> list[dict[str, str]]:
        entries = env.redis.xrange(LOG_STREAM_PREFIX + env.key)
        decoded = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
        return [e for e in decoded if e["requestId"] == request_id]

    assert eventually(lambda: len(logged()) >= 2, timeout=5)
    entries = logged()
    assert {e["function"] for e in entries} == {"fails"}
    assert any(e["message"] == "about to fail" and e["level"] == "info" for e in entries)
    assert any(e["level"] == "error" for e in entries)
    assert set(entries[0]) == {"time", "function", "requestId", "level", "message"}


def test_tenant_code_uses_its_gateway_database_and_cannot_read_platform_collections(env: Environment) -> None:
    code = (
        "import imp\n\n"
        "def main(req):\n"
        "    notes = imp.db().collection('notes')\n"
        "    notes.insert_one({'text': req.query.get('text', '')})\n"
        "    try:\n"
        "        imp.db()['__published_functions'].find_one({})\n"
        "        leaked = True\n"
        "    except imp.DBError as exc:\n"
        "        leaked = exc.code\n"
        "    return {'count': notes.count_documents({}), 'leaked': leaked}\n"
    )
    env.publish("notes", code, 1, methods=["GET"])
    assert eventually(lambda: loaded(env, "notes"), timeout=RELOAD_DEADLINE)

    result = env.call("GET", "notes?text=hi").json()

    assert result == {"count": 1, "leaked": "forbidden"}
    assert env.mongo[f"gatewayid_{env.gateway_id}"]["notes"].find_one({}, {"_id": 0}) == {"text": "hi"}


def test_debug_runs_draft_code_in_the_environment_through_a_serve_handle(
    env: Environment, ray_driver: LocalRayServeDriver
) -> None:
    runtime = RayFunctionRuntime(ray_driver.ping)
    code = "import imp\n\ndef main(req):\n    imp.log('debugging')\n    return {'draft': req.json()}\n"

    result = runtime.debug(env.gateway_id, "dev", code, {"method": "POST", "body": {"a": 1}})

    assert result["status"] == 200
    assert result["body"] == {"draft": {"a": 1}}
    assert [log["message"] for log in result["logs"]] == ["debugging"]
    assert result["durationMs"] >= 0
    assert env.call("GET", "debug").status_code == 404  # nothing was published
    with pytest.raises(Conflict, match="not deployed"):
        runtime.debug("never-deployed-gw", "dev", code, {})


def test_one_hub_per_node_follows_the_environment(env: Environment) -> None:
    [node_id] = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    settings = env.settings
    assert settings.mongo_url
    hub = ray.get_actor(
        hub_name(node_id, settings.mongo_url, settings.redis_url, settings.sys_db_name),
        namespace=HUB_NAMESPACE,
    )

    stats = ray.get(hub.stats.remote(), timeout=10)

    assert env.key in stats["watched"]
    assert stats["feed"]["resyncs"] >= 1


def loaded(env: Environment, name: str) -> bool:
    """Whether a function published with ``methods=["GET"]`` is served: a POST is 405, not 404."""
    return env.call("POST", name).status_code == 405
