"""Sessions: logout, ending all of them, and a password change that ends the others."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.platform.api.conftest import PASSWORD
from tests.platform.api.test_auth import register

NEW_PASSWORD = "staple-battery-horse-9"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _signed_in(client: TestClient, headers: dict[str, str]) -> bool:
    return client.get("/v1/auth/me", headers=headers).status_code == 200


def test_logout_revokes_only_its_token(client: TestClient, unique_name: Callable[[str], str]) -> None:
    username = unique_name("leaver")
    register(client, username)
    laptop, phone = _login(client, username), _login(client, username)
    assert client.post("/v1/auth/logout", headers=laptop).status_code == 204
    assert not _signed_in(client, laptop)
    assert _signed_in(client, phone)


def test_ending_all_sessions(client: TestClient, unique_name: Callable[[str], str]) -> None:
    username, other = unique_name("everywhere"), unique_name("bystander")
    register(client, username)
    register(client, other)
    sessions = [_login(client, username) for _ in range(3)]
    bystander = _login(client, other)
    ended = client.delete("/v1/auth/sessions", headers=sessions[0])
    assert ended.status_code == 200 and ended.json() == {"ended": 3}
    assert not any(_signed_in(client, headers) for headers in sessions)
    assert _signed_in(client, bystander)


def test_a_password_change_ends_the_other_sessions(
    client: TestClient, unique_name: Callable[[str], str]
) -> None:
    username = unique_name("changer")
    register(client, username)
    here, elsewhere = _login(client, username), _login(client, username)
    wrong = client.post(
        "/v1/auth/password",
        json={"currentPassword": "not-my-password", "newPassword": NEW_PASSWORD},
        headers=here,
    )
    assert wrong.status_code == 401
    weak = client.post(
        "/v1/auth/password", json={"currentPassword": PASSWORD, "newPassword": "short"}, headers=here
    )
    assert weak.status_code == 422
    changed = client.post(
        "/v1/auth/password", json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}, headers=here
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"ended": 1}
    assert _signed_in(client, here)
    assert not _signed_in(client, elsewhere)
    assert client.post("/v1/auth/login", json={"username": username, "password": PASSWORD}).status_code == 401
    assert _signed_in(client, _login(client, username, NEW_PASSWORD))
