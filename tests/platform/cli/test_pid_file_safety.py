"""The control-plane pid file is trusted only while it names a live imprun process."""

from __future__ import annotations

import subprocess

from tests.platform.cli.conftest import ImprunCli, pid_alive


def write_control_plane_pid(cli: ImprunCli, pid: int) -> None:
    run = cli.data_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "control-plane.pid").write_text(str(pid))


def test_down_never_signals_an_unrelated_process_named_by_a_stale_pid_file(cli: ImprunCli) -> None:
    unrelated = subprocess.Popen(["sleep", "600"])
    try:
        write_control_plane_pid(cli, unrelated.pid)  # as after a reboot that reused the pid
        down = cli.run("down")
        assert down.returncode == 0 and "nothing to stop" in down.stdout, down
        assert pid_alive(unrelated.pid)
        assert cli.recorded_pids() == {}
        assert cli.status()["controlPlane"]["running"] is False
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_dead_pid_in_the_pid_file_is_cleared(cli: ImprunCli) -> None:
    write_control_plane_pid(cli, 999_999_999)
    assert cli.status()["controlPlane"]["pid"] is None
    assert cli.recorded_pids() == {}
