"""``imprun.Client`` against the live stack: real control plane over HTTP, real Ray data plane."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from imprun.sdk import (
    AsyncClient,
    Client,
    ConflictError,
    ForbiddenError,
    ImprunConnectionError,
    InvalidError,
    NotFoundError,
    NotLoggedInError,
    UnauthorizedError,
)
from tests.fixtures.live_stack import PASSWORD, SMALL_BUNDLE, LiveStack
from tests.fixtures.polling import eventually

TAX = 'def main(income: float, deductions: float = 0):\n    """Flat tax."""\n    return {"tax": (income - deductions) * 0.22}\n'
TAX_V2 = TAX.replace("0.22", "0.25")
SQUARE = "import imp\n\ndef main(x: int):\n    imp.log('squaring', x)\n    return {'square': x * x}\n"


def test_auth_errors_are_typed(live_stack: LiveStack) -> None:
    with Client(live_stack.url, token=None, data_plane_url=live_stack.data_plane_url) as anonymous:
        anonymous.token = None
        with pytest.raises(NotLoggedInError, match="imprun login"):
            anonymous.list_gateways()
        with pytest.raises(UnauthorizedError) as caught:
            anonymous.login(live_stack.username, "wrong-password-123")
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        with pytest.raises(ConflictError):
            anonymous.register(live_stack.username, PASSWORD)
    with live_stack.client() as client:
        assert client.me().username == live_stack.username
        assert client.healthz() == {"status": "ok"}
        assert "imprun_" in client.metrics()


def test_an_unreachable_control_plane_names_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        with (
            Client(f"http://127.0.0.1:{port}", "t") as client,
            pytest.raises(ImprunConnectionError) as caught,
        ):
            client.list_gateways()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert caught.value.url.startswith(f"http://127.0.0.1:{port}/v1/api-gateways")


def test_the_whole_function_path(live_stack: LiveStack) -> None:
    gw_id = live_stack.gateway_id("sdk")
    with live_stack.client() as client:
        created = client.create_gateway("SDK test", gateway_id=gw_id, bundle=SMALL_BUNDLE)
        assert (created.gateway_id, created.phase) == (gw_id, "Creating")
        with pytest.raises(ConflictError):
            client.create_gateway("again", gateway_id=gw_id)
        with pytest.raises(NotFoundError) as missing:
            client.get_gateway("no-such-gateway")
        assert missing.value.status == 404

        phases: list[str] = []
        gateway = client.gateway(gw_id)
        started = gateway.wait_started(timeout=240, on_change=lambda g: phases.append(g.phase))
        assert started.phase == "Started" and phases[-1] == "Started"
        assert {e.name for e in client.list_environments(gw_id)} == {"dev", "staging", "prod"}
        assert any(e.reason for e in gateway.events())
        for env in ("dev", "staging"):
            assert gateway.environment(env).update(auth_type="none").auth_type == "none"

        fn = gateway.function("calculateTax")
        with pytest.raises(InvalidError) as bad:
            fn.save("def main(:\n    pass\n")
        assert bad.value.status == 400
        assert bad.value.details[0]["line"] == 1
        assert fn.save(TAX).version == 1
        assert fn.save(TAX).version == 1  # unchanged code: no new version
        assert fn.get().input_schema is not None

        debug = fn.debug({"income": 100, "deductions": 0})
        assert debug.status == 200 and debug.body == {"tax": 22.0}
        debugged_v2 = fn.debug({"income": 100}, code=TAX_V2)
        assert debugged_v2.body == {"tax": 25.0}

        published = fn.publish("dev")
        assert (published.environment, published.version) == ("dev", 1)
        result = fn.call({"income": 100, "deductions": 0}, env="dev")
        assert (result.status, result.body) == (200, {"tax": 22.0})
        with pytest.raises(InvalidError) as typed:
            fn.call({"income": "lots"}, env="dev")
        assert typed.value.status == 422

        with pytest.raises(NotFoundError):
            fn.promote("prod", from_="staging")  # nothing in staging yet
        promoted = fn.promote("staging")
        assert (promoted.environment, promoted.version) == ("staging", 1)
        assert fn.call({"income": 10}, env="staging").body == {"tax": 2.2}

        fn.save(TAX_V2, changelog="25 %")
        history = fn.history()
        assert [v.version for v in history][:2] == [2, 1] or [v.version for v in history][-2:] == [1, 2]
        assert any(v.changelog == "25 %" for v in history)
        deployments = fn.deployments()
        assert {(d.environment, d.version) for d in deployments} >= {("dev", 1), ("staging", 1)}
        assert any(d.promoted_from == "dev" for d in deployments)
        assert [f.name for f in gateway.functions()] == ["calculateTax"]

        asyncio.run(_async_round_trip(live_stack, gw_id))

        assert gateway.delete().state == "Deleted"


async def _async_round_trip(live_stack: LiveStack, gw_id: str) -> None:
    async with AsyncClient(live_stack.url, live_stack.token, data_plane_url=live_stack.data_plane_url) as aio:
        assert (await aio.me()).username == live_stack.username
        debug = await aio.debug_function(gw_id, "calculateTax", body={"income": 4})
        assert debug.body == {"tax": 1.0} and debug.duration_ms is not None
        assert (await aio.call(gw_id, "dev", "calculateTax", {"income": 100})).body == {"tax": 22.0}


def test_applications_grants_and_keys(live_stack: LiveStack) -> None:
    gw_id = live_stack.gateway_id("keys")
    with live_stack.client() as client:
        gateway = client.gateway(gw_id)
        client.create_gateway("keys", gateway_id=gw_id, bundle=SMALL_BUNDLE)
        gateway.wait_started(timeout=240)
        fn = gateway.function("square")
        fn.save(SQUARE)
        fn.publish("dev")
        debug = fn.debug({"x": 3})
        assert debug.body == {"square": 9}
        assert [line.message for line in debug.logs] == ["squaring 3"]

        app = client.create_application("mobile", description="the app")
        assert app.name == "mobile" and client.get_application(app.application_id).description == "the app"
        assert app.application_id in {a.application_id for a in client.list_applications()}
        issued = client.create_grant(app.application_id, gw_id, "dev")
        assert issued.api_key.startswith("imp_dev_")
        assert [g.grant_id for g in client.list_grants(app.application_id)] == [issued.grant_id]
        assert not hasattr(client.list_grants(app.application_id)[0], "api_key")

        def answered(key: str | None) -> int:
            return fn.call({"x": 4}, env="dev", api_key=key, check=False, wait_live=0).status

        assert eventually(lambda: answered(issued.api_key) == 200, timeout=30)  # grants apply asynchronously
        assert answered(None) == 401

        # Credentials reach every environment asynchronously: prod answers 403 once it knows the key.
        def on_prod() -> int:
            return fn.call({"x": 4}, env="prod", api_key=issued.api_key, check=False, wait_live=0).status

        assert eventually(lambda: on_prod() == 403, timeout=30)
        with pytest.raises(ForbiddenError):
            fn.call({"x": 4}, env="prod", api_key=issued.api_key, wait_live=0)
        regenerated = client.regenerate_key(app.application_id, issued.grant_id)
        assert regenerated.api_key != issued.api_key
        assert eventually(lambda: answered(issued.api_key) == 401, timeout=30)
        assert eventually(lambda: answered(regenerated.api_key) == 200, timeout=30)
        client.revoke_grant(app.application_id, issued.grant_id)
        deleted = client.delete_application(app.application_id)
        assert deleted["deleted"] is True
        with pytest.raises(NotFoundError):
            client.get_application(app.application_id)
        gateway.delete()


def test_the_remaining_routes(live_stack: LiveStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gw_id = live_stack.gateway_id("rest")
    with live_stack.client() as client:
        assert client.readyz()["status"] == "ready"
        client.create_gateway("rest", gateway_id=gw_id, bundle=SMALL_BUNDLE)
        pipeline = {"enabled": True, "stages": ["dev", "staging", "prod"]}
        assert client.update_gateway(gw_id, promotion_pipeline=pipeline).promotion_pipeline == pipeline
        client.create_function(gw_id, "temp", "def main():\n    return 1\n", description="temporary")
        assert client.get_function(gw_id, "temp").description == "temporary"
        assert client.delete_function(gw_id, "temp")["deleted"] is True
        with pytest.raises(NotFoundError):
            client.get_function(gw_id, "temp")

        app = client.create_application("renamed-later")
        renamed = client.update_application(app.application_id, name="renamed", organization="acme")
        assert (renamed.name, renamed.organization) == ("renamed", "acme")
        client.delete_application(app.application_id)

        client.wait_for_gateway(gw_id, timeout=240)
        dev = client.get_environment(gw_id, "dev")
        assert dev.name == "dev" and dev.url
    # Without a configured data plane, calls go to the URL the API reports for the environment.
    monkeypatch.delenv("IMPRUN_DATA_PLANE_URL", raising=False)
    monkeypatch.setenv("IMPRUN_CONFIG_DIR", str(tmp_path))
    with Client(live_stack.url, live_stack.token) as client:
        assert client.connection.data_plane_url is None
        assert client.data_plane_base(gw_id, "dev") == dev.url.rstrip("/")
        client.delete_gateway(gw_id)
