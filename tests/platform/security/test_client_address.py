"""The client address behind trusted proxies (pure; no services)."""

from __future__ import annotations

import pytest

from imprun.errors import Invalid
from imprun.security.client_address import TrustedProxies, client_address

PROXIES = TrustedProxies(["10.0.0.0/8", "192.168.1.1"])


def test_a_peer_that_is_not_a_proxy_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", [], TrustedProxies([])) == "203.0.113.9"


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    # Whatever the client wrote on the left is ignored; trusted hops on the right are skipped.
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.1", "192.168.1.1"], PROXIES) == "198.51.100.1"


def test_a_malformed_hop_stops_at_the_last_trusted_one() -> None:
    assert client_address("10.0.0.2", ["evil, 10.0.0.3"], PROXIES) == "10.0.0.3"
    assert client_address("10.0.0.2", ["not-an-address"], PROXIES) == "10.0.0.2"
    assert client_address("::ffff:10.0.0.2", ["198.51.100.7"], PROXIES) == "198.51.100.7"


def test_a_bad_proxy_entry_is_refused() -> None:
    with pytest.raises(Invalid, match="IMPRUN_TRUSTED_PROXIES"):
        TrustedProxies(["proxy.internal"])
