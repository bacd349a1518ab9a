"""``imprun login`` / ``imprun logout``: a session token saved under the user config dir (mode 0600)."""

from __future__ import annotations

from typing import Annotated

import typer

from imprun.cli.session import api_client, done
from imprun.sdk.connection import SavedLogin, forget_login, normalize_url, save_login


def login(
    username: Annotated[str, typer.Option("--username", "-u", prompt=True, envvar="IMPRUN_USERNAME")],
    password: Annotated[
        str, typer.Option("--password", "-p", prompt=True, hide_input=True, envvar="IMPRUN_PASSWORD")
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="Control plane URL (default: IMPRUN_URL or :8080).")
    ] = None,
    data_plane_url: Annotated[
        str | None, typer.Option("--data-plane-url", help="Where functions answer.")
    ] = None,
    register: Annotated[bool, typer.Option("--register", help="Create the account first.")] = False,
) -> None:
    """Log in to a control plane and save the session for the other commands."""
    with api_client(url) as client:
        if register:
            client.register(username, password)
        result = client.login(username, password)
        path = save_login(
            SavedLogin(
                url=client.url,
                token=result.token,
                username=username,
                expires_at=result.expires_at.isoformat(),
                data_plane_url=normalize_url(data_plane_url) if data_plane_url else None,
            )
        )
    done(f"logged in to {client.url} as {username} (session saved in {path})")


def logout() -> None:
    """Forget the saved session."""
    done("logged out" if forget_login() else "there was no saved login")
