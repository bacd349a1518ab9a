"""Register / login / me against the real app, nx-27017 and redis-server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from imprun.api.app import create_app
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices
from tests.platform.api.conftest import PASSWORD


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/v1/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
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
    assert me.json() == {"id": created["id"], "username": username, "admin": created["admin"]}


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


def test_failed_logins_back_off_per_user_and_client(
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
            for i in range(6)
        ]
        assert statuses[:4] == [401, 401, 401, 401], "three free failures, the fourth starts the back-off"
        assert 429 in statuses[4:]
        blocked = throttled.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert blocked.status_code == 429, "even the right password waits out the back-off"
        assert int(blocked.headers["Retry-After"]) >= 1
        assert blocked.json()["error"]["code"] == "rate_limited"


def test_a_stranger_cannot_lock_a_user_out(
    services: RunningServices, unique_name: Callable[[str], str]
) -> None:
    """Failures from one address block that address for that user, never the user from elsewhere."""
    settings = services.settings.model_copy(update={"login_max_failures": 2, "login_window_seconds": 600})
    app = create_app(settings)
    with TestClient(app, client=("203.0.113.66", 40000)) as stranger:
        username = unique_name("victim")
        register(stranger, username)
        for i in range(12):
            stranger.post("/v1/auth/login", json={"username": username, "password": f"guess-{i}"})
        assert (
            stranger.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).status_code
            == 429
        )
        owner = TestClient(app, client=("198.51.100.7", 40001))  # the same running app, another address
        signed_in = owner.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    services: RunningServices, unique_name: Callable[[str], str]
) -> None:
    settings = services.settings.model_copy(
        update={"login_max_failures": 1, "login_window_seconds": 600, "trusted_proxies": ("10.0.0.0/8",)}
    )
    app = create_app(settings)
    with TestClient(app, client=("10.1.2.3", 40000)) as proxy:
        username = unique_name("proxied")
        register(proxy, username)
        attacker = {"X-Forwarded-For": "203.0.113.5"}
        for i in range(4):
            proxy.post("/v1/auth/login", json={"username": username, "password": f"no-{i}"}, headers=attacker)
        right = {"username": username, "password": PASSWORD}
        assert proxy.post("/v1/auth/login", json=right, headers=attacker).status_code == 429
        # Behind the same proxy, another client is another subject: it signs in.
        owner = {"X-Forwarded-For": "203.0.113.5, 198.51.100.20"}  # its own entry is the proxy's last
        assert proxy.post("/v1/auth/login", json=right, headers=owner).status_code == 200

        # A client that is not a proxy cannot pick its subject by writing the header itself.
        direct = TestClient(app, client=("192.0.2.44", 40001))
        for i in range(4):
            direct.post(
                "/v1/auth/login",
                json={"username": username, "password": f"no-{i}"},
                headers={"X-Forwarded-For": f"192.0.2.{100 + i}"},
            )
        spoofed = direct.post("/v1/auth/login", json=right, headers={"X-Forwarded-For": "192.0.2.200"})
        assert spoofed.status_code == 429
