"""Accounts through the SDK and the CLI against a control plane served by uvicorn (no data plane):
registration by invite, logout, ending all sessions and changing the password."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner, Result

from imprun.api.app import create_app
from imprun.cli.main import app as cli
from imprun.sdk import Client, ForbiddenError, UnauthorizedError
from imprun.sdk.connection import load_saved_login
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices, free_port

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "battery-staple-horse-7"


@pytest.fixture(scope="module")
def url(services: RunningServices) -> Iterator[str]:
    """A control plane of its own system database (so an empty platform), registering by invite."""
    settings = services.settings.model_copy(
        update={"sys_db_name": f"sys_{uuid.uuid4().hex[:12]}", "registration": "invite", "reconcile": False}
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert eventually(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def admin(url: str) -> Iterator[Client]:
    with Client(url, None) as client:
        assert client.registration_mode() == "invite"
        assert client.register("root-admin", PASSWORD).admin is True
        client.login("root-admin", PASSWORD)
        yield client


def test_registration_by_invite_and_sessions_through_the_sdk(url: str, admin: Client) -> None:
    issued = admin.create_invite()
    name = f"sdk-{uuid.uuid4().hex[:6]}"
    with Client(url, None) as newcomer:
        with pytest.raises(ForbiddenError):
            newcomer.register(name, PASSWORD)
        assert newcomer.register(name, PASSWORD, invite=issued.code).admin is False
        assert [i.used_by for i in admin.list_invites() if i.id == issued.id] != [None]
        newcomer.login(name, PASSWORD)
        with Client(url, None) as second:
            second.login(name, PASSWORD)
            assert newcomer.change_password(PASSWORD, NEW_PASSWORD) == 1
            with pytest.raises(UnauthorizedError):
                second.me()
        assert newcomer.me().username == name
        assert newcomer.end_sessions() == 1
    admin.delete_invite(issued.id)
    assert issued.id not in {i.id for i in admin.list_invites()}


@pytest.fixture
def run(url: str, tmp_path: Path) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        env = {"IMPRUN_CONFIG_DIR": str(tmp_path / "config"), "IMPRUN_URL": url, "COLUMNS": "200"}
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


def test_invites_login_password_and_logout_through_the_cli(
    run: Callable[..., Result], admin: Client, tmp_path: Path
) -> None:
    assert run("login", "-u", "root-admin", "-p", PASSWORD).exit_code == 0
    created = run("invite", "create")
    assert created.exit_code == 0, created.output
    code = created.output.strip().splitlines()[-1]
    assert code.startswith("impi_")
    assert "root-admin" not in run("invite", "list").output

    name = f"cli-{uuid.uuid4().hex[:6]}"
    joined = run("login", "--register", "--invite", code, "-u", name, "-p", PASSWORD)
    assert joined.exit_code == 0, joined.output
    saved = load_saved_login({"IMPRUN_CONFIG_DIR": str(tmp_path / "config")})
    assert saved is not None
    changed = run("password", "--current", PASSWORD, "--new", NEW_PASSWORD)
    assert changed.exit_code == 0 and "0 other sessions ended" in changed.output, changed.output

    assert "logged out" in run("logout").output
    with Client(saved.url, saved.token) as stale, pytest.raises(UnauthorizedError):
        stale.me()  # the server ended the session, not only the local file
