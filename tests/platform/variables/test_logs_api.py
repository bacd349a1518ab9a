"""The logs API against a real control plane and Redis: entries written by the runtime's own writer
(``RedisLogStream``) are listed, filtered and followed over Server-Sent Events, and a follower of a
deleted environment is told so and let go."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime_actors.replica.log_stream import RedisLogStream, iso_time
from runtime_actors.shared.messages import LogEntry
from tests.fixtures.services import RunningServices
from tests.platform.functions.conftest import Headers, new_gateway, register


def write_logs(redis_url: str, gw: str, env: str, entries: list[tuple[str, str, LogEntry]]) -> None:
    """Append ``(function, requestId, entry)`` with the replicas' writer, and wait until it flushed."""

    async def run() -> None:
        stream = RedisLogStream(redis_url, f"{gw}/{env}", max_len=100)
        stream.start()
        for function, request_id, entry in entries:
            stream.append(function, request_id, [entry])
        await stream.close()  # drains the queue first
        assert stream.dropped == 0

    asyncio.run(run())


def logs_url(gw: str, env: str = "dev") -> str:
    return f"/v1/api-gateways/{gw}/environments/{env}/logs"


@pytest.fixture(scope="module")
def logs_gateway(functions_client: TestClient, owner: Headers) -> Iterator[str]:
    yield new_gateway(functions_client, owner)


@pytest.fixture(scope="module")
def redis_url(services: RunningServices) -> str:
    assert services.settings.redis_url is not None
    return services.settings.redis_url


def test_listing_is_newest_n_oldest_first_and_filters_by_function_and_since(
    functions_client: TestClient, owner: Headers, logs_gateway: str, redis_url: str
) -> None:
    gw, old = logs_gateway, time.time() - 3600
    write_logs(
        redis_url,
        gw,
        "staging",
        [("a", "r1", LogEntry(old, "info", "first"))]
        + [
            ("a" if i % 2 else "b", f"r{i}", LogEntry(time.time(), "warning", f"line {i}"))
            for i in range(2, 8)
        ],
    )
    listed = functions_client.get(logs_url(gw, "staging"), headers=owner)
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [e["message"] for e in entries] == ["first"] + [f"line {i}" for i in range(2, 8)]
    assert set(entries[0]) == {"time", "function", "requestId", "level", "message"}
    assert entries[0] == {
        "time": iso_time(old),
        "function": "a",
        "requestId": "r1",
        "level": "info",
        "message": "first",
    }

    newest = functions_client.get(logs_url(gw, "staging"), params={"limit": 2}, headers=owner).json()
    assert [e["message"] for e in newest["entries"]] == ["line 6", "line 7"]
    only_b = functions_client.get(logs_url(gw, "staging"), params={"function": "b"}, headers=owner).json()
    assert [e["message"] for e in only_b["entries"]] == ["line 2", "line 4", "line 6"]
    # ``since`` counts from when the entries were written to the stream (all just now)
    recent = functions_client.get(logs_url(gw, "staging"), params={"since": "10m"}, headers=owner).json()
    assert len(recent["entries"]) == 7
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    future = functions_client.get(logs_url(gw, "staging"), params={"since": later}, headers=owner).json()
    assert future == {"entries": []}
    assert functions_client.get(logs_url(gw, "prod"), headers=owner).json() == {"entries": []}


@pytest.mark.parametrize(
    "params",
    [{"since": "yesterday"}, {"since": "999999999d"}, {"limit": 0}, {"limit": 5000}, {"follow": "sure"}],
)
def test_bad_queries_are_422(
    functions_client: TestClient, owner: Headers, logs_gateway: str, params: dict[str, Any]
) -> None:
    response = functions_client.get(logs_url(logs_gateway), params=params, headers=owner)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"


def test_a_since_before_the_epoch_lists_everything(
    functions_client: TestClient, owner: Headers, logs_gateway: str
) -> None:
    response = functions_client.get(
        logs_url(logs_gateway), params={"since": "0001-01-01T00:00:00Z"}, headers=owner
    )
    assert response.status_code == 200, response.text


def test_logs_of_another_users_gateway_are_not_found(functions_client: TestClient, logs_gateway: str) -> None:
    stranger = register(functions_client)
    assert functions_client.get(logs_url(logs_gateway), headers=stranger).status_code == 404
    follow = functions_client.get(logs_url(logs_gateway), params={"follow": "true"}, headers=stranger)
    assert follow.status_code == 404 and follow.json()["error"]["code"] == "not_found"
    assert functions_client.get(logs_url(logs_gateway, "qa"), headers=stranger).status_code == 404


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` per Server-Sent Event; comments (keep-alives) are skipped."""
    event, data = "message", ""
    for line in lines:
        if line == "":
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]


def test_follow_sends_the_backlog_then_new_entries_as_they_are_written(
    functions_client: TestClient, owner: Headers, logs_gateway: str, redis_url: str
) -> None:
    gw, marker = logs_gateway, uuid.uuid4().hex
    write_logs(redis_url, gw, "dev", [("fn", "r0", LogEntry(time.time(), "info", "before"))])
    params = {"follow": "true", "function": "fn", "limit": 1}
    with functions_client.stream("GET", logs_url(gw), params=params, headers=owner) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        kind, backlog = next(events)
        assert kind == "message" and backlog["message"] == "before" and backlog["requestId"] == "r0"
        written_at = time.monotonic()
        writer = threading.Thread(
            target=write_logs,
            args=(
                redis_url,
                gw,
                "dev",
                [
                    ("other", "r1", LogEntry(time.time(), "info", "not for this follower")),
                    ("fn", "r2", LogEntry(time.time(), "error", marker)),
                ],
            ),
        )
        writer.start()
        kind, data = next(events)
        writer.join()
        assert time.monotonic() - written_at < 1.0
        assert kind == "message" and data["message"] == marker and data["level"] == "error"
        assert data["function"] == "fn" and data["requestId"] == "r2"


def test_follow_ends_with_a_message_when_the_environment_is_deleted(functions_client: TestClient) -> None:
    headers = register(functions_client)
    gw = new_gateway(functions_client, headers)
    with functions_client.stream(
        "GET", logs_url(gw, "prod"), params={"follow": "true"}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert functions_client.delete(f"/v1/api-gateways/{gw}", headers=headers).status_code == 202
        events = list(sse_events(response.iter_lines()))  # returns only because the stream ends
    assert events[-1][0] == "end"
    assert events[-1][1]["reason"] == "deleted" and gw in events[-1][1]["message"]


def test_follow_ends_when_its_session_does(functions_client: TestClient) -> None:
    headers = register(functions_client)
    gw = new_gateway(functions_client, headers)
    with functions_client.stream(
        "GET", logs_url(gw, "dev"), params={"follow": "true"}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert functions_client.post("/v1/auth/logout", headers=headers).status_code == 204
        events = list(sse_events(response.iter_lines()))  # returns only because the stream ends
    assert events[-1][0] == "end"
    assert events[-1][1]["reason"] == "signed-out"
