"""The error shape of API.md, request ids, body limits, health, readiness and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices, service_settings, start_services


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "/v1/nothing-here" in response.json()["error"]["message"]


def test_wrong_method_is_405_in_the_error_shape(client: TestClient) -> None:
    response = client.delete("/v1/auth/login")
    assert response.status_code == 405
    assert set(response.json()["error"]) >= {"code", "message"}


def test_a_missing_token_is_401_with_the_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_malformed_json_is_422_with_the_field_path(client: TestClient) -> None:
    broken = client.post(
        "/v1/auth/register", content=b'{"username": "x",', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "invalid"
    missing = client.post("/v1/auth/register", json={"username": "someone"})
    assert missing.status_code == 422
    assert ["body", "password"] in [d["loc"] for d in missing.json()["error"]["details"]]


def test_oversized_body_is_413(client: TestClient, services: RunningServices) -> None:
    limit = services.settings.max_request_bytes
    huge = b'{"username": "' + b"a" * (limit + 10) + b'"}'
    response = client.post("/v1/auth/register", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_oversized_chunked_body_is_413(client: TestClient, services: RunningServices) -> None:
    limit = services.settings.max_request_bytes

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"username": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = client.post(
        "/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"x-request-id": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["mongo"]["ok"] and ready.json()["checks"]["redis"]["ok"]


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/auth/me")
    text = client.get("/metrics").text
    assert 'imprun_http_requests_total{method="GET",route="/v1/auth/me",status="401"}' in text
    assert "imprun_http_request_duration_seconds_bucket" in text


@pytest.mark.services  # starts its own nx-27017 and redis-server
def test_readyz_reports_mongo_down_then_recovers(tmp_path: Path) -> None:
    """Stop nx-27017 under a running control plane: /readyz and Mongo-backed routes say 503, then heal."""
    own = start_services(service_settings(tmp_path, dependency_timeout_seconds=0.5))
    try:
        with TestClient(create_app(own.settings)) as plane_client:
            assert plane_client.get("/readyz").status_code == 200
            own.mongo.stop()
            down = plane_client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "unavailable"
            assert "mongo" in down.json()["error"]["message"]
            assert down.json()["error"]["details"]["redis"]["ok"] is True
            login = plane_client.post(
                "/v1/auth/login", json={"username": "while-down", "password": "whatever1"}
            )
            assert login.status_code == 503
            assert login.json()["error"]["code"] == "unavailable"
            assert "requestId" in login.json()["error"]

            own.mongo.start(timeout=60)
            assert eventually(lambda: plane_client.get("/readyz").status_code == 200, timeout=30)
            assert (
                plane_client.post(
                    "/v1/auth/register", json={"username": "after-up", "password": "correct-horse-battery"}
                ).status_code
                == 201
            )
    finally:
        own.redis.stop()
        own.mongo.stop()


@pytest.mark.services  # starts its own nx-27017 and redis-server
def test_readyz_reports_redis_down(tmp_path: Path) -> None:
    own = start_services(service_settings(tmp_path, dependency_timeout_seconds=0.5))
    try:
        with TestClient(create_app(own.settings)) as plane_client:
            own.redis.stop()
            down = plane_client.get("/readyz")
            assert down.status_code == 503 and "redis" in down.json()["error"]["message"]
            me = plane_client.get("/v1/auth/me", headers={"Authorization": "Bearer imps_x"})
            assert me.status_code == 503
            own.redis.start(timeout=30)
            assert eventually(lambda: plane_client.get("/readyz").status_code == 200, timeout=30)
    finally:
        own.redis.stop()
        own.mongo.stop()
