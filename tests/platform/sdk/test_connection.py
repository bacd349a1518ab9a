"""Connection settings: arguments, then IMPRUN_* variables, then the saved login (mode 0600)."""

from __future__ import annotations

import stat
from pathlib import Path

from imprun.sdk.connection import (
    DEFAULT_URL,
    SavedLogin,
    forget_login,
    load_saved_login,
    login_path,
    resolve_connection,
    save_login,
)


def test_defaults_without_anything(tmp_path: Path) -> None:
    connection = resolve_connection(environ={"IMPRUN_CONFIG_DIR": str(tmp_path)})
    assert connection.url == DEFAULT_URL
    assert connection.token is None
    assert connection.data_plane_url is None


def test_saved_login_is_private_and_used(tmp_path: Path) -> None:
    environ = {"IMPRUN_CONFIG_DIR": str(tmp_path / "cfg")}
    path = save_login(SavedLogin(url="http://cp:9000", token="tok", username="ada"), environ)
    assert path == login_path(environ)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_saved_login(environ) == SavedLogin(url="http://cp:9000", token="tok", username="ada")
    connection = resolve_connection(environ=environ)
    assert (connection.url, connection.token) == ("http://cp:9000", "tok")
    assert forget_login(environ) is True
    assert forget_login(environ) is False
    assert resolve_connection(environ=environ).token is None


def test_variables_beat_the_saved_login_and_arguments_beat_variables(tmp_path: Path) -> None:
    environ = {"IMPRUN_CONFIG_DIR": str(tmp_path)}
    save_login(SavedLogin(url="http://cp:9000", token="saved"), environ)
    environ |= {"IMPRUN_TOKEN": "from-env", "IMPRUN_DATA_PLANE_URL": "dp:8000/"}
    connection = resolve_connection(environ=environ)
    assert (connection.url, connection.token, connection.data_plane_url) == (
        "http://cp:9000",
        "from-env",
        "http://dp:8000",
    )
    connection = resolve_connection("http://other:1", "arg", environ=environ)
    assert (connection.url, connection.token) == ("http://other:1", "arg")


def test_a_saved_token_is_never_sent_to_another_server(tmp_path: Path) -> None:
    environ = {"IMPRUN_CONFIG_DIR": str(tmp_path), "IMPRUN_URL": "http://elsewhere:8080"}
    save_login(SavedLogin(url="http://cp:9000", token="saved"), environ)
    connection = resolve_connection(environ=environ)
    assert connection.url == "http://elsewhere:8080"
    assert connection.token is None


def test_an_unreadable_login_file_counts_as_no_login(tmp_path: Path) -> None:
    environ = {"IMPRUN_CONFIG_DIR": str(tmp_path)}
    login_path(environ).write_text("{not json")
    assert load_saved_login(environ) is None
