"""``runtime_actors.replica.tenant_response``: a function's cookies and pages confined to its environment."""

from __future__ import annotations

import pytest

from runtime_actors.replica.tenant_response import (
    SANDBOX_POLICY,
    confine_response,
    path_prefix,
    scoped_cookie,
)

PREFIX = "/shop/dev"


@pytest.mark.parametrize(
    ("cookie", "scoped"),
    [
        ("session=evil; Path=/; Domain=127.0.0.1", "session=evil; Path=/shop/dev/"),
        ("a=1", "a=1; Path=/shop/dev/"),
        (
            "a=1; Domain=.example.com; Secure; HttpOnly; SameSite=Lax",
            "a=1; Secure; HttpOnly; SameSite=Lax; Path=/shop/dev/",
        ),
        ("cart=2; path=/cart; Max-Age=60", "cart=2; Max-Age=60; Path=/shop/dev/cart"),
        ("a=1; Path=relative", "a=1; Path=/shop/dev/"),
        ("a=1; Path=/x; Path=/", "a=1; Path=/shop/dev/"),  # the last Path counts, as in browsers
        ("a=1; DOMAIN=other.example", "a=1; Path=/shop/dev/"),
    ],
)
def test_cookies_lose_their_domain_and_live_under_the_environments_path(cookie: str, scoped: str) -> None:
    assert scoped_cookie(cookie, PREFIX) == scoped


@pytest.mark.parametrize(
    "cookie", ["imprun_session=x", "IMPRUN=1", "__Host-id=1; Path=/", "__Secure-a=1", "=1", ""]
)
def test_platform_and_prefixed_cookie_names_are_dropped(cookie: str) -> None:
    assert scoped_cookie(cookie, PREFIX) is None


def test_on_the_environments_own_host_the_path_is_the_functions() -> None:
    assert path_prefix("shop", "dev", "shop.dev.apis.example.com") == ""
    assert path_prefix("shop", "dev", "127.0.0.1:8000") == PREFIX
    assert path_prefix("shop", "dev", "shop.prod.apis.example.com") == PREFIX
    assert scoped_cookie("a=1; Path=/; Domain=example.com", "") == "a=1; Path=/"


def test_every_response_is_sandboxed_and_not_sniffed_a_functions_own_policy_is_kept() -> None:
    plain = confine_response({"Content-Type": "text/html"}, PREFIX)
    assert plain == {
        "Content-Type": "text/html",
        "content-security-policy": SANDBOX_POLICY,
        "x-content-type-options": "nosniff",
    }
    own = confine_response(
        {"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "sniff-please"}, PREFIX
    )
    assert own["content-security-policy"] == f"default-src 'self', {SANDBOX_POLICY}"
    assert own["x-content-type-options"] == "nosniff" and "X-Content-Type-Options" not in own
    assert "allow-same-origin" not in SANDBOX_POLICY


def test_a_refused_cookie_leaves_the_rest_of_the_response() -> None:
    confined = confine_response({"Set-Cookie": "imprun_token=stolen", "x-a": "1"}, PREFIX)
    assert "Set-Cookie" not in confined and confined["x-a"] == "1"
