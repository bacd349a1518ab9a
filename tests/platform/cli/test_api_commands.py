"""The API commands of the ``imprun`` CLI through Typer's runner against the live stack.

Each test gets its own config dir (``IMPRUN_CONFIG_DIR``), so the saved login is the test's own.
"""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from imprun.cli.main import app
from imprun.cli.session import EXIT_API_ERROR, EXIT_CONNECTION_ERROR
from imprun.sdk.connection import login_path
from tests.fixtures.live_stack import PASSWORD, LiveStack

Run = Callable[..., Result]


@pytest.fixture
def run(live_stack: LiveStack, tmp_path: Path) -> Run:
    """``run(*args, **env)``: invoke the CLI logged in (IMPRUN_TOKEN) unless ``IMPRUN_TOKEN=""``."""

    def invoke(*args: str, **env: str) -> Result:
        environment = {
            "IMPRUN_CONFIG_DIR": str(tmp_path / "config"),
            "IMPRUN_URL": live_stack.url,
            "IMPRUN_TOKEN": live_stack.token,
            "IMPRUN_DATA_PLANE_URL": live_stack.data_plane_url,
            "COLUMNS": "200",
            **env,
        }
        return CliRunner().invoke(app, list(args), env={k: v or None for k, v in environment.items()})

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result.output


def test_without_a_login_a_one_line_hint(run: Run) -> None:
    result = run("gateway", "list", IMPRUN_TOKEN="")
    assert result.exit_code == EXIT_API_ERROR
    assert "run `imprun login`" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_control_plane_names_the_url(run: Run) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = run("gateway", "list", IMPRUN_URL=url)
    assert result.exit_code == EXIT_CONNECTION_ERROR
    assert url in result.output


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("gateway", "show").exit_code == 2


def test_login_saves_a_private_session_and_logout_forgets_it(
    run: Run, live_stack: LiveStack, tmp_path: Path
) -> None:
    username, _ = live_stack.new_user()
    bad = run("login", "-u", username, "-p", "not-the-password", IMPRUN_TOKEN="")
    assert bad.exit_code == EXIT_API_ERROR and "unauthorized" in bad.output
    ok(run("login", "-u", username, "-p", PASSWORD, "--url", live_stack.url, IMPRUN_TOKEN="", IMPRUN_URL=""))
    path = login_path({"IMPRUN_CONFIG_DIR": str(tmp_path / "config")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(ok(run("gateway", "list", "--json", IMPRUN_TOKEN="", IMPRUN_URL=""))) == []
    assert "logged out" in ok(run("logout"))
    assert run("gateway", "list", IMPRUN_TOKEN="", IMPRUN_URL="").exit_code == EXIT_API_ERROR


def test_gateway_functions_keys_and_logs(run: Run, live_stack: LiveStack, tmp_path: Path) -> None:
    gw = live_stack.gateway_id("cli")
    created = ok(run("gateway", "create", "CLI test", "--id", gw, "--cpu", "0.05", "--memory", "256"))
    assert "started" in created and "Started" in created
    shown = json.loads(ok(run("gateway", "show", gw, "--json")))
    assert shown["phase"] == "Started" and {e["name"] for e in shown["environments"]} == {
        "dev",
        "staging",
        "prod",
    }
    assert gw in {g["gatewayId"] for g in json.loads(ok(run("gateway", "list", "--json")))}

    workdir = tmp_path / "functions"
    ok(run("fn", "init", "hello", "--dir", str(workdir)))
    broken = workdir / "broken.py"
    broken.write_text("def main(:\n    return 1\n")
    result = run("fn", "push", str(broken), "-g", gw)
    assert result.exit_code == EXIT_API_ERROR
    assert "line 1, column" in result.output

    broken.unlink()
    (workdir / "reports").mkdir()
    (workdir / "reports" / "daily.py").write_text("def main():\n    return {'report': 'daily'}\n")
    pushed = json.loads(ok(run("fn", "push", str(workdir), "-g", gw, "--json")))
    assert sorted(f["name"] for f in pushed) == ["hello", "reports/daily"]

    debugged = json.loads(ok(run("fn", "debug", "hello", "-g", gw, "-d", '{"name": "Ada"}', "--json")))
    assert debugged["status"] == 200 and debugged["body"] == {"message": "Hello, Ada."}
    assert [line["message"] for line in debugged["logs"]] == ["greeting Ada"]
    assert "Hello, Ada." in ok(run("fn", "debug", "hello", "-g", gw, "-d", '{"name": "Ada"}'))

    assert "published to dev" in ok(run("fn", "publish", "hello", "-g", gw))
    ok(run("fn", "publish", "reports/daily", "-g", gw))
    for env in ("dev", "staging"):
        assert "auth none" in ok(run("env", "set", gw, env, "--auth", "none"))
    assert "'count': 100" in ok(run("env", "set", gw, "prod", "--rate-limit", "100/60"))
    environments = json.loads(ok(run("env", "list", gw, "--json")))
    assert {e["name"]: e["authType"] for e in environments} == {
        "dev": "none",
        "staging": "none",
        "prod": "key-auth",
    }
    assert run("env", "set", gw, "prod", "--rate-limit", "lots").exit_code == 2
    ok(run("var", "set", gw, "dev", "TOKEN", "hunter2-secret", "--secret"))
    ok(run("var", "set", gw, "dev", "MODE", "test"))
    listed = ok(run("var", "list", gw, "dev"))
    assert "MODE" in listed and "test" in listed and "hunter2-secret" not in listed
    assert "hunter2-secret" not in ok(run("var", "list", gw, "dev", "--json"))
    ok(run("var", "unset", gw, "dev", "MODE"))
    assert [v["name"] for v in json.loads(ok(run("var", "list", gw, "dev", "--json")))] == ["TOKEN"]
    assert run("var", "set", gw, "dev", "not-an-identifier", "x").exit_code == EXIT_API_ERROR
    called = json.loads(
        ok(run("fn", "call", "hello", "-g", gw, "--wait", "10", "-d", '{"name": "Bob", "excited": true}'))
    )
    assert called == {"message": "Hello, Bob!"}
    assert json.loads(ok(run("fn", "call", "reports/daily", "-g", gw))) == {"report": "daily"}
    assert "promoted to staging" in ok(run("fn", "promote", "hello", "-g", gw, "--to", "staging"))
    versions = json.loads(ok(run("fn", "history", "hello", "-g", gw, "--json")))
    assert [v["version"] for v in versions] == [1]

    pulled = tmp_path / "pulled"
    ok(run("fn", "pull", "-g", gw, "--dir", str(pulled)))
    assert (pulled / "reports" / "daily.py").read_text() == (workdir / "reports" / "daily.py").read_text()

    entries = [json.loads(line) for line in ok(run("logs", gw, "dev", "--json")).splitlines()]
    assert any(e["function"] == "hello" and e["message"] == "greeting Bob" for e in entries), entries

    app_id = json.loads(ok(run("app", "create", "mobile", "--json")))["applicationId"]
    assert app_id in ok(run("app", "list"))
    issued = run("grant", "create", app_id, gw, "prod")
    key = ok(issued).strip().splitlines()[-1]
    assert key.startswith("imp_prod_")
    grants = json.loads(ok(run("grant", "list", app_id, "--json")))
    assert [g["environment"] for g in grants] == ["prod"] and "apiKey" not in grants[0]
    regenerated = json.loads(ok(run("grant", "regenerate", app_id, grants[0]["grantId"], "--json")))
    assert regenerated["apiKey"] != key
    assert "revoked" in ok(run("grant", "revoke", app_id, grants[0]["grantId"]))
    assert "deleted" in ok(run("app", "delete", app_id))
    missing = run("app", "delete", app_id)
    assert missing.exit_code == EXIT_API_ERROR and "not_found" in missing.output

    assert isinstance(json.loads(ok(run("tools", "list", "--json"))), list)
    assert (
        ok(run("dashboard", IMPRUN_DASHBOARD_URL=live_stack.dashboard_url)).strip()
        == live_stack.dashboard_url
    )

    assert "stopping" in ok(run("gateway", "stop", gw))
    assert "starting" in ok(run("gateway", "start", gw))
    assert "being deleted" in ok(run("gateway", "delete", gw, "--yes"))
