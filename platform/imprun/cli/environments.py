"""``imprun env list|set`` (auth type, rate limit) and ``imprun var list|set|unset`` (variables and secrets).

A secret's value is sent once and never shown again: listings print it masked.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from imprun.cli.session import JsonOption, api_client, done, print_json, print_table

app = typer.Typer(help="A gateway's environments: auth type and rate limit.", no_args_is_help=True)
variables = typer.Typer(
    help="Environment variables and secrets (functions read them as imp.env).", no_args_is_help=True
)

GatewayArg = Annotated[str, typer.Argument(help="Gateway id.")]
EnvArg = Annotated[str, typer.Argument(help="Environment (dev, staging, prod).")]


def _rate_limit(text: str) -> dict[str, int] | None:
    """``100/60`` → 100 calls per 60 s; ``none`` removes the limit."""
    if text.lower() == "none":
        return None
    count, _, window = text.partition("/")
    try:
        return {"count": int(count), "windowSeconds": int(window.rstrip("s") or 60)}
    except ValueError:
        raise typer.BadParameter("--rate-limit is COUNT/SECONDS (e.g. 100/60) or none") from None


@app.command("list")
def list_environments(gateway: GatewayArg, as_json: JsonOption = False) -> None:
    """The gateway's environments with phase, auth type, rate limit and URL."""
    with api_client() as client:
        environments = client.list_environments(gateway)
    if as_json:
        print_json(environments)
        return
    rows = [
        (
            e.name,
            e.phase,
            e.auth_type,
            f"{e.rate_limit.count}/{e.rate_limit.window_seconds}s" if e.rate_limit else "-",
            e.url,
        )
        for e in environments
    ]
    print_table(None, ["environment", "phase", "auth", "rate limit", "url"], rows)


@app.command("set")
def set_environment(
    gateway: GatewayArg,
    env: EnvArg,
    auth: Annotated[str | None, typer.Option("--auth", help="key-auth or none (public).")] = None,
    rate_limit: Annotated[str | None, typer.Option("--rate-limit", help="COUNT/SECONDS, or none.")] = None,
) -> None:
    """Change an environment's auth type and/or rate limit."""
    changes: dict[str, Any] = {"auth_type": auth}
    if rate_limit is not None:
        changes["rate_limit"] = _rate_limit(rate_limit)
    with api_client() as client:
        updated = client.update_environment(gateway, env, **changes)
    done(
        f"{gateway}/{env}: auth {updated.auth_type}, rate limit {updated.rate_limit.to_json() if updated.rate_limit else 'none'}"
    )


@variables.command("list")
def list_variables(gateway: GatewayArg, env: EnvArg, as_json: JsonOption = False) -> None:
    """An environment's variables (secrets masked)."""
    with api_client() as client:
        found = client.list_variables(gateway, env)
    if as_json:
        print_json(found)
        return
    print_table(
        None,
        ["name", "value", "secret"],
        [(v.name, "••••••" if v.secret else v.value, v.secret) for v in found],
    )


@variables.command("set")
def set_variable(
    gateway: GatewayArg,
    env: EnvArg,
    name: Annotated[str, typer.Argument(help="An identifier, e.g. API_TOKEN.")],
    value: Annotated[str, typer.Argument(help="The value.")],
    secret: Annotated[bool, typer.Option("--secret", help="Never show the value again.")] = False,
) -> None:
    """Create or replace a variable; live in the environment's replicas within milliseconds."""
    with api_client() as client:
        client.set_variable(gateway, env, name, value, secret=secret)
    done(f"{'secret' if secret else 'variable'} {name} set on {gateway}/{env}")


@variables.command("unset")
def unset_variable(
    gateway: GatewayArg, env: EnvArg, name: Annotated[str, typer.Argument(help="Variable name.")]
) -> None:
    """Remove a variable."""
    with api_client() as client:
        client.delete_variable(gateway, env, name)
    done(f"{name} removed from {gateway}/{env}")
