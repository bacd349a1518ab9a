"""One user's long-running work cannot starve the others: debug runs and log followers are bounded
per user (429 with Retry-After), and debug runs wait on threads of their own, not on the pool that
serves every other route. The runtime is a stand-in whose runs block until released."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.polling import eventually
from tests.platform.functions.conftest import Headers, register

CODE = "def main():\n    return {'ok': True}\n"


class BlockingRuntime:
    """Debug runs that hold their thread until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self._lock = threading.Lock()

    def debug(
        self, gateway_id: str, environment: str, code: str, invocation: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            self.running += 1
        self.release.wait(60)
        return {"status": 200, "headers": {}, "body": {"ok": True}, "logs": [], "durationMs": 1.0}


@pytest.fixture
def blocking_runtime(plane: Any) -> Iterator[BlockingRuntime]:
    runtime, previous = BlockingRuntime(), plane.function_runtime
    plane.function_runtime = runtime
    try:
        yield runtime
    finally:
        runtime.release.set()
        plane.function_runtime = previous


def _function(client: TestClient, headers: Headers, gw: str) -> str:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    response = client.post(
        f"/v1/api-gateways/{gw}/functions", json={"name": name, "code": CODE}, headers=headers
    )
    assert response.status_code == 201, response.text
    return f"/v1/api-gateways/{gw}/functions/{name}/debug"


def _in_background(client: TestClient, path: str, headers: Headers, answers: list[int]) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: answers.append(client.post(path, json={}, headers=headers).status_code)
    )
    thread.start()
    return thread


@pytest.mark.timeout(60)
def test_a_users_debug_runs_are_bounded_and_the_others_keep_being_served(
    functions_client: TestClient, gateway: str, owner: Headers, blocking_runtime: BlockingRuntime, plane: Any
) -> None:
    debug = _function(functions_client, owner, gateway)
    answers: list[int] = []
    threads = [_in_background(functions_client, debug, owner, answers) for _ in range(plane.debug_runs.limit)]
    assert eventually(lambda: blocking_runtime.running == plane.debug_runs.limit)
    refused = functions_client.post(debug, json={}, headers=owner)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1 and "debug runs" in refused.json()["error"]["message"]

    other = register(functions_client)
    assert functions_client.get("/v1/api-gateways", headers=other).status_code == 200
    blocking_runtime.release.set()
    for thread in threads:
        thread.join(30)
    assert answers == [200] * plane.debug_runs.limit
    assert functions_client.post(debug, json={}, headers=owner).status_code == 200, "the slots came back"


@pytest.mark.timeout(60)  # before the fix, the request below waited for a thread forever
def test_debug_runs_leave_the_request_pool_free(
    functions_client: TestClient, gateway: str, owner: Headers, blocking_runtime: BlockingRuntime, plane: Any
) -> None:
    """As many blocked runs as the request pool has threads (40): other requests are still served."""
    debug = _function(functions_client, owner, gateway)
    other = register(functions_client)
    limit, plane.debug_runs.limit = plane.debug_runs.limit, 40
    answers: list[int] = []
    try:
        threads = [_in_background(functions_client, debug, owner, answers) for _ in range(40)]
        assert eventually(lambda: blocking_runtime.running == plane.debug_threads.total_tokens)
        assert eventually(lambda: plane.debug_runs.held(owner_id(functions_client, owner)) == 40)
        assert functions_client.get("/v1/api-gateways", headers=other).status_code == 200
        assert functions_client.get("/v1/auth/me", headers=other).status_code == 200
    finally:
        blocking_runtime.release.set()
        plane.debug_runs.limit = limit
    for thread in threads:
        thread.join(30)
    assert answers == [200] * 40


def owner_id(client: TestClient, headers: Headers) -> str:
    user_id: str = client.get("/v1/auth/me", headers=headers).json()["id"]
    return user_id


@pytest.mark.timeout(60)  # before the fix, the refused request below streamed forever
def test_a_user_follows_a_bounded_number_of_log_streams(
    functions_client: TestClient, gateway: str, owner: Headers, plane: Any
) -> None:
    logs = f"/v1/api-gateways/{gateway}/environments/dev/logs"
    with contextlib.ExitStack() as streams:
        for _ in range(plane.log_followers.limit):
            opened = streams.enter_context(
                functions_client.stream("GET", logs, params={"follow": "true"}, headers=owner)
            )
            assert opened.status_code == 200
        refused = functions_client.get(logs, params={"follow": "true"}, headers=owner)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert functions_client.get(logs, headers=owner).status_code == 200, "listing is not following"
    me = owner_id(functions_client, owner)
    assert eventually(lambda: plane.log_followers.held(me) == 0), "closed streams give their slot back"
