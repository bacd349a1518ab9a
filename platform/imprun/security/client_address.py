"""The address of the client behind a request, believing ``X-Forwarded-For`` only from trusted proxies.

The peer of the TCP connection is the client unless it is one of the configured proxies (addresses
or CIDRs). Then ``X-Forwarded-For`` is read from its right end — the hop the trusted proxy itself
added — skipping further trusted proxies; the first address not trusted is the client. Anything a
client wrote further left is never believed, and a malformed entry stops the walk at the last hop
that was trusted. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from imprun.errors import Invalid

__all__ = ["TrustedProxies", "client_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise Invalid(f"IMPRUN_TRUSTED_PROXIES: {entry!r} is not an address or CIDR") from exc
        self._networks = tuple(networks)

    def __contains__(self, address: str) -> bool:
        parsed = _parse(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def __bool__(self) -> bool:
        return bool(self._networks)


@functools.lru_cache(maxsize=4096)
def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def client_address(peer: str, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str:
    """The client's address, given the connection's ``peer`` and the ``X-Forwarded-For`` headers."""
    client = peer
    if client not in trusted:
        return client
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if _parse(hop) is None:
            break
        client = str(_parse(hop))
        if client not in trusted:
            break
    return client
