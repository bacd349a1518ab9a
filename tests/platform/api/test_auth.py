"""Register / login / me against the real app, nx-27017 and redis-server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.api.conftest import PASSWORD


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/v1/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def test_register_login_me_round_trip(client: TestClient, unique_name: Callable[[str], str]) -> None:
    username = unique_name("alice")
    created = register(client, username)
    assert created["username"] == username and created["id"]

    login = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()["token"]
    expires = datetime.fromisoformat(login.json()["expiresAt"])
    assert expires > datetime.now(UTC) + timedelta(minutes=30)

    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"id": created["id"], "username": username}


def test_duplicate_username_is_409(client: TestClient, unique_name: Callable[[str], str]) -> None:
    username = unique_name("dup")
    register(client, username)
    again = client.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_weak_password_and_bad_username_are_422(
    client: TestClient, unique_name: Callable[[str], str]
) -> None:
    weak = client.post("/v1/auth/register", json={"username": unique_name("weak"), "password": "short"})
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "invalid"
    assert "at least 10 characters" in weak.json()["error"]["message"]

    bad_name = client.post("/v1/auth/register", json={"username": "no spaces!", "password": PASSWORD})
    assert bad_name.status_code == 422
    assert bad_name.json()["error"]["details"][0]["loc"] == ["body", "username"]


def test_wrong_password_and_unknown_user_are_401(
    client: TestClient, unique_name: Callable[[str], str]
) -> None:
    username = unique_name("bob")
    register(client, username)
    wrong = client.post("/v1/auth/login", json={"username": username, "password": "not-the-password"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    unknown = client.post("/v1/auth/login", json={"username": unique_name("ghost"), "password": PASSWORD})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == wrong.json()["error"]["message"]


def test_me_needs_a_valid_token(client: TestClient) -> None:
    assert client.get("/v1/auth/me").status_code == 401
    assert client.get("/v1/auth/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    body = client.get("/v1/auth/me").json()
    assert body["error"]["code"] == "unauthorized"


def test_token_expires(services: RunningServices, unique_name: Callable[[str], str]) -> None:
    """A session lives exactly as long as its TTL; the Redis key's expiry is what enforces it."""
    settings = services.settings.model_copy(update={"session_ttl_seconds": 60})
    with TestClient(create_app(settings)) as short_lived:
        username = unique_name("eve")
        register(short_lived, username)
        token = short_lived.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).json()[
            "token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        assert short_lived.get("/v1/auth/me", headers=headers).status_code == 200
        plane = short_lived.app.state.plane  # type: ignore[attr-defined]
        keys = [k for k in plane.redis.scan_iter("imprun:session:*") if 0 < plane.redis.ttl(k) <= 60]
        assert keys, "the session key must carry the configured TTL"
        # Let Redis expire the session as its TTL would: shorten the TTL to 1 ms, then poll.
        for key in keys:
            plane.redis.pexpire(key, 1)
        assert eventually(lambda: short_lived.get("/v1/auth/me", headers=headers).status_code == 401)


def test_brute_force_is_throttled_with_429(
    services: RunningServices, unique_name: Callable[[str], str]
) -> None:
    settings = services.settings.model_copy(update={"login_max_failures": 3, "login_window_seconds": 120})
    with TestClient(create_app(settings)) as throttled:
        username = unique_name("target")
        register(throttled, username)
        statuses = [
            throttled.post(
                "/v1/auth/login", json={"username": username, "password": f"guess-{i}"}
            ).status_code
            for i in range(5)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        blocked = throttled.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert blocked.status_code == 429, "even the right password waits out the window"
        assert int(blocked.headers["Retry-After"]) >= 1
        assert blocked.json()["error"]["code"] == "rate_limited"
