"""The embedded databases and HAProxy's side doors listen on loopback only, whatever ``IMPRUN_HOST``
says.

nx-27017 and redis-server have no credentials: exposing the API with ``IMPRUN_HOST=0.0.0.0`` must not
expose them; nor HAProxy's stats and metrics, or its admin socket to other local users. Listening sockets are read from ``/proc/net/tcp{,6}`` (what ``ss -ltn`` shows).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
import struct
import subprocess
from pathlib import Path

import pytest
import ray

from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.embedded.haproxy_wrapper import CLIENT_ADDRESS_RULE, write_haproxy_wrapper
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import service_settings, start_services

pytestmark = pytest.mark.services  # starts its own nx-27017 and redis-server

_LISTEN = "0A"


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(struct.pack("<I", int(hex_address, 16))))
    words = struct.unpack("<4I", raw)  # four host-order 32-bit words
    return str(ipaddress.IPv6Address(b"".join(struct.pack(">I", word) for word in words)))


def listening_addresses(port: int) -> set[str]:
    """Every local address with a socket listening on TCP ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            hex_address, hex_port = local.split(":")
            if state == _LISTEN and int(hex_port, 16) == port:
                found.add(_address(hex_address))
    return found


def test_the_address_reader_sees_a_wildcard_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        assert listening_addresses(sock.getsockname()[1]) == {"0.0.0.0"}


def test_nx_27017_and_redis_bind_loopback_when_the_api_is_exposed(tmp_path: Path) -> None:
    running = start_services(service_settings(tmp_path, host="0.0.0.0"))
    try:
        settings = running.settings
        assert listening_addresses(settings.embedded_mongo_port) == {"127.0.0.1"}
        assert listening_addresses(settings.embedded_redis_port) == {"127.0.0.1"}
    finally:
        running.redis.stop()
        running.mongo.stop()


@pytest.mark.ray
def test_haproxys_stats_and_metrics_bind_loopback_and_its_admin_socket_is_private(
    ray_head: RunningRayHead, ray_driver: LocalRayServeDriver
) -> None:
    ray_driver.ping()  # this process is a Ray driver on the head's node
    head_node = ray.get_runtime_context().get_node_id()  # other nodes' proxies write beside it
    text = (ray_head.head.run_dir / "hap" / head_node / "haproxy.cfg").read_text()
    ports = [int(port) for port in re.findall(r"^\s*bind \S*:(\d+)\s*$", text, flags=re.MULTILINE)]
    assert len(ports) >= 3, text  # the HTTP frontend, stats and Prometheus metrics
    for port in ports:
        assert listening_addresses(port) == {"127.0.0.1"}, port
    [admin_socket] = re.findall(r"^\s*stats socket (\S+)", text, flags=re.MULTILINE)
    assert stat.S_IMODE(os.stat(admin_socket).st_mode) == 0o600


def test_with_the_api_exposed_only_haproxys_data_plane_binds_every_interface(tmp_path: Path) -> None:
    """The wrapper's edit of a configuration as Serve renders it for ``IMPRUN_HOST=0.0.0.0``: stats
    and metrics move to loopback, the HTTP frontend keeps every interface."""
    wrapper = write_haproxy_wrapper(tmp_path / "bin", "/bin/true")
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "frontend prometheus\n    bind *:9101\n"
        "frontend http_frontend\n    bind *:8000\n    log global\n"
        "listen stats\n    bind *:8404\n"
    )

    subprocess.run([str(wrapper), "-f", str(config)], check=True)

    binds = re.findall(r"^\s*bind (\S+)$", config.read_text(), flags=re.MULTILINE)
    assert binds == ["127.0.0.1:9101", "*:8000", "127.0.0.1:8404"]
    assert CLIENT_ADDRESS_RULE in config.read_text()
