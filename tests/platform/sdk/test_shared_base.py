"""``Client`` and ``AsyncClient`` send the same requests: counted at the transport, the I/O seam.

An ``httpx.MockTransport`` answers as the control plane and the data plane would; the clients are
real. A data-plane ``call`` looks the environment's URL up once per client, not once per call, and
both clients send the same route the same way (path, query, body, token) and map an error status to
the same typed exception. No services needed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from imprun.sdk import AsyncClient, Client, NotFoundError, NotLoggedInError, routes

CONTROL = "http://control.test"
DATA = "http://data.test/gw-one/dev"


class Recorder:
    """Answers like imprun and remembers every request (method, URL, body, authorization)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, object, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, str(request.url), body, request.headers.get("authorization")))
        if request.url.path == "/v1/api-gateways/gw-one/environments/dev":
            return httpx.Response(200, json={"name": "dev", "url": DATA + "/"})
        if request.url.path == "/v1/api-gateways/gw-one/environments/nowhere/logs":
            body = {"error": {"code": "not_found", "message": "no environment nowhere"}}
            return httpx.Response(404, json=body)
        if request.url.host == "data.test":
            return httpx.Response(200, json={"echo": body}, headers={"x-request-id": "r1"})
        return httpx.Response(200, json=[])

    def count(self) -> Counter[str]:
        return Counter(f"{method} {url.split('?')[0]}" for method, url, _, _ in self.requests)


def sync_calls(recorder: Recorder) -> list[object]:
    with Client(CONTROL, "tok", transport=httpx.MockTransport(recorder)) as client:
        return [client.call("gw-one", "dev", "square", {"x": i}).body for i in range(3)]


def async_calls(recorder: Recorder) -> list[object]:
    async def run() -> list[object]:
        async with AsyncClient(CONTROL, "tok", transport=httpx.MockTransport(recorder)) as client:
            return [(await client.call("gw-one", "dev", "square", {"x": i})).body for i in range(3)]

    return asyncio.run(run())


@pytest.mark.parametrize("calls", [sync_calls, async_calls], ids=["sync", "async"])
def test_the_environment_url_is_looked_up_once_per_client(calls: object) -> None:
    recorder = Recorder()
    bodies = calls(recorder)  # type: ignore[operator]
    assert bodies == [{"echo": {"x": i}} for i in range(3)]
    assert recorder.count() == {
        f"GET {CONTROL}/v1/api-gateways/gw-one/environments/dev": 1,
        f"POST {DATA}/square": 3,
    }


def test_both_clients_send_a_route_alike_and_raise_the_same_error() -> None:
    sync_seen, async_seen = Recorder(), Recorder()
    spec = routes.logs("gw-one", "nowhere", function="square", since="5m", limit=3)
    with (
        Client(CONTROL, "tok", transport=httpx.MockTransport(sync_seen)) as client,
        pytest.raises(NotFoundError, match="no environment nowhere"),
    ):
        client.run(spec)

    async def run() -> None:
        async with AsyncClient(CONTROL, "tok", transport=httpx.MockTransport(async_seen)) as client:
            with pytest.raises(NotFoundError, match="no environment nowhere"):
                await client.run(spec)

    asyncio.run(run())
    assert sync_seen.requests == async_seen.requests
    assert sync_seen.requests == [
        (
            "GET",
            f"{CONTROL}/v1/api-gateways/gw-one/environments/nowhere/logs?function=square&since=5m&limit=3",
            None,
            "Bearer tok",
        )
    ]


def test_neither_client_sends_a_route_that_needs_a_login_without_one() -> None:
    recorder = Recorder()
    with Client(CONTROL, transport=httpx.MockTransport(recorder)) as client:
        client.token = None
        with pytest.raises(NotLoggedInError):
            client.me()

    async def run() -> None:
        async with AsyncClient(CONTROL, transport=httpx.MockTransport(recorder)) as client:
            client.token = None
            with pytest.raises(NotLoggedInError):
                await client.me()

    asyncio.run(run())
    assert recorder.requests == []
