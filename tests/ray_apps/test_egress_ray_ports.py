"""The Ray ports a replica refuses to ``imp.fetch``, against what Ray's own processes listen on."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imprun.drivers.cluster import AppSpec, AppStatus
from imprun.drivers.local_ray import LocalRayServeDriver, runtime_config
from ray_apps.environment import _this_nodes_ray_ports
from tests.fixtures.polling import eventually
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
    processes (actors and Serve replicas included) it started."""
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


@pytest.fixture(scope="module")
def replica(ray_driver: LocalRayServeDriver) -> Iterator[str]:
    """A running environment replica (no tenant code): its direct-ingress HTTP server and its
    inter-deployment gRPC server listen beside the raylet's and the agents' ports."""
    gateway_id = f"ports-{uuid.uuid4().hex[:8]}"
    ray_driver.apply(AppSpec(gateway_id, "dev", 1, 1, cpu=0.05, memory_mb=0))
    try:
        assert eventually(
            lambda: ray_driver.observe(gateway_id, "dev").status is AppStatus.RUNNING, timeout=120
        )
        yield gateway_id
    finally:
        ray_driver.delete(gateway_id, "dev")


def test_the_raylets_its_agents_and_its_workers_ports_are_refused(
    ray_head: RunningRayHead, ray_driver: LocalRayServeDriver, replica: str
) -> None:
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
    owners = {port: pid for pid in (raylet, *children) for port in listening.get(pid, ())}

    assert owners and owners.keys() <= refused, {
        port: Path(f"/proc/{pid}/comm").read_text().strip()
        for port, pid in owners.items()
        if port not in refused
    }
    assert {ray_head.settings.dashboard_port, ray_head.settings.embedded_ray_port} <= refused
