"""Driving the real ``imprun`` console script in subprocesses, one data dir and port set per test.

``cli`` gives a test an ``ImprunCli``: ``run(...)`` runs a command to completion, ``start_up(...)``
starts ``imprun up`` in the background with its output in files under the test's tmp dir, and
``wait_ready`` polls ``/readyz`` with a deadline. At teardown every process the test left behind is
killed: the ``up`` processes and every pid recorded under the data dir.

Ray: for a test marked ``ray``, ``IMPRUN_RAY_ADDRESS`` points at the session's ``ray_head`` so
``imprun up`` does not start a second head; other tests run the commands with ``--no-ray``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.polling import eventually
from tests.fixtures.services import free_port

IMPRUN = Path(sys.executable).parent / "imprun"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie answers kill(0) but is gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class ImprunCli:
    def __init__(self, tmp_path: Path, ray_address: str | None) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.api_port = free_port()
        self.ray_address = ray_address
        self.env = {
            **os.environ,
            "IMPRUN_DATA_DIR": str(self.data_dir),
            "IMPRUN_API_PORT": str(self.api_port),
            "IMPRUN_EMBEDDED_MONGO_PORT": str(free_port()),
            "IMPRUN_EMBEDDED_REDIS_PORT": str(free_port()),
            "IMPRUN_EMBEDDED_RAY_PORT": str(free_port()),  # `down` never reaches a head it did not start
            "IMPRUN_LOG_JSON": "false",
        }
        if ray_address is not None:
            self.env["IMPRUN_RAY_ADDRESS"] = ray_address
        self.up_flags = [] if ray_address is not None else ["--no-ray"]
        self.url = f"http://127.0.0.1:{self.api_port}"
        self._ups: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(IMPRUN), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def down_while_reaping(self, up: subprocess.Popen[bytes]) -> tuple[int, str]:
        """``imprun down`` while this process reaps ``up`` as a shell would; (down's exit code, stdout).

        ``up`` is our child: until we wait for it, it stays a zombie that ``down`` would see as alive.
        """
        down = subprocess.Popen(
            [str(IMPRUN), "down"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert up.wait(timeout=60) == 0, self.output(up)
            stdout, _ = down.communicate(timeout=60)
        finally:
            if down.poll() is None:
                down.kill()
                down.wait()
        return down.returncode, stdout

    def status(self) -> dict[str, Any]:
        result = self.run("status", "--json")
        assert result.returncode == 0, result
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    def start_up(self) -> subprocess.Popen[bytes]:
        output = self.tmp_path / f"up-{len(self._ups) + 1}.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [str(IMPRUN), "up", *self.up_flags],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self._ups.append((process, output))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return next(path for proc, path in self._ups if proc is process).read_text(errors="replace")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
        became_ready = eventually(lambda: self.ready() or process.poll() is not None, timeout=timeout)
        assert became_ready and process.poll() is None, self.output(process)
        assert self.ready(), self.output(process)

    def recorded_pids(self) -> dict[str, int]:
        pids = {}
        for pid_file in (self.data_dir / "run").glob("*.pid"):
            with contextlib.suppress(ValueError):
                pids[pid_file.stem] = int(pid_file.read_text().strip())
        return pids

    def kill_leftovers(self) -> None:
        for process, _ in self._ups:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        for pid in self.recorded_pids().values():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ray_address(request: pytest.FixtureRequest) -> str | None:
    """The session Ray head's address for a test marked ``ray``; else None (commands run ``--no-ray``)."""
    if request.node.get_closest_marker("ray") is None:
        return None
    head = request.getfixturevalue("ray_head")
    address: str = head.address
    return address


@pytest.fixture
def cli(tmp_path: Path, ray_address: str | None) -> Iterator[ImprunCli]:
    runner = ImprunCli(tmp_path, ray_address)
    try:
        yield runner
    finally:
        runner.kill_leftovers()
