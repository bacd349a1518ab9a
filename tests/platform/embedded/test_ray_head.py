"""``imprun.embedded.ray_head`` against the session's real head: reuse, HAProxy ingress, isolation.

(These live beside the driver tests because they share the session head.)
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from imprun.embedded.ray_head import (
    HEAD_MARKER_ENV,
    ray_head_running,
    ray_run_dir,
    start_ray_head,
    stop_ray_head,
)
from imprun.errors import Unavailable
from imprun.settings import Settings
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import free_port


def listening_commands(port: int) -> set[str]:
    """Names of the processes holding a listening TCP socket on ``port`` (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            if local_port == port and state == "0A":  # 0A = LISTEN
                inodes.add(f"socket:[{inode}]")
    commands = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                commands.add((fd_dir.parent / "comm").read_text().strip())
        except OSError:  # process gone meanwhile
            continue
    return commands


def head_pids(port: int) -> list[int]:
    needle = f"\0{HEAD_MARKER_ENV}={port}\0".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in b"\0" + environ.read_bytes() + b"\0":
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port on which a program that is not Ray listens."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.mark.ray
def test_starting_the_head_again_reuses_the_running_one(ray_head: RunningRayHead) -> None:
    again = start_ray_head(ray_head.settings)

    assert again.reused
    assert again.address == ray_head.address == f"127.0.0.1:{ray_head.settings.embedded_ray_port}"
    assert ray_head_running(ray_head.settings)


@pytest.mark.ray
def test_serve_port_is_served_by_haproxy(ray_head: RunningRayHead) -> None:
    assert listening_commands(ray_head.settings.serve_port) == {"haproxy"}


@pytest.mark.ray
def test_the_head_runs_in_its_own_session_so_it_outlives_the_control_plane(ray_head: RunningRayHead) -> None:
    pids = head_pids(ray_head.settings.embedded_ray_port)
    assert pids
    assert os.getsid(0) not in {os.getsid(pid) for pid in pids}


def test_a_long_data_dir_gets_a_short_run_dir_it_links_to(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / ("deeply-nested-" * 4) / "data")

    run_dir = ray_run_dir(settings)
    try:
        assert len(str(run_dir)) <= 23  # room for Ray's and HAProxy's Unix socket paths below it
        assert (settings.data_dir / "ray").resolve() == run_dir.resolve()
        assert ray_run_dir(settings) == run_dir
    finally:
        shutil.rmtree(run_dir)


def test_nothing_runs_for_a_port_without_our_head(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedded_ray_port=free_port())
    assert not ray_head_running(settings)
    assert not stop_ray_head(settings)


def test_a_port_held_by_another_program_is_refused_with_the_setting_to_change(
    tmp_path: Path, occupied_port: int
) -> None:
    settings = Settings(
        data_dir=tmp_path, embedded_ray_port=occupied_port, serve_port=free_port(), dashboard_port=free_port()
    )
    with pytest.raises(Unavailable, match="IMPRUN_EMBEDDED_RAY_PORT"):
        start_ray_head(settings)
    assert not head_pids(occupied_port)


def test_a_busy_serve_port_is_refused_before_anything_starts(tmp_path: Path, occupied_port: int) -> None:
    settings = Settings(
        data_dir=tmp_path, embedded_ray_port=free_port(), serve_port=occupied_port, dashboard_port=free_port()
    )
    with pytest.raises(Unavailable, match="IMPRUN_SERVE_PORT"):
        start_ray_head(settings)
    assert not head_pids(settings.embedded_ray_port)
