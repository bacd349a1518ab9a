"""Where the SDK connects and with which credentials: arguments, then ``IMPRUN_*``, then the saved login.

``resolve_connection`` applies that order for each setting: the control-plane URL (``IMPRUN_URL``,
default ``http://127.0.0.1:8080``), the session token (``IMPRUN_TOKEN``), the data-plane URL
(``IMPRUN_DATA_PLANE_URL``; when unset the SDK uses each environment's ``url`` from the API) and an
API key for data-plane calls (``IMPRUN_API_KEY``). The saved login is the JSON file ``imprun login``
writes under the user config dir (``$IMPRUN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/imprun``, else
``~/.config/imprun``), mode 0600; its token is used only for the URL it was issued by.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
LOGIN_FILE = "login.json"


@dataclass(frozen=True)
class SavedLogin:
    url: str
    token: str
    username: str | None = None
    expires_at: str | None = None
    data_plane_url: str | None = None


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    data_plane_url: str | None
    api_key: str | None
    timeout: float


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("IMPRUN_CONFIG_DIR"):
        return Path(env["IMPRUN_CONFIG_DIR"]).expanduser()
    base = (
        Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    )
    return base / "imprun"


def login_path(environ: Mapping[str, str] | None = None) -> Path:
    return config_dir(environ) / LOGIN_FILE


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def load_saved_login(environ: Mapping[str, str] | None = None) -> SavedLogin | None:
    """The saved login, or None when there is none or it cannot be read."""
    try:
        raw: Any = json.loads(login_path(environ).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not raw.get("url") or not raw.get("token"):
        return None
    return SavedLogin(
        url=normalize_url(str(raw["url"])),
        token=str(raw["token"]),
        username=raw.get("username"),
        expires_at=raw.get("expiresAt"),
        data_plane_url=raw.get("dataPlaneUrl"),
    )


def save_login(login: SavedLogin, environ: Mapping[str, str] | None = None) -> Path:
    """Write the login file with mode 0600 (created that way, never world-readable in between)."""
    path = login_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {
        "url": login.url,
        "token": login.token,
        "username": login.username,
        "expiresAt": login.expires_at,
        "dataPlaneUrl": login.data_plane_url,
    }
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=2)
    tmp.replace(path)
    return path


def forget_login(environ: Mapping[str, str] | None = None) -> bool:
    """Remove the saved login; True if there was one."""
    try:
        login_path(environ).unlink()
    except FileNotFoundError:
        return False
    return True


def resolve_connection(
    url: str | None = None,
    token: str | None = None,
    *,
    data_plane_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    env = os.environ if environ is None else environ
    saved = load_saved_login(env)
    chosen_url = normalize_url(url or env.get("IMPRUN_URL") or (saved.url if saved else DEFAULT_URL))
    same_server = saved is not None and saved.url == chosen_url
    chosen_token = token or env.get("IMPRUN_TOKEN") or (saved.token if saved and same_server else None)
    chosen_data_plane = (
        data_plane_url
        or env.get("IMPRUN_DATA_PLANE_URL")
        or (saved.data_plane_url if saved and same_server else None)
    )
    return Connection(
        url=chosen_url,
        token=chosen_token or None,
        data_plane_url=normalize_url(chosen_data_plane) if chosen_data_plane else None,
        api_key=api_key or env.get("IMPRUN_API_KEY") or None,
        timeout=timeout,
    )
