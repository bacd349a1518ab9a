"""The Ray ports a replica refuses to ``imp.fetch``, against what Ray's own processes listen on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from imprun.drivers.local_ray import LocalRayServeDriver, runtime_config
from ray_apps.environment import _this_nodes_ray_ports
from tests.fixtures.ray import RunningRayHead

pytestmark = pytest.mark.ray


def listening_ports_by_pid() -> dict[int, set[int]]:
    listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ports: dict[int, set[int]] = {}
    for line in listing.splitlines():
        local = line.split()[3]
        for pid in re.findall(r"pid=(\d+)", line):
            ports.setdefault(int(pid), set()).add(int(local.rpartition(":")[2]))
    return ports


def head_raylet_and_children(run_dir: Path) -> list[int]:
    """The head's raylet (its command line names the head's run directory), the agents and the worker
    processes (actors included) it started."""
    processes = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            processes[int(proc.name)] = (comm, int(stat.rpartition(")")[2].split()[1]), cmdline)
    [raylet] = [pid for pid, (comm, _, cmd) in processes.items() if comm == "raylet" and str(run_dir) in cmd]
    children = [
        pid for pid, (comm, parent, _) in processes.items() if parent == raylet and comm.startswith("ray::")
    ]
    agents = [pid for pid in children if processes[pid][0] in ("ray::DashboardA", "ray::RuntimeEnv")]
    assert len(agents) == 2 and len(children) > 2, processes  # the Serve controller and proxy at least
    return [raylet, *children]


def test_the_raylets_its_agents_and_its_workers_ports_are_refused(
    ray_head: RunningRayHead, ray_driver: LocalRayServeDriver
) -> None:
    ray_driver.ping()  # this process is a Ray driver on the head's node, as a replica is
    raylet, *children = head_raylet_and_children(ray_head.head.run_dir)
    replicas_environment = dict(  # what the raylet passes on to the worker processes it starts
        entry.split("=", 1)
        for entry in Path(f"/proc/{raylet}/environ").read_text().split("\0")
        if "=" in entry
    )
    refused = _this_nodes_ray_ports(replicas_environment) | set(
        runtime_config(ray_head.settings).egress_denied_ports
    )
    listening = listening_ports_by_pid()
    ports = {port for pid in (raylet, *children) for port in listening.get(pid, ())}

    assert ports and ports <= refused, sorted(ports - refused)
    assert {ray_head.settings.dashboard_port, ray_head.settings.embedded_ray_port} <= refused
