"""The APISIX custom resources ``apisix_crds`` renders validate against the upstream CRDs.

Each CRD's ``v2`` ``openAPIV3Schema`` (``tests/fixtures/crds/apisix``, apisix-ingress-controller 2.2.0)
is checked by ``tests.platform.drivers.k8s_schemas`` (strict ``jsonschema``, see there).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from imprun.domain.environment import RateLimit
from imprun.drivers.apisix_crds import (
    RedisCounters,
    consumer_resource_name,
    render_consumer,
    render_key_secret,
    render_route,
    render_upstream,
)
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid
from tests.platform.drivers.k8s_schemas import DNS_SUBDOMAIN, crd
from tests.platform.drivers.k8s_schemas import assert_valid as shared_assert_valid

API_KEY = "imp_9f8e7d6c5b4a3928170615243342"
DOMAIN = "api.example.com"
SERVICE = "orders-api-dev-serve-svc"
REDIS = RedisCounters("redis.imprun.svc", 6379)

ROUTE = EnvironmentRoute(
    gateway_id="orders-api",
    environment="dev",
    auth_type="key-auth",
    rate_limit=None,
    upstream_host=f"{SERVICE}.gw-orders-api.svc",
    upstream_port=8000,
)
GRANT = ConsumerCredential(
    credential_id="cred_0a1b2c3d4e5f6a7b",
    grant_id="g-1",
    application_id="app-1",
    gateway_id="orders-api",
    environment="dev",
    lookup_hash="ab" * 32,
    active=True,
    rate_limit=None,
    api_key=API_KEY,
)


def assert_valid(resource: dict[str, Any]) -> None:
    document, _ = crd("apisix.apache.org", resource["kind"], "v2")
    shared_assert_valid(resource)
    assert resource["apiVersion"] == f"{document['spec']['group']}/v2"


def rendered() -> list[dict[str, Any]]:
    limited = replace(ROUTE, rate_limit=RateLimit(count=100, window_seconds=60))
    return [
        render_route(ROUTE, DOMAIN, SERVICE),
        render_route(
            limited, DOMAIN, SERVICE, namespace="gw-orders-api", ingress_class="apisix", redis=REDIS
        ),
        render_route(
            replace(limited, auth_type="none"), DOMAIN, SERVICE, redis=REDIS, redis_secret="redis-auth"
        ),
        render_upstream(ROUTE, SERVICE),
        render_upstream(ROUTE, SERVICE, namespace="gw-orders-api", ingress_class="apisix"),
        render_consumer(GRANT, "imprun-orders-api-dev-cred-0a1b2c3d4e5f6a7b"),
        render_consumer(
            replace(GRANT, rate_limit=RateLimit(count=3, window_seconds=30)),
            "k",
            namespace="gw-orders-api",
            redis=REDIS,
        ),
    ]


@pytest.mark.parametrize("resource", rendered(), ids=lambda r: f"{r['kind']}-{len(json.dumps(r))}")
def test_every_rendered_resource_validates_against_its_crd(resource: dict[str, Any]) -> None:
    assert_valid(resource)


def test_the_validation_is_strict_enough_to_catch_mistakes() -> None:
    route = render_route(ROUTE, DOMAIN, SERVICE)
    misspelled = json.loads(json.dumps(route))
    misspelled["spec"]["http"][0]["matches"] = misspelled["spec"]["http"][0].pop("match")
    mistyped = json.loads(json.dumps(route))
    mistyped["spec"]["http"][0]["backends"][0]["servicePort"] = [8000]
    for broken in (misspelled, mistyped):
        with pytest.raises(AssertionError):
            assert_valid(broken)


def test_the_route_serves_the_environment_host_with_hidden_keys_and_the_rewrite() -> None:
    resource = render_route(ROUTE, DOMAIN, SERVICE, namespace="gw-orders-api")
    assert resource["metadata"]["name"] == "imprun-orders-api-dev"
    assert resource["metadata"]["namespace"] == "gw-orders-api"
    (rule,) = resource["spec"]["http"]
    assert rule["match"] == {"hosts": ["orders-api.dev.api.example.com"], "paths": ["/*"]}
    assert rule["backends"] == [{"serviceName": SERVICE, "servicePort": 8000}]
    assert "authentication" not in rule  # it would replace key-auth and drop hide_credentials
    plugins = {p["name"]: p for p in rule["plugins"]}
    assert all(p["enable"] is True for p in plugins.values())
    assert plugins["key-auth"]["config"] == {"header": "apikey", "hide_credentials": True}
    assert plugins["proxy-rewrite"]["config"] == {
        "regex_uri": ["^/(.*)", "/orders-api/dev/$1"],
        "headers": {"set": {"X-Forwarded-For": "$remote_addr"}},  # what the caller sent is replaced
    }
    assert "limit-count" not in plugins


def test_a_rate_limited_route_counts_in_redis_and_keeps_the_password_in_a_secret() -> None:
    limited = replace(ROUTE, rate_limit=RateLimit(count=100, window_seconds=60))
    (rule,) = render_route(limited, DOMAIN, SERVICE, redis=REDIS, redis_secret="redis-auth")["spec"]["http"]
    (limit,) = [p for p in rule["plugins"] if p["name"] == "limit-count"]
    assert limit["secretRef"] == "redis-auth"
    config = limit["config"]
    assert (config["count"], config["time_window"], config["rejected_code"]) == (100, 60, 429)
    assert (config["policy"], config["redis_host"], config["key"]) == (
        "redis",
        "redis.imprun.svc",
        "consumer_name",
    )
    assert "redis_password" not in config

    with pytest.raises(Invalid, match="Redis"):
        render_route(limited, DOMAIN, SERVICE)


def test_a_public_route_has_no_key_auth() -> None:
    (rule,) = render_route(replace(ROUTE, auth_type="none"), DOMAIN, SERVICE)["spec"]["http"]
    assert [p["name"] for p in rule["plugins"]] == ["proxy-rewrite"]


def test_the_upstream_carries_the_service_name_the_controller_looks_up() -> None:
    resource = render_upstream(ROUTE, SERVICE)
    assert resource["metadata"]["name"] == SERVICE
    assert resource["spec"] == {"loadbalancer": {"type": "roundrobin"}, "scheme": "http", "passHost": "pass"}


def test_the_consumer_references_a_secret_and_never_holds_the_key() -> None:
    secret_name = consumer_resource_name("orders-api", "dev", "cred_0a1b2c3d4e5f6a7b")
    consumer = render_consumer(
        replace(GRANT, rate_limit=RateLimit(count=3, window_seconds=30)), secret_name, redis=REDIS
    )
    assert consumer["metadata"]["name"] == "imprun-orders-api-dev-cred-0a1b2c3d4e5f6a7b"
    assert consumer["spec"]["authParameter"] == {"keyAuth": {"secretRef": {"name": secret_name}}}
    (limit,) = consumer["spec"]["plugins"]
    assert (limit["name"], limit["config"]["count"], limit["config"]["key"]) == (
        "limit-count",
        3,
        "consumer_name",
    )
    assert API_KEY not in json.dumps(consumer)

    secret = render_key_secret(GRANT, secret_name, namespace="gw-orders-api")
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert secret["metadata"]["name"] == secret_name
    assert base64.b64decode(secret["data"]["key"]).decode() == API_KEY


def test_revoked_or_keyless_grants_are_not_rendered() -> None:
    with pytest.raises(Invalid, match="revoked"):
        render_consumer(replace(GRANT, active=False), "s")
    with pytest.raises(Invalid, match="revoked"):
        render_key_secret(replace(GRANT, active=False), "s")
    with pytest.raises(Invalid, match="plaintext key"):
        render_key_secret(replace(GRANT, api_key=None), "s")
    with pytest.raises(Invalid, match="Redis"):
        render_consumer(replace(GRANT, rate_limit=RateLimit(count=1, window_seconds=1)), "s")


def test_rendering_is_deterministic() -> None:
    assert rendered() == rendered()


ODD_IDS = ["c0ffee12", "cred_0a1b", "Cred_0A1B", "cred-0a1b", "-x-", "x" * 300, "ünïcode"]


@pytest.mark.parametrize("credential_id", ODD_IDS)
def test_consumer_resource_names_are_kubernetes_names(credential_id: str) -> None:
    name = consumer_resource_name("orders-api", "prod", credential_id)
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
    assert_valid(render_consumer(replace(GRANT, environment="prod", credential_id=credential_id), name))


def test_consumer_resource_names_are_distinct_and_readable_for_platform_ids() -> None:
    names = [consumer_resource_name("orders-api", "prod", cid) for cid in ODD_IDS]
    assert len(set(names)) == len(names)
    assert names[1] == "imprun-orders-api-prod-cred-0a1b"


def test_bad_domains_and_routes_are_invalid() -> None:
    with pytest.raises(Invalid, match="domain"):
        render_route(ROUTE, "Example.COM", SERVICE)
    with pytest.raises(Invalid, match="auth type"):
        render_route(replace(ROUTE, auth_type="jwt"), DOMAIN, SERVICE)
    with pytest.raises(Invalid):
        RedisCounters("redis", 0)
