"""``imprun app create|list|delete`` and ``imprun grant create|list|regenerate|revoke``: API keys.

A key is printed only when a grant is created or its key regenerated (the API never shows it again).
"""

from __future__ import annotations

from typing import Annotated

import typer

from imprun.cli.session import JsonOption, api_client, console, done, print_json, print_table
from imprun.sdk.models import IssuedKey

app = typer.Typer(help="Applications: who calls your functions.", no_args_is_help=True)
grant = typer.Typer(help="Grants: an application's API key for one environment.", no_args_is_help=True)

AppArg = Annotated[str, typer.Argument(help="Application id.")]


@app.command("create")
def create_application(
    name: Annotated[str, typer.Argument(help="Application name.")],
    description: Annotated[str | None, typer.Option(help="What it is.")] = None,
    organization: Annotated[str | None, typer.Option(help="Who runs it.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an application."""
    with api_client() as client:
        created = client.create_application(name, description=description, organization=organization)
    if as_json:
        print_json(created)
    else:
        done(f"application {created.application_id} ({created.name}) created")


@app.command("list")
def list_applications(as_json: JsonOption = False) -> None:
    """List your applications."""
    with api_client() as client:
        applications = client.list_applications()
    if as_json:
        print_json(applications)
        return
    print_table(
        None,
        ["application", "name", "description"],
        [(a.application_id, a.name, a.description) for a in applications],
    )


@app.command("delete")
def delete_application(application: AppArg) -> None:
    """Delete an application and revoke its grants."""
    with api_client() as client:
        result = client.delete_application(application)
    done(f"application {application} deleted ({len(result.get('revokedGrants') or [])} grants revoked)")


def _print_key(issued: IssuedKey, as_json: bool) -> None:
    if as_json:
        print_json(issued)
        return
    done(f"grant {issued.grant_id} on {issued.gateway_id}/{issued.environment}")
    console().print("API key (shown once, keep it safe):")
    typer.echo(issued.api_key)


@grant.command("create")
def create_grant(
    application: AppArg,
    gateway: Annotated[str, typer.Argument(help="Gateway id.")],
    env: Annotated[str, typer.Argument(help="Environment.")],
    as_json: JsonOption = False,
) -> None:
    """Grant an application access to one environment and print its new API key."""
    with api_client() as client:
        issued = client.create_grant(application, gateway, env)
    _print_key(issued, as_json)


@grant.command("list")
def list_grants(application: AppArg, as_json: JsonOption = False) -> None:
    """An application's grants (key prefixes only)."""
    with api_client() as client:
        grants = client.list_grants(application)
    if as_json:
        print_json(grants)
        return
    print_table(
        None,
        ["grant", "gateway", "environment", "key prefix", "status"],
        [(g.grant_id, g.gateway_id, g.environment, g.key_prefix, g.status) for g in grants],
    )


@grant.command("regenerate")
def regenerate(
    application: AppArg,
    grant_id: Annotated[str, typer.Argument(help="Grant id.")],
    as_json: JsonOption = False,
) -> None:
    """Issue a new key for a grant; the old one stops working."""
    with api_client() as client:
        issued = client.regenerate_key(application, grant_id)
    _print_key(issued, as_json)


@grant.command("revoke")
def revoke(application: AppArg, grant_id: Annotated[str, typer.Argument(help="Grant id.")]) -> None:
    """Revoke a grant; its key stops working within a second."""
    with api_client() as client:
        client.revoke_grant(application, grant_id)
    done(f"grant {grant_id} revoked")
