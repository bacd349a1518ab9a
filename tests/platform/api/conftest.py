"""Fixtures for control-plane API tests: a real app over the session's real services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.services import RunningServices


@pytest.fixture(scope="session")
def client(services: RunningServices) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings)) as test_client:
        yield test_client


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


PASSWORD = "correct-horse-battery"


@pytest.fixture
def auth_headers(client: TestClient, unique_name: Callable[[str], str]) -> dict[str, str]:
    """A freshly registered and logged-in user's Authorization header."""
    username = unique_name("user")
    assert (
        client.post("/v1/auth/register", json={"username": username, "password": PASSWORD}).status_code == 201
    )
    token = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}
