"""SDK methods for environment variables, live logs (sync and async follow) and MCP tools, live."""

from __future__ import annotations

import asyncio
import json

import pytest

from imprun.sdk import AsyncClient, Client, InvalidError, NotFoundError
from imprun.sdk.fluent import FunctionHandle
from imprun.sdk.models import LogEntry
from tests.fixtures.live_stack import SMALL_BUNDLE, LiveStack
from tests.fixtures.polling import eventually

GREET = (
    "import imp\n\n"
    "def main(name: str = 'world'):\n"
    '    """Greets with the GREETING variable."""\n'
    "    imp.log('greeting', name)\n"
    "    return {'text': imp.env.get('GREETING', 'hello') + ', ' + name, 'hasToken': 'TOKEN' in imp.env}\n"
)
SECRET = "s3cr3t-value-that-must-not-leak"


def test_variables_logs_and_tools(live_stack: LiveStack) -> None:
    gw = live_stack.gateway_id("vars")
    with live_stack.client() as client:
        client.create_gateway("vars", gateway_id=gw, bundle=SMALL_BUNDLE)
        gateway = client.gateway(gw)
        gateway.wait_started(timeout=240)
        dev = gateway.environment("dev")
        dev.update(auth_type="none")
        fn = gateway.function("greet")
        fn.save(GREET)
        fn.publish("dev")
        assert fn.call({"name": "Ada"}).body == {"text": "hello, Ada", "hasToken": False}

        _variables(client, gw, fn)
        _logs(client, live_stack, gw, fn)
        _tools(client, gw)
        gateway.delete()


def _variables(client: Client, gw: str, fn: FunctionHandle) -> None:
    dev = client.gateway(gw).environment("dev")
    assert dev.set_variable("GREETING", "bonjour").value == "bonjour"
    put = dev.set_variable("TOKEN", SECRET, secret=True)
    assert put.secret and put.value is None
    listed = dev.variables()
    assert {v.name: (v.value, v.secret) for v in listed} == {
        "GREETING": ("bonjour", False),
        "TOKEN": (None, True),
    }
    assert SECRET not in json.dumps([v.to_json() for v in listed])
    assert client.get_variable(gw, "dev", "TOKEN").value is None
    with pytest.raises(InvalidError):
        dev.set_variable("not an identifier", "x")
    assert eventually(
        lambda: fn.call({"name": "Ada"}).body == {"text": "bonjour, Ada", "hasToken": True}, timeout=30
    )
    dev.delete_variable("GREETING")
    with pytest.raises(NotFoundError):
        client.get_variable(gw, "dev", "GREETING")
    assert [v.name for v in dev.variables()] == ["TOKEN"]
    assert client.list_variables(gw, "prod") == []  # variables are per environment


def _logs(client: Client, live_stack: LiveStack, gw: str, fn: FunctionHandle) -> None:
    fn.call({"name": "logged"})

    def logged() -> bool:
        return any(e.message == "greeting logged" for e in client.logs(gw, "dev", function="greet"))

    assert eventually(logged, timeout=30)
    entry = next(
        e for e in client.logs(gw, "dev", function="greet", limit=5) if e.message == "greeting logged"
    )
    assert entry.function == "greet" and entry.request_id and entry.time

    async def follow_until(word: str) -> LogEntry:
        async with AsyncClient(
            live_stack.url, live_stack.token, data_plane_url=live_stack.data_plane_url
        ) as aio:

            async def first() -> LogEntry:
                async for item in aio.follow_logs(gw, "dev", function="greet", since="1s"):
                    if item.message == f"greeting {word}":
                        return item
                raise AssertionError("the stream ended")

            waiter = asyncio.ensure_future(first())

            async def keep_calling() -> None:
                while not waiter.done():
                    await aio.call(gw, "dev", "greet", {"name": word})
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(asyncio.gather(waiter, keep_calling()), timeout=60)
            return waiter.result()

    assert asyncio.run(follow_until("async")).function == "greet"


def _tools(client: Client, gw: str) -> None:
    name = f"greet_{gw.replace('-', '_')}"
    tool = client.create_mcp_tool(
        name, gateway_id=gw, environment="dev", function="greet", description="Greets."
    )
    assert (tool.name, tool.gateway_id, tool.function) == (name, gw, "greet")
    assert name in {t.name for t in client.list_mcp_tools()}
    assert isinstance(client.ai_gateway_status(), dict)
    client.delete_mcp_tool(name)
    assert name not in {t.name for t in client.list_mcp_tools()}
