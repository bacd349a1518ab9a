"""``ApisixDriver`` against an in-process stand-in of the APISIX Admin API (``apisix_standin``).

The stand-in is a real HTTP server on loopback, so these tests exercise the driver's requests,
headers, status handling and connection errors end to end; what they cannot show is how a real
APISIX then routes traffic.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from imprun.domain.environment import RateLimit
from imprun.drivers.apisix import ApisixDriver
from imprun.drivers.apisix_crds import consumer_username
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute, IngressDriver
from imprun.errors import Invalid, Unavailable
from tests.platform.drivers.apisix_standin import AdminApiStandIn, Fault, free_port_without_listener

ADMIN_KEY = "admin-5b0c8e0f6d1a4c7e"
API_KEY = "imp_9f8e7d6c5b4a3928170615243342"
REDIS_PASSWORD = "redis-pw-0a1b2c3d"
DOMAIN = "api.example.com"
OBJECT_ID = "imprun-orders-api-dev"
USERNAME = "imprun_orders_api_dev_cred_0a1b2c3d4e5f6a7b"
ROUTE_PATH = f"/apisix/admin/routes/{OBJECT_ID}"
UPSTREAM_PATH = f"/apisix/admin/upstreams/{OBJECT_ID}"


@pytest.fixture
def standin() -> Iterator[AdminApiStandIn]:
    with AdminApiStandIn(ADMIN_KEY) as server:
        yield server


def make_driver(url: str, admin_key: str = ADMIN_KEY, **options: Any) -> ApisixDriver:
    options.setdefault("timeout", 2.0)
    return ApisixDriver(url, admin_key, DOMAIN, "redis.imprun.svc", 6379, **options)


@pytest.fixture
def driver(standin: AdminApiStandIn) -> Iterator[ApisixDriver]:
    apisix = make_driver(standin.base_url)
    yield apisix
    apisix.close()


def env_route(**changes: Any) -> EnvironmentRoute:
    route = EnvironmentRoute(
        gateway_id="orders-api",
        environment="dev",
        auth_type="key-auth",
        rate_limit=None,
        upstream_host="orders-api-dev-serve-svc.gw-orders-api.svc",
        upstream_port=8000,
    )
    return replace(route, **changes)


def credential(**changes: Any) -> ConsumerCredential:
    grant = ConsumerCredential(
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
    return replace(grant, **changes)


def stored(standin: AdminApiStandIn, kind: str, object_id: str) -> dict[str, Any]:
    value = standin.get(kind, object_id)
    assert value is not None, f"{kind}/{object_id} is missing"
    return value


def without(objects: dict[str, dict[str, Any]], *fields: str) -> dict[str, dict[str, Any]]:
    """The objects without server-set fields such as ``update_time``."""
    return {key: {k: v for k, v in value.items() if k not in fields} for key, value in objects.items()}


def test_the_driver_fits_the_protocol(driver: ApisixDriver) -> None:
    ingress: IngressDriver = driver
    assert ingress.needs_plaintext_keys is True


# Environments ------------------------------------------------------------------------------------


def test_an_environment_gets_an_upstream_then_a_route_on_its_host(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route())

    assert standin.requests == [("PUT", UPSTREAM_PATH, 201), ("PUT", ROUTE_PATH, 201)]
    upstream = stored(standin, "upstreams", OBJECT_ID)
    assert upstream["type"] == "roundrobin"
    assert upstream["nodes"] == [
        {"host": "orders-api-dev-serve-svc.gw-orders-api.svc", "port": 8000, "weight": 1}
    ]
    route = stored(standin, "routes", OBJECT_ID)
    assert route["host"] == "orders-api.dev.api.example.com"
    assert route["uri"] == "/*"
    assert route["upstream_id"] == OBJECT_ID
    assert route["labels"] == {
        "managed-by": "imprun",
        "imprun-gateway": "orders-api",
        "imprun-environment": "dev",
    }
    assert route["plugins"]["key-auth"] == {"header": "apikey", "hide_credentials": True}
    assert route["plugins"]["proxy-rewrite"] == {
        "regex_uri": ["^/(.*)", "/orders-api/dev/$1"],
        "headers": {"set": {"X-Forwarded-For": "$remote_addr"}},
    }
    assert "limit-count" not in route["plugins"]


def test_the_rewrite_sends_every_path_under_the_environment_prefix(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route(environment="staging"))
    pattern, template = stored(standin, "routes", "imprun-orders-api-staging")["plugins"]["proxy-rewrite"][
        "regex_uri"
    ]
    rewrite = template.replace("$1", r"\1")
    assert re.sub(pattern, rewrite, "/quote") == "/orders-api/staging/quote"
    assert re.sub(pattern, rewrite, "/tax/2024") == "/orders-api/staging/tax/2024"
    assert re.sub(pattern, rewrite, "/") == "/orders-api/staging/"


def test_a_rate_limit_counts_per_consumer_in_redis_and_answers_429(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route(rate_limit=RateLimit(count=100, window_seconds=60)))
    assert stored(standin, "routes", OBJECT_ID)["plugins"]["limit-count"] == {
        "count": 100,
        "time_window": 60,
        "rejected_code": 429,
        "key_type": "var",
        "key": "consumer_name",
        "policy": "redis",
        "redis_host": "redis.imprun.svc",
        "redis_port": 6379,
        "redis_database": 0,
    }


def test_a_public_environment_has_no_key_auth_and_limits_per_client(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route(auth_type="none"))
    assert set(stored(standin, "routes", OBJECT_ID)["plugins"]) == {"proxy-rewrite"}

    driver.apply_environment(env_route(auth_type="none", rate_limit=RateLimit(count=5, window_seconds=1)))
    plugins = stored(standin, "routes", OBJECT_ID)["plugins"]
    assert set(plugins) == {"proxy-rewrite", "limit-count"}
    assert plugins["limit-count"]["key"] == "remote_addr"


def test_applying_again_changes_nothing(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_environment(env_route())
    first = {kind: without(standin.objects(kind), "update_time") for kind in ("routes", "upstreams")}
    standin.clear_requests()

    driver.apply_environment(env_route())

    assert standin.requests == [("PUT", UPSTREAM_PATH, 200), ("PUT", ROUTE_PATH, 200)]
    assert {kind: without(standin.objects(kind), "update_time") for kind in ("routes", "upstreams")} == first


def test_a_change_replaces_the_objects_instead_of_merging(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route(rate_limit=RateLimit(count=10, window_seconds=60)))
    driver.apply_environment(env_route(upstream_port=8001))

    assert "limit-count" not in stored(standin, "routes", OBJECT_ID)["plugins"]
    assert stored(standin, "upstreams", OBJECT_ID)["nodes"][0]["port"] == 8001


@pytest.mark.parametrize("kind", ["routes", "upstreams"])
def test_an_object_deleted_behind_our_back_comes_back(
    standin: AdminApiStandIn, driver: ApisixDriver, kind: str
) -> None:
    driver.apply_environment(env_route())
    expected = without(standin.objects(kind), "create_time", "update_time")
    standin.remove(kind, OBJECT_ID)

    driver.apply_environment(env_route())

    assert without(standin.objects(kind), "create_time", "update_time") == expected


def test_deleting_an_environment_removes_the_route_first_and_tolerates_missing_objects(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_environment(env_route())
    standin.clear_requests()

    driver.delete_environment("orders-api", "dev")
    driver.delete_environment("orders-api", "dev")

    assert standin.requests == [
        ("DELETE", ROUTE_PATH, 200),
        ("DELETE", UPSTREAM_PATH, 200),
        ("DELETE", ROUTE_PATH, 404),
        ("DELETE", UPSTREAM_PATH, 404),
    ]
    assert standin.objects("routes") == standin.objects("upstreams") == {}


def test_an_upstream_still_in_use_is_retried_later(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_environment(env_route())
    standin.put_raw("routes", "someone-elses", {"uri": "/x", "upstream_id": OBJECT_ID})

    with pytest.raises(Unavailable, match="still using it"):
        driver.delete_environment("orders-api", "dev")
    assert standin.get("routes", OBJECT_ID) is None


def test_a_route_that_cannot_be_written_takes_its_new_upstream_along(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    standin.inject(Fault(method="PUT", path_prefix="/apisix/admin/routes/", status=503))

    with pytest.raises(Unavailable, match="HTTP 503"):
        driver.apply_environment(env_route())

    assert standin.objects("upstreams") == standin.objects("routes") == {}
    driver.apply_environment(env_route())  # the reconciler's retry
    assert standin.get("routes", OBJECT_ID) is not None


def test_a_failed_route_update_leaves_a_working_route(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_environment(env_route())
    standin.inject(Fault(method="PUT", path_prefix="/apisix/admin/routes/", status=500))

    with pytest.raises(Unavailable):
        driver.apply_environment(env_route(upstream_port=9000))

    route = stored(standin, "routes", OBJECT_ID)
    assert stored(standin, "upstreams", route["upstream_id"])["nodes"][0]["port"] == 9000


def test_bad_routes_are_invalid_before_anything_is_written(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    for bad in (
        env_route(auth_type="basic"),
        env_route(upstream_port=0),
        env_route(upstream_host="bad host"),
        env_route(gateway_id="Orders"),
        env_route(environment="qa"),
    ):
        with pytest.raises(Invalid):
            driver.apply_environment(bad)
    assert standin.requests == []
    with pytest.raises(ValueError, match="greater than 0"):  # a limit below 1 never reaches a driver
        RateLimit(count=0, window_seconds=60)


# Consumers ---------------------------------------------------------------------------------------


def test_a_grant_becomes_a_consumer_confined_to_its_environment(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_consumer(credential())

    assert standin.requests == [("PUT", "/apisix/admin/consumers", 201)]
    consumer = stored(standin, "consumers", USERNAME)
    assert consumer["plugins"] == {
        "key-auth": {"key": API_KEY},
        "consumer-restriction": {"type": "route_id", "whitelist": [OBJECT_ID], "rejected_code": 403},
    }
    assert consumer["labels"]["imprun-environment"] == "dev"
    assert "g-1" in consumer["desc"]


def test_a_grant_limit_is_a_consumer_limit_counted_in_redis(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    driver.apply_consumer(credential(rate_limit=RateLimit(count=3, window_seconds=30)))
    limit = stored(standin, "consumers", USERNAME)["plugins"]["limit-count"]
    assert (limit["count"], limit["time_window"], limit["rejected_code"]) == (3, 30, 429)
    assert (limit["policy"], limit["redis_host"], limit["key"]) == (
        "redis",
        "redis.imprun.svc",
        "consumer_name",
    )


def test_a_regenerated_key_replaces_the_old_one(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_consumer(credential())
    driver.apply_consumer(credential(api_key="imp_new_key_000000000000"))

    assert list(standin.objects("consumers")) == [USERNAME]
    assert stored(standin, "consumers", USERNAME)["plugins"]["key-auth"] == {
        "key": "imp_new_key_000000000000"
    }
    assert [status for *_, status in standin.requests] == [201, 200]


def test_a_revoked_grant_loses_its_consumer(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_consumer(credential())
    driver.apply_consumer(credential(active=False, api_key=None))
    driver.apply_consumer(credential(active=False, api_key=None))

    assert standin.objects("consumers") == {}


def test_deleting_a_consumer_tolerates_a_missing_one(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    driver.apply_consumer(credential())
    driver.delete_consumer("orders-api", "dev", "cred_0a1b2c3d4e5f6a7b")
    driver.delete_consumer("orders-api", "dev", "cred_0a1b2c3d4e5f6a7b")

    assert standin.objects("consumers") == {}
    assert [status for *_, status in standin.requests] == [201, 200, 404]


def test_a_grant_without_its_plaintext_key_is_invalid(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    with pytest.raises(Invalid, match="plaintext key"):
        driver.apply_consumer(credential(api_key=None))
    assert standin.requests == []


def test_consumer_usernames_are_deterministic_and_acceptable_to_apisix() -> None:
    assert consumer_username("orders-api", "dev", "cred_0a1b2c3d4e5f6a7b") == USERNAME
    odd = [consumer_username("orders-api", "prod", cid) for cid in ("a-b", "a_b", "x" * 80, "ünïcode")]
    assert len(set(odd)) == len(odd)
    for name in odd:
        assert re.fullmatch(r"[a-zA-Z0-9_]{1,100}", name), name
    assert odd[0] == consumer_username("orders-api", "prod", "a-b")  # hashed, deterministically
    assert odd[1] == "imprun_orders_api_prod_a_b"  # plain ids stay readable
    with pytest.raises(Invalid):
        consumer_username("orders-api", "dev", "")


def test_every_environment_and_grant_lands_on_distinct_objects(
    standin: AdminApiStandIn, driver: ApisixDriver
) -> None:
    for environment in ("dev", "staging", "prod"):
        driver.apply_environment(env_route(environment=environment))
        driver.apply_consumer(credential(environment=environment))
    assert len(standin.objects("routes")) == len(standin.objects("upstreams")) == 3
    consumers = standin.objects("consumers")
    assert sorted(c["plugins"]["consumer-restriction"]["whitelist"][0] for c in consumers.values()) == sorted(
        standin.objects("routes")
    )


# Failures ----------------------------------------------------------------------------------------


def test_a_wrong_admin_key_is_a_clear_retryable_error_that_never_shows_a_key(
    standin: AdminApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-admin-key-77aa"
    apisix = make_driver(standin.base_url, admin_key=wrong)

    with pytest.raises(Unavailable) as raised:
        apisix.apply_consumer(credential())

    message = raised.value.message
    assert "admin key" in message and "IMPRUN_APISIX_ADMIN_KEY" in message and "401" in message
    for secret in (wrong, ADMIN_KEY, API_KEY):
        assert secret not in message + repr(raised.value.details) + caplog.text
    assert standin.objects("consumers") == {}
    apisix.close()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_unavailable_and_nothing_is_half_applied(
    standin: AdminApiStandIn, driver: ApisixDriver, status: int
) -> None:
    standin.inject(Fault(method="PUT", path_prefix=UPSTREAM_PATH, status=status))

    with pytest.raises(Unavailable, match=f"HTTP {status}"):
        driver.apply_environment(env_route())
    assert standin.objects("routes") == {}
    assert [method for method, *_ in standin.requests] == ["PUT"]


def test_connection_refused_is_unavailable() -> None:
    apisix = make_driver(f"http://127.0.0.1:{free_port_without_listener()}")
    with pytest.raises(Unavailable, match="Cannot reach the APISIX Admin API"):
        apisix.apply_environment(env_route())
    apisix.close()


def test_a_dropped_connection_is_unavailable(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    standin.inject(Fault(path_prefix="/apisix/admin/consumers", drop=True))
    with pytest.raises(Unavailable, match="Cannot reach"):
        driver.apply_consumer(credential())
    assert standin.objects("consumers") == {}


def test_a_stalled_admin_api_is_unavailable(standin: AdminApiStandIn) -> None:
    standin.inject(Fault(path_prefix=UPSTREAM_PATH, delay=1.0))
    apisix = make_driver(standin.base_url, timeout=0.2)
    with pytest.raises(Unavailable, match=r"did not answer within 0\.2 s"):
        apisix.apply_environment(env_route())
    apisix.close()


def test_a_configuration_apisix_refuses_is_invalid(standin: AdminApiStandIn, driver: ApisixDriver) -> None:
    standin.inject(Fault(method="PUT", path_prefix=ROUTE_PATH, status=400))
    with pytest.raises(Invalid, match="APISIX refused writing route"):
        driver.apply_environment(env_route())


@pytest.mark.parametrize(("status", "error"), [(400, Invalid), (500, Unavailable)])
def test_keys_echoed_by_apisix_are_redacted_from_errors_and_logs(
    standin: AdminApiStandIn, caplog: pytest.LogCaptureFixture, status: int, error: type[Exception]
) -> None:
    caplog.set_level(logging.DEBUG)
    apisix = make_driver(standin.base_url, redis_password=REDIS_PASSWORD)
    standin.inject(Fault(method="PUT", path_prefix="/apisix/admin/consumers", status=status, echo_body=True))

    with pytest.raises(error) as raised:
        apisix.apply_consumer(credential(rate_limit=RateLimit(count=1, window_seconds=1)))

    text = str(raised.value) + repr(getattr(raised.value, "details", None)) + caplog.text
    assert "***" in str(raised.value)  # the echo arrived, redacted
    for secret in (API_KEY, ADMIN_KEY, REDIS_PASSWORD):
        assert secret not in text
    apisix.close()


# Construction and the transport seam ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/apisix/admin", "/apisix/admin/"])
def test_the_admin_url_may_name_the_prefix_or_not(standin: AdminApiStandIn, suffix: str) -> None:
    apisix = make_driver(standin.base_url + suffix)
    apisix.apply_environment(env_route())
    assert standin.get("routes", OBJECT_ID) is not None
    apisix.close()


@pytest.mark.parametrize(
    ("url", "key", "domain"),
    [
        ("ftp://apisix:9180", ADMIN_KEY, DOMAIN),
        ("not a url", ADMIN_KEY, DOMAIN),
        ("http://apisix:9180", "", DOMAIN),
        ("http://admin:secret@apisix:9180", ADMIN_KEY, DOMAIN),
        ("http://apisix:9180", ADMIN_KEY, "Example.COM"),
        ("http://apisix:9180", ADMIN_KEY, "-bad.example.com"),
    ],
)
def test_impossible_settings_are_invalid(url: str, key: str, domain: str) -> None:
    with pytest.raises(Invalid):
        ApisixDriver(url, key, domain, "redis", 6379, timeout=1.0)


def test_requests_carry_the_admin_key_and_json_through_the_transport_seam() -> None:
    seen: list[httpx.Request] = []

    def admin_api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"key": "/apisix/x", "value": {}})

    apisix = make_driver("http://apisix-admin:9180", transport=httpx.MockTransport(admin_api))
    apisix.apply_environment(env_route())

    assert [(r.method, r.url.path) for r in seen] == [("PUT", UPSTREAM_PATH), ("PUT", ROUTE_PATH)]
    assert all(r.headers["X-API-KEY"] == ADMIN_KEY for r in seen)
    assert json.loads(seen[1].content)["upstream_id"] == OBJECT_ID
