"""The built console served at ``/``: files of the build, ``index.html`` for the console's own paths,
and API paths untouched (JSON 404 and 405 as before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imprun.api.errors import install_error_handlers
from imprun.api.routes.console import install_console

INDEX = "<!doctype html><title>console</title>"


def app_with(console_dir: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/things")
    def things() -> list[str]:
        return ["a"]

    install_console(app, console_dir)
    return TestClient(app)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the build")
    return dist


def test_console_paths_get_index_html_without_caching(built: Path) -> None:
    client = app_with(built)
    for path in ("/", "/gateways/hometax", "/gateways/hometax/functions/reports/daily", "/login"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_hashed_assets_are_served_compressed_and_cached_for_good(built: Path) -> None:
    client = app_with(built)
    response = client.get("/assets/index-abc123.js")
    assert response.status_code == 200 and response.text == "console.log(1)"
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["content-type"].startswith("text/javascript")
    plain = client.get("/assets/index-abc123.js", headers={"accept-encoding": "identity"})
    assert plain.text == "console.log(1)" and "content-encoding" not in plain.headers


def test_nothing_outside_the_build_is_served(built: Path) -> None:
    client = app_with(built)
    for path in (
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
    ):
        response = client.get(path)
        assert "outside the build" not in response.text, path


def test_api_paths_and_other_methods_keep_their_json_errors(built: Path) -> None:
    client = app_with(built)
    assert client.get("/v1/things").json() == ["a"]
    unknown = client.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert client.post("/v1/nothing").status_code == 404
    wrong_method = client.post("/v1/things")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "invalid"
    assert client.post("/gateways").status_code == 404


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    response = app_with(tmp_path / "missing").get("/")
    assert response.status_code == 404
    assert "console/setup.sh" in response.json()["error"]["message"]
