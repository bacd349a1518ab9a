"""Every address of this node, read from the kernel: what ``imp.fetch`` must never reach.

IPv4 from ``/proc/net/fib_trie`` (the ``/32 host LOCAL`` entries of the local routing table: one per
address assigned to any interface), IPv6 from ``/proc/net/if_inet6``. A public address of the node
passes every range check, so the egress policy refuses these by name; reading them afresh on each
check follows interfaces that come and go. Standard library only.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

__all__ = ["IPAddress", "node_addresses"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def node_addresses(proc: Path = Path("/proc/net")) -> frozenset[IPAddress]:
    """The addresses of all interfaces (an empty set where ``/proc/net`` cannot be read)."""
    return frozenset(_ipv4_addresses(proc / "fib_trie")) | frozenset(_ipv6_addresses(proc / "if_inet6"))


def _ipv4_addresses(fib_trie: Path) -> list[IPAddress]:
    try:
        lines = fib_trie.read_text().splitlines()
    except OSError:
        return []
    found: list[IPAddress] = []
    for previous, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL" and "|--" in previous:
            found.append(ipaddress.IPv4Address(previous.split("|--")[1].strip()))
    return found


def _ipv6_addresses(if_inet6: Path) -> list[IPAddress]:
    try:
        lines = if_inet6.read_text().splitlines()
    except OSError:
        return []
    return [ipaddress.IPv6Address(int(line.split()[0], 16)) for line in lines if line.strip()]
