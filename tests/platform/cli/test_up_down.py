"""``imprun up`` / ``status`` / ``down`` through the real console script, with real services.

Each test runs the commands in subprocesses against its own data dir and free ports, waits on
``/readyz`` and on pids with deadlines, and relies on the ``cli`` fixture to kill leftovers.
"""

from __future__ import annotations

import signal

import httpx
import pytest

from imprun.embedded.process import port_open
from tests.fixtures.polling import eventually
from tests.platform.cli.conftest import ImprunCli, pid_alive

pytestmark = [pytest.mark.services, pytest.mark.ray]  # `up` reuses the session head (covers the Ray rows)

PASSWORD = "correct-horse-battery"
SERVICES = ("nx-27017", "redis-server")


def services_by_name(report: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = report["services"]
    assert isinstance(rows, list)
    return {row["name"]: row for row in rows}


def test_up_status_down_then_up_again_keeps_the_data(cli: ImprunCli) -> None:
    up = cli.start_up()
    cli.wait_ready(up)
    registered = httpx.post(
        f"{cli.url}/v1/auth/register", json={"username": "persisted-user", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text

    report = cli.status()
    assert report["controlPlane"]["pid"] == up.pid
    assert report["controlPlane"]["ready"] is True
    assert report["controlPlane"]["readyz"]["body"]["status"] == "ready"
    rows = services_by_name(report)
    for name in SERVICES:
        assert rows[name]["running"] is True and isinstance(rows[name]["pid"], int), rows[name]
        assert rows[name]["external"] is False
    if cli.ray_address is not None:
        assert rows["ray-head"] == {
            "name": "ray-head", "url": cli.ray_address, "running": True, "pid": None, "external": True
        }  # fmt: skip
    service_pids = [int(str(rows[name]["pid"])) for name in SERVICES]

    second = cli.run("up", *cli.up_flags)
    assert second.returncode == 1
    assert f"imprun is already running (pid {up.pid})" in second.stderr
    assert "Traceback" not in second.stderr

    code, said = cli.down_while_reaping(up)
    assert code == 0, said
    assert f"stopped control-plane (pid {up.pid})" in said
    for name, pid in zip(SERVICES, service_pids, strict=True):
        assert f"stopped {name} (pid {pid})" in said
    assert eventually(lambda: not any(pid_alive(pid) for pid in service_pids), timeout=30)
    assert cli.recorded_pids() == {}
    stopped = cli.status()
    assert stopped["controlPlane"]["running"] is False
    assert not any(services_by_name(stopped)[name]["running"] for name in SERVICES)
    if cli.ray_address is not None:  # a configured Ray cluster is not ours to stop
        host, port = cli.ray_address.rsplit(":", 1)
        assert port_open(host, int(port))

    again = cli.run("down")
    assert again.returncode == 0 and "nothing to stop" in again.stdout

    up_again = cli.start_up()
    cli.wait_ready(up_again)
    login = httpx.post(f"{cli.url}/v1/auth/login", json={"username": "persisted-user", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert cli.down_while_reaping(up_again)[0] == 0


def test_sigint_stops_up_cleanly(cli: ImprunCli) -> None:
    up = cli.start_up()
    cli.wait_ready(up)
    pids = cli.recorded_pids()
    assert set(pids) >= {"control-plane", *SERVICES}

    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0, cli.output(up)
    output = cli.output(up)
    assert "imprun stopped" in output and "Traceback" not in output
    assert output.index("Finished server process") < output.index("redis-server stopped")  # uvicorn first
    assert eventually(lambda: not any(pid_alive(pid) for pid in pids.values()), timeout=30)
    assert cli.recorded_pids() == {}
    assert not cli.ready()


def test_status_and_down_when_nothing_runs(cli: ImprunCli) -> None:
    report = cli.status()
    assert report["controlPlane"] == {
        "name": "control-plane",
        "url": cli.url,
        "running": False,
        "pid": None,
        "ready": False,
        "readyz": None,
    }
    assert not any(row["running"] for name, row in services_by_name(report).items() if name in SERVICES)
    table = cli.run("status")
    assert table.returncode == 0 and "control-plane" in table.stdout and "stopped" in table.stdout
    down = cli.run("down")
    assert down.returncode == 0 and "nothing to stop" in down.stdout


def test_bad_configuration_is_one_red_line(cli: ImprunCli) -> None:
    cli.env["IMPRUN_API_PORT"] = "not-a-port"
    result = cli.run("status")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: bad configuration: IMPRUN_API_PORT: Input should be a valid integer, unable to parse "
        "string as an integer"
    ]
