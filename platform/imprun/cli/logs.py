"""``imprun logs <gw> [<env>] [-f]``: an environment's function logs; ``-f`` follows them live (SSE)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from imprun.cli.session import JsonOption, api_client, console
from imprun.sdk.models import LogEntry

_LEVEL_COLOURS = {"error": "red", "warning": "yellow", "debug": "dim"}


def _print_entry(entry: LogEntry, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(entry.to_json()))
        return
    colour = _LEVEL_COLOURS.get(entry.level.lower(), "cyan")
    console().print(
        f"[dim]{escape(entry.time or '')}[/] [{colour}]{escape(entry.level):7}[/] "
        f"[bold]{escape(entry.function or '-')}[/] {escape(entry.message)}"
        + (f" [dim]{escape(entry.request_id)}[/]" if entry.request_id else "")
    )


def logs(
    gateway: Annotated[str, typer.Argument(help="Gateway id.")],
    env: Annotated[str, typer.Argument(help="Environment.")] = "dev",
    function: Annotated[str | None, typer.Option("--function", "-F", help="One function's logs.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time or an age such as 5m.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="The newest N entries.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new entries.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the function logs of an environment (one JSON object per line with --json)."""
    with api_client() as client:
        if not follow:
            for entry in client.logs(gateway, env, function=function, since=since, limit=limit):
                _print_entry(entry, as_json)
            return

        def ended(message: str) -> None:
            console().print(f"[yellow]stream ended:[/] {escape(message)}")

        try:
            for entry in client.follow_logs(
                gateway, env, function=function, since=since, limit=limit, on_end=ended
            ):
                _print_entry(entry, as_json)
        except KeyboardInterrupt:
            return
