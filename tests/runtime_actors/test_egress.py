"""``runtime_actors.replica.callbacks.egress``: the egress policy refuses non-public targets before connecting.

Traffic goes only to a loopback server started here (allowed through the policy's allow-list in the
positive tests); every refused target is refused before any connection, which the refusing tests
check by giving ``Egress`` a resolver that records lookups and a server that counts requests.
"""

from __future__ import annotations

import base64
import ipaddress
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runtime_actors.replica.callbacks.egress import Egress, EgressPolicy, check_address, resolve
from runtime_actors.replica.callbacks.node_addresses import node_addresses


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 that counts requests; paths choose its behaviour."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, body, dict(self.headers)))
                if self.path.startswith("/redirect-to-metadata"):
                    self._reply(302, b"", {"location": "http://169.254.169.254/latest/meta-data"})
                elif self.path.startswith("/redirect"):
                    self._reply(303, b"", {"location": "/hello"})
                elif self.path.startswith("/big"):
                    self._reply(200, b"x" * 4096)
                elif self.path.startswith("/trickle"):
                    self._trickle()
                elif self.path.startswith("/slow"):
                    server.release.wait(10)
                    self._reply(200, b"late")
                else:
                    self._reply(200, b'{"hello": "world"}', {"content-type": "application/json"})

            def _trickle(self) -> None:
                """Headers at once, then one body byte every 50 ms for about 2 s."""
                self.send_response(200)
                self.send_header("content-length", "40")
                self.end_headers()
                for _ in range(40):
                    if server.release.wait(0.05):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    running = LoopbackServer()
    running.thread.start()
    yield running
    running.release.set()
    running.httpd.shutdown()
    running.httpd.server_close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def allowed(**options: Any) -> Egress:
    return Egress(EgressPolicy(allow=("127.0.0.1/32",), **options))


def test_an_allowed_loopback_target_is_fetched(server: LoopbackServer) -> None:
    reply = allowed().execute(
        {"url": f"{server.url}/hello?x=1", "method": "POST", "headers": {"X-Test": "1"}, "body": b"ping"}
    )

    assert reply["status"] == 200
    assert reply["body"] == b'{"hello": "world"}'
    assert reply["headers"]["content-type"] == "application/json"
    [(method, path, body, headers)] = server.requests
    assert (method, path, body, headers["X-Test"]) == ("POST", "/hello?x=1", b"ping", "1")
    assert headers["Host"] == f"127.0.0.1:{server.port}"


def test_redirects_are_followed_and_each_hop_is_checked(server: LoopbackServer) -> None:
    followed = allowed().execute({"url": f"{server.url}/redirect", "method": "POST", "body": b64(b"x")})
    assert followed["status"] == 200 and followed["url"].endswith("/hello")
    assert [r[0] for r in server.requests] == ["POST", "GET"]  # 303 turns into GET

    refused = allowed().execute({"url": f"{server.url}/redirect-to-metadata"})
    assert refused["error"]["code"] == "forbidden"
    assert "169.254.169.254" in refused["error"]["message"]


def test_responses_over_the_size_limit_are_refused(server: LoopbackServer) -> None:
    reply = allowed(max_response_bytes=1024).execute({"url": f"{server.url}/big"})
    assert reply["error"]["code"] == "too_large"


def test_a_slow_target_times_out(server: LoopbackServer) -> None:
    reply = allowed(timeout_s=0.3).execute({"url": f"{server.url}/slow"})
    assert reply["error"]["code"] == "timeout"


def test_the_deadline_covers_a_body_trickled_past_it(server: LoopbackServer) -> None:
    reply = allowed(timeout_s=0.5).execute({"url": f"{server.url}/trickle"})
    assert reply["error"]["code"] == "timeout"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://2130706433:{port}/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://0.0.0.0:{port}/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_targets_are_refused_before_any_connection(server: LoopbackServer, target: str) -> None:
    lookups: list[str] = []

    def recording_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return resolve(host, port)

    egress = Egress(EgressPolicy(), resolver=recording_resolver)
    reply = egress.execute({"url": target.format(port=server.port)})

    assert reply["error"]["code"] == "forbidden", reply
    assert lookups  # refused on the resolved address, not on the spelling of the URL
    assert server.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x/", "//no-scheme"])
def test_other_schemes_are_refused(url: str) -> None:
    def no_lookups(host: str, port: int) -> list[str]:
        raise AssertionError("nothing may be resolved for a refused scheme")

    assert Egress(EgressPolicy(), resolver=no_lookups).execute({"url": url})["error"]["code"] == "forbidden"


def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    """DNS answers mixing public and private addresses are refused (no rebinding through the mix)."""

    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    reply = Egress(EgressPolicy(), resolver=mixed).execute({"url": "http://mixed.example/"})
    assert reply["error"]["code"] == "forbidden" and "10.0.0.5" in reply["error"]["message"]


def test_allowed_host_names_and_wildcards() -> None:
    policy = EgressPolicy(allow=("api.internal", "*.svc.cluster.local", "10.0.0.0/8"))
    assert policy.host_allowed("api.internal") and policy.host_allowed("API.internal.")
    assert policy.host_allowed("db.ns.svc.cluster.local")
    assert not policy.host_allowed("svc.cluster.local.evil.com")
    assert policy.address_allowed(ipaddress.ip_address("10.9.8.7"))
    assert not policy.address_allowed(ipaddress.ip_address("11.0.0.1"))


def test_malformed_requests_are_invalid() -> None:
    egress = Egress(EgressPolicy())
    assert egress.execute({})["error"]["code"] == "invalid"
    assert egress.execute({"url": "http://x/", "method": "CONNECT"})["error"]["code"] == "invalid"
    assert egress.execute({"url": "http://x/", "headers": {"a": "b\r\nc: d"}})["error"]["code"] == "invalid"
    assert egress.execute({"url": "http://x/", "body": "%%%"})["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("192.0.2.1", False),  # documentation range
        ("198.18.0.1", False),  # benchmarking range
    ],
)
def test_check_address(address: str, public: bool) -> None:
    assert (check_address(ipaddress.ip_address(address)) is None) is public


PUBLIC_LOOKING = "93.184.216.34"  # what a node with a public address would have; declared local below


def node_at(address: str) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return frozenset({ipaddress.ip_address(address), ipaddress.ip_address("127.0.0.1")})


@pytest.mark.parametrize(
    "answer",
    [PUBLIC_LOOKING, f"::ffff:{PUBLIC_LOOKING}", "2002:5db8:d822::1"],  # itself, IPv4-mapped, 6to4
)
def test_the_nodes_own_public_address_is_refused_without_naming_it(answer: str) -> None:
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [answer]  # the name looked public to whoever wrote it; what it resolves to counts

    egress = Egress(EgressPolicy(), resolver=rebinding, own_addresses=lambda: node_at(PUBLIC_LOOKING))
    reply = egress.execute({"url": "http://innocent.example/"})

    assert reply["error"]["code"] == "forbidden" and lookups == ["innocent.example"]
    assert "the node's own address" in reply["error"]["message"]
    assert PUBLIC_LOOKING not in reply["error"]["message"] and answer not in reply["error"]["message"]


def test_another_public_address_is_not_the_nodes() -> None:
    egress = Egress(EgressPolicy(), own_addresses=lambda: node_at(PUBLIC_LOOKING))
    assert egress._checked_address("93.184.216.35", 80) == "93.184.216.35"


def test_ray_ports_are_refused_on_the_node_even_where_it_is_allowed(server: LoopbackServer) -> None:
    policy = EgressPolicy(allow=("127.0.0.1/32", "ray-head.internal"), denied_ports=frozenset({server.port}))
    egress = Egress(policy, own_addresses=lambda: node_at(PUBLIC_LOOKING))
    for url in (server.url, f"http://{PUBLIC_LOOKING}:{server.port}/"):
        reply = egress.execute({"url": url})
        assert reply["error"]["code"] == "forbidden", url
        assert "a Ray port" in reply["error"]["message"]
    named = Egress(policy, resolver=lambda host, port: ["10.0.0.7"]).execute(
        {"url": f"http://ray-head.internal:{server.port}/"}
    )
    assert "a Ray port" in named["error"]["message"] and "10.0.0.7" not in named["error"]["message"]
    assert server.requests == []
    assert allowed().execute({"url": server.url})["status"] == 200  # the same port, not a Ray port here


def test_the_node_addresses_are_every_interfaces_as_ip_addr_lists_them() -> None:
    listed = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    expected = {ipaddress.ip_address(line.split()[3].partition("/")[0]) for line in listed.splitlines()}
    assert expected and expected <= node_addresses()
