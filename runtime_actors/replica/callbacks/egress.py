"""``imp.fetch`` on the trusted side: outbound HTTP for tenant code, under an egress policy.

A jailed worker has no sockets; its ``imp.fetch`` stub's request reaches ``Egress.execute`` (the
worker pool's ``fetch_executor``) as ``{"url", "method"?, "headers"?, "body"? (bytes), "timeout"?}``
and the answer is ``{"status", "headers", "body" (bytes), "url"}`` or ``{"error": {"code",
"message"}}``. Before any connection, the host is resolved
and **every** address it resolves to must be public: loopback, private, link-local, shared (CGNAT),
multicast, reserved and unspecified ranges are refused, for IPv4 and IPv6 alike, including IPv4
embedded in IPv6 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo) — unless the address is in
an allowed network or the host name is allowed by ``EgressPolicy.allow``. Every address of the node
itself (``node_addresses``: all interfaces, read from the kernel, public ones included) is refused
as "the node's own address" unless explicitly allowed, and the cluster's Ray ports
(``EgressPolicy.denied_ports``: GCS, dashboard, agents, client server, workers, HAProxy, replicas'
direct-ingress and inter-deployment gRPC servers) on any address that
is the node's or not public are refused as "a Ray port" whatever is allowed; neither message names
the address. The connection then goes to
the address that was checked (no second resolution, so DNS rebinding cannot swap it), with the URL's
host name kept for ``Host`` and TLS verification. Redirects are followed up to a limit, each hop
checked the same way. Responses are bounded in size, and one deadline bounds the whole fetch —
connecting, the status line and headers, and every read of the body — so a target trickling its
answer a byte at a time cannot hold the fetch past it. Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from runtime_actors.replica.callbacks.node_addresses import IPAddress, node_addresses
from runtime_actors.shared.errors import error_body

__all__ = ["Egress", "EgressError", "EgressPolicy", "check_address"]

Resolver = Callable[[str, int], list[str]]

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_DROPPED_REQUEST_HEADERS: Final = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "upgrade", "proxy-authorization", "te"}
)
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class EgressError(Exception):
    """A refused or failed fetch; ``code`` is an error code of API.md's shape."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EgressPolicy:
    """What tenant code may reach. ``allow`` holds networks (``10.1.0.0/16``, ``127.0.0.1``) and host
    names (``api.internal``, ``*.svc.cluster.local``) that may be reached even though non-public."""

    allow: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_response_bytes: int = 5 * 1024 * 1024
    max_request_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    denied_ports: frozenset[int] = frozenset()
    """Ray's ports (GCS, dashboard, agents, client server, workers, HAProxy, Serve replicas)."""
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False)
    host_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: list[str] = []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.append(entry.lower().rstrip("."))
        object.__setattr__(self, "networks", tuple(networks))
        object.__setattr__(self, "host_names", tuple(names))

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(
            host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in self.host_names
        )

    def address_allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def check_address(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (None when it is one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        reason = check_address(address.ipv4_mapped)
        return None if reason is None else f"{reason} (as {address})"
    for embedded in _embedded_ipv4(address):
        reason = check_address(embedded)
        if reason is not None:
            return f"{reason} (embedded in {address})"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _SHARED),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("not globally routable", not address.is_global),
    )
    return next((f"a {name} address" for name, failed in checks if failed), None)


def _forms(address: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 addresses it embeds (mapped, 6to4, Teredo, NAT64)."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return [address, *([mapped] if mapped is not None else []), *_embedded_ipv4(address)]


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo``; numeric forms such as ``2130706433`` too)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressError("invalid", f"cannot resolve {host!r}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Egress:
    """Executes checked fetches; ``execute`` is the worker pool's ``fetch_executor``."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver = resolve,
        own_addresses: Callable[[], frozenset[IPAddress]] = node_addresses,
    ) -> None:
        self.policy = policy
        self._resolve = resolver
        self._own_addresses = own_addresses
        self._tls = ssl.create_default_context()

    def execute(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One fetch: the response or ``{"error": {"code", "message"}}``; never raises."""
        try:
            return self.fetch(request)
        except EgressError as exc:
            return error_body(exc.code, exc.message)
        except TimeoutError as exc:
            return error_body("timeout", f"the fetch timed out: {exc or 'no answer'}")
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return error_body("unavailable", f"the fetch failed: {type(exc).__name__}: {exc}")

    def fetch(self, request: Mapping[str, Any]) -> dict[str, Any]:
        url = request.get("url")
        if not isinstance(url, str):
            raise EgressError("invalid", "fetch needs a url string")
        method = str(request.get("method") or "GET").upper()
        if method not in _METHODS:
            raise EgressError("invalid", f"method {method!r} is not allowed")
        body = _request_body(request)
        if len(body) > self.policy.max_request_bytes:
            raise EgressError("too_large", f"the request body is over {self.policy.max_request_bytes} bytes")
        headers = _request_headers(request.get("headers"))
        timeout = min(float(request.get("timeout") or self.policy.timeout_s), self.policy.timeout_s)
        deadline = time.monotonic() + timeout
        for _ in range(self.policy.max_redirects + 1):
            status, response_headers, content, location = self._once(method, url, headers, body, deadline)
            if status not in _REDIRECTS or location is None:
                return {
                    "status": status,
                    "headers": response_headers,
                    "body": content,
                    "url": url,
                }
            url = urljoin(url, location)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", b""
        raise EgressError("invalid", f"more than {self.policy.max_redirects} redirects")

    def _once(
        self, method: str, url: str, headers: dict[str, str], body: bytes, deadline: float
    ) -> tuple[int, dict[str, str], bytes, str | None]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressError("forbidden", f"only http and https URLs may be fetched, not {url!r}")
        if parts.username or parts.password:
            raise EgressError("invalid", "credentials in the URL are not supported; send a header")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EgressError("invalid", f"bad port in {url!r}") from exc
        address = self._checked_address(host, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        connection = self._connection(parts.scheme, host, port, address, remaining)
        connection.response_class = _deadline_response(deadline)  # type: ignore[assignment]
        try:
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            content = response.read(self.policy.max_response_bytes + 1) if method != "HEAD" else b""
            if len(content) > self.policy.max_response_bytes:
                raise EgressError("too_large", f"the response is over {self.policy.max_response_bytes} bytes")
            response_headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, response_headers, content, response.getheader("location")
        finally:
            connection.close()

    def _checked_address(self, host: str, port: int) -> str:
        """The first resolved address, once every resolved address passed the policy."""
        addresses = self._resolve(host, port)
        if not addresses:
            raise EgressError("invalid", f"{host!r} resolves to no address")
        host_allowed = self.policy.host_allowed(host)
        own = self._own_addresses()
        for text in addresses:
            address = ipaddress.ip_address(text.partition("%")[0])
            reason = check_address(address)
            is_own = any(form in own for form in _forms(address))
            if port in self.policy.denied_ports and (is_own or reason is not None):
                raise EgressError(
                    "forbidden",
                    f"fetching {host}:{port} is not allowed: {port} is a Ray port of this cluster.",
                )
            if host_allowed or self.policy.address_allowed(address):
                continue
            if is_own:
                raise EgressError(
                    "forbidden", f"fetching {host} is not allowed: it resolves to the node's own address."
                )
            if reason is not None:
                raise EgressError(
                    "forbidden",
                    f"fetching {host} is not allowed: it resolves to {address}, {reason}. "
                    "Ask the platform operator to allow it if it is meant to be reachable.",
                )
        return addresses[0]

    def _connection(
        self, scheme: str, host: str, port: int, address: str, timeout: float
    ) -> http.client.HTTPConnection:
        if scheme == "https":
            return _PinnedHTTPSConnection(host, port, address, timeout=timeout, context=self._tls)
        return _PinnedHTTPConnection(host, port, address, timeout=timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked ``address`` while sending ``host`` in the Host header."""

    def __init__(self, host: str, port: int, address: str, *, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Like ``_PinnedHTTPConnection``, with TLS verified against the URL's host name."""

    def __init__(
        self, host: str, port: int, address: str, *, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


class _DeadlineReader(io.RawIOBase):
    """Reads a socket with each receive bounded by the time left until ``deadline``. It holds the
    socket's own reader (``makefile``) until closed, so the socket stays open while it is read."""

    def __init__(self, sock: socket.socket, held: io.IOBase, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._held = held
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the response did not arrive before the deadline")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        self._held.close()
        super().close()


def _deadline_response(deadline: float) -> Callable[..., http.client.HTTPResponse]:
    """An ``HTTPResponse`` factory whose reads (status, headers, body) all stop at ``deadline``."""

    def response(sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        answer = http.client.HTTPResponse(sock, *args, **kwargs)
        answer.fp = io.BufferedReader(_DeadlineReader(sock, answer.fp, deadline))
        return answer

    return response


def _request_body(request: Mapping[str, Any]) -> bytes:
    """The body as bytes (what the pool hands over), or base64 text from other callers."""
    body = request.get("body")
    if not body:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if not isinstance(body, str):
        raise EgressError("invalid", "body must be bytes or a base64 string")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise EgressError("invalid", "body is not base64") from exc


def _request_headers(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise EgressError("invalid", "headers must be an object of strings")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        text = str(value)
        if any(c in text for c in "\r\n\0") or any(c in str(name) for c in "\r\n\0: "):
            raise EgressError("invalid", f"bad header {name!r}")
        if str(name).lower() not in _DROPPED_REQUEST_HEADERS:
            headers[str(name)] = text
    return headers
