"""``imprun login`` / ``logout`` / ``password`` and ``imprun invite``: sessions and accounts.

The session token is saved under the user config dir (mode 0600). ``logout`` ends the session on
the server too (``--everywhere``: every session of the user); ``password`` changes the password and
ends the user's other sessions; ``invite`` is for admins of a platform registering by invite.
"""

from __future__ import annotations

from typing import Annotated

import typer

from imprun.cli.output import error_console, print_error
from imprun.cli.session import JsonOption, api_client, console, done, print_json, print_table
from imprun.sdk.connection import SavedLogin, forget_login, load_saved_login, normalize_url, save_login

invites = typer.Typer(help="Registration invites (admins; IMPRUN_REGISTRATION=invite).", no_args_is_help=True)


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
    invite: Annotated[
        str | None, typer.Option("--invite", help="An admin's invite code (with --register).")
    ] = None,
) -> None:
    """Log in to a control plane and save the session for the other commands."""
    with api_client(url) as client:
        if register:
            client.register(username, password, invite=invite)
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


def logout(
    everywhere: Annotated[
        bool, typer.Option("--everywhere", help="End every session of this user, on every machine.")
    ] = False,
) -> None:
    """End the session on the server and forget it here."""
    saved = load_saved_login()
    if saved is not None:
        try:
            with api_client(saved.url) as client:
                client.token = saved.token
                if everywhere:
                    client.end_sessions()
                else:
                    client.logout()
        except typer.Exit:
            print_error(error_console(), "the server did not end the session; it is forgotten here anyway")
    forget_login()
    done("logged out" if saved is not None else "there was no saved login")


def password(
    current: Annotated[
        str, typer.Option("--current", prompt="Current password", hide_input=True, envvar="IMPRUN_PASSWORD")
    ],
    new: Annotated[
        str,
        typer.Option("--new", prompt="New password", hide_input=True, confirmation_prompt=True),
    ],
) -> None:
    """Change your password; your other sessions end, this one stays."""
    with api_client() as client:
        ended = client.change_password(current, new)
    done(f"password changed ({ended} other session{'s' if ended != 1 else ''} ended)")


@invites.command("create")
def create_invite(as_json: JsonOption = False) -> None:
    """Create a one-time registration invite and print its code (shown once)."""
    with api_client() as client:
        issued = client.create_invite()
    if as_json:
        print_json(issued)
        return
    done(f"invite {issued.id} (valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC)")
    console().print("Code (shown once; `imprun login --register --invite <code>`):")
    typer.echo(issued.code)


@invites.command("list")
def list_invites(as_json: JsonOption = False) -> None:
    """List the invites and who used them."""
    with api_client() as client:
        listed = client.list_invites()
    if as_json:
        print_json(listed)
        return
    print_table(
        None,
        ["invite", "expires", "used by"],
        [(i.id, f"{i.expires_at:%Y-%m-%d %H:%M}", i.used_by or "") for i in listed],
    )


@invites.command("delete")
def delete_invite(invite_id: Annotated[str, typer.Argument(help="Invite id.")]) -> None:
    """Delete an invite (used or not)."""
    with api_client() as client:
        client.delete_invite(invite_id)
    done(f"invite {invite_id} deleted")
