"""Registration modes, the first admin, invites, the per-client registration throttle and the bounded
hashing pool, against the real app over nx-27017 and redis-server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.app import create_app
from imprun.settings import Settings
from tests.fixtures.services import RunningServices
from tests.platform.api.conftest import PASSWORD


def _empty_platform(services: RunningServices, **overrides: Any) -> Settings:
    """Settings over a system database of its own: a platform with no user yet."""
    return services.settings.model_copy(update={"sys_db_name": f"sys_{uuid.uuid4().hex[:12]}", **overrides})


@pytest.fixture
def invite_only(services: RunningServices) -> Iterator[TestClient]:
    with TestClient(create_app(_empty_platform(services, registration="invite"))) as client:
        yield client


def _register(client: TestClient, username: str, invite: str | None = None) -> Any:
    body = {"username": username, "password": PASSWORD, **({"invite": invite} if invite else {})}
    return client.post("/v1/auth/register", json=body)


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_the_default_mode_is_open_on_loopback_and_invite_elsewhere() -> None:
    assert Settings(host="127.0.0.1").registration_mode == "open"
    assert Settings(host="0.0.0.0").registration_mode == "invite"
    assert Settings(host="0.0.0.0", registration="open").registration_mode == "open"


def test_the_first_user_is_admin_and_others_need_an_invite(invite_only: TestClient) -> None:
    assert invite_only.get("/v1/auth/registration").json() == {"mode": "invite"}
    first = _register(invite_only, "root-ada")
    assert first.status_code == 201, first.text
    assert first.json()["admin"] is True

    refused = _register(invite_only, "mallory")
    assert refused.status_code == 403
    assert "invite" in refused.json()["error"]["message"]

    admin = _login(invite_only, "root-ada")
    issued = invite_only.post("/v1/auth/invites", headers=admin)
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    assert code.startswith("impi_")

    assert _register(invite_only, "mallory", invite="impi_guessed").status_code == 403
    joined = _register(invite_only, "grace", invite=code)
    assert joined.status_code == 201, joined.text
    assert joined.json()["admin"] is False
    assert _register(invite_only, "mallory", invite=code).status_code == 403, "an invite serves once"

    listed = invite_only.get("/v1/auth/invites", headers=admin).json()
    assert [(i["id"], i["usedBy"]) for i in listed] == [(issued.json()["id"], joined.json()["id"])]
    assert "code" not in listed[0]

    grace = _login(invite_only, "grace")
    assert invite_only.post("/v1/auth/invites", headers=grace).status_code == 403
    assert invite_only.get("/v1/auth/invites", headers=grace).status_code == 403
    assert invite_only.delete(f"/v1/auth/invites/{issued.json()['id']}", headers=admin).status_code == 204
    assert invite_only.get("/v1/auth/invites", headers=admin).json() == []


def test_a_taken_username_gives_the_invite_back(invite_only: TestClient) -> None:
    assert _register(invite_only, "root-bob").status_code == 201
    admin = _login(invite_only, "root-bob")
    code = invite_only.post("/v1/auth/invites", headers=admin).json()["code"]
    assert _register(invite_only, "root-bob", invite=code).status_code == 409
    assert _register(invite_only, "carol", invite=code).status_code == 201


def test_a_closed_platform_registers_only_its_first_user(services: RunningServices) -> None:
    with TestClient(create_app(_empty_platform(services, registration="closed"))) as closed:
        assert _register(closed, "root-dan").status_code == 201
        refused = _register(closed, "erin")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"


def test_concurrent_first_registrations_make_one_admin(services: RunningServices) -> None:
    with TestClient(create_app(_empty_platform(services, registration="closed"))) as closed:
        answers: list[Any] = []

        def attempt(name: str) -> None:
            answers.append(_register(closed, name))

        threads = [threading.Thread(target=attempt, args=(f"first-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [201, 403, 403, 403]


def test_registrations_are_throttled_per_client(
    services: RunningServices, unique_name: Callable[[str], str]
) -> None:
    settings = services.settings.model_copy(update={"registrations_per_client": 2})
    app = create_app(settings)
    with TestClient(app, client=("203.0.113.80", 40000)) as busy:
        assert _register(busy, unique_name("r")).status_code == 201
        assert _register(busy, "no").status_code == 422, "a refused body costs no attempt"
        assert _register(busy, unique_name("r")).status_code == 201
        throttled = _register(busy, unique_name("r"))
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        other = TestClient(app, client=("203.0.113.81", 40001))
        assert _register(other, unique_name("r")).status_code == 201


@pytest.mark.parametrize("busy", ["sign-ins", "registrations"])
def test_a_busy_hashing_pool_answers_503_and_leaves_the_other_pool_alone(
    services: RunningServices, unique_name: Callable[[str], str], busy: str
) -> None:
    """With every hashing slot of one kind taken, such a request waits at most the bound, then gets a
    503; the other kind (a registration burst, or a wave of logins) is still served."""
    settings = services.settings.model_copy(
        update={"password_hash_concurrency": 2, "password_hash_wait_seconds": 0.2}
    )
    with TestClient(create_app(settings)) as client:
        username = unique_name("patient")
        assert _register(client, username).status_code == 201
        accounts = client.app.state.plane.accounts  # type: ignore[attr-defined]
        hashing = accounts.hashing if busy == "sign-ins" else accounts.registration_hashing
        release, taken = threading.Event(), threading.Event()

        def hold() -> None:
            taken.set()
            release.wait(30)

        def login() -> Any:
            return client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})

        def register() -> Any:
            return _register(client, unique_name("newcomer"))

        waiting, served = (login, register) if busy == "sign-ins" else (register, login)
        assert client.portal is not None
        holder = client.portal.start_task_soon(hashing.run, hold)
        try:
            assert taken.wait(10)
            refused = waiting()
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "unavailable"
            assert int(refused.headers["Retry-After"]) >= 1
            assert served().status_code in (200, 201)
        finally:
            release.set()
            holder.result(10)
        assert waiting().status_code in (200, 201)
