"""Under KubeRay a replica sees the caller's address only through Serve's HTTP proxy on its node.

APISIX sets ``X-Forwarded-For`` to the address it was called from (``proxy_rewrite_config``) and the
RayService's containers name APISIX's addresses in ``FORWARDED_ALLOW_IPS`` (``RayPods.ingress_proxies``).
These tests run Serve's own proxy server (``start_asgi_http_server``, what each node's proxy actor
runs) to check that the two meet: the scope Serve hands to the replica names the client when the
ingress sent it, and the connection's own address when anyone else did.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from ray.serve._private.http_util import start_asgi_http_server
from ray.serve.config import HTTPOptions

from tests.fixtures.services import free_port

Scope = dict[str, Any]


async def client_app(scope: Scope, receive: Any, send: Any) -> None:
    """Answers with the client address in the scope (the one Serve pickles for the replica)."""
    host = (scope.get("client") or ("",))[0]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": host.encode()})


def client_seen(forwarded_for: str) -> str:
    """Start Serve's proxy server on loopback, call it with ``forwarded_for``, return what it saw."""

    async def main() -> str:
        options = HTTPOptions(host="127.0.0.1", port=free_port())
        task, server = await start_asgi_http_server(
            client_app, options, event_loop=asyncio.get_running_loop()
        )
        try:
            async with asyncio.timeout(10):  # poll uvicorn's own start flag, with a deadline
                while not server.started:
                    if task.done():
                        task.result()  # the server failed: raise its error
                    await asyncio.sleep(0.01)
            async with httpx.AsyncClient() as http:
                answer = await http.get(
                    f"http://127.0.0.1:{options.port}/", headers={"X-Forwarded-For": forwarded_for}
                )
            return answer.text
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)

    return asyncio.run(main())


def test_the_ingress_names_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.0/8")  # here the "ingress" is loopback
    assert client_seen("203.0.113.7") == "203.0.113.7"
    # A value the caller forged in front of the ingress's own entry is not believed.
    assert client_seen("198.51.100.1, 203.0.113.7") == "203.0.113.7"


def test_a_caller_that_is_not_the_ingress_cannot_pick_its_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.244.0.0/16")  # the ingress's pods, not this caller
    assert client_seen("203.0.113.7") == "127.0.0.1"
