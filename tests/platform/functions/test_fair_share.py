"""One user's long-running work cannot starve the others: debug runs and log followers are bounded
per user (429 with Retry-After), and debug runs wait on threads of their own, not on the pool that
serves every other route. The runtime is a stand-in whose runs block until released."""

from __future__ import annotations

import contextlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.functions.conftest import Headers, InMemoryCluster, new_gateway, register

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


class HeldDataPlane:
    """An HTTP server on a free port whose every answer waits until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0
        lock = threading.Lock()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with lock:
                    held.waiting += 1
                held.release.wait(60)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.timeout(60)  # before the fix, the request below waited for a thread forever
def test_console_calls_count_as_debug_runs_and_leave_the_request_pool_free(
    services: RunningServices, cluster: InMemoryCluster
) -> None:
    held = HeldDataPlane()
    settings = services.settings.model_copy(
        update={
            "sys_db_name": f"imprun_sys_fair_{uuid.uuid4().hex[:6]}",
            "reconcile_interval_seconds": 0.1,
            "serve_port": held.port,
        }
    )
    try:
        with TestClient(create_app(settings, driver=cluster)) as client:
            owner, other = register(client), register(client)
            gw = new_gateway(client, owner)
            call = f"/v1/api-gateways/{gw}/environments/dev/call"
            plane = client.app.state.plane  # type: ignore[attr-defined]
            answers: list[int] = []

            def try_it() -> None:
                answers.append(client.post(call, json={"function": "fn"}, headers=owner).status_code)

            threads = [threading.Thread(target=try_it) for _ in range(plane.debug_runs.limit)]
            for thread in threads:
                thread.start()
            assert eventually(lambda: held.waiting == plane.debug_runs.limit)
            refused = client.post(call, json={"function": "fn"}, headers=owner)
            assert refused.status_code == 429, refused.text

            plane.debug_runs.limit = 40  # as many held calls as the request pool has threads
            threads += [threading.Thread(target=try_it) for _ in range(40 - len(threads))]
            for thread in threads[2:]:
                thread.start()
            assert eventually(lambda: plane.debug_runs.held(owner_id(client, owner)) == 40)
            assert client.get("/v1/api-gateways", headers=other).status_code == 200
            held.release.set()
            for thread in threads:
                thread.join(30)
            assert answers == [200] * 40
    finally:
        held.close()
