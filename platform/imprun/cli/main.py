"""The ``imprun`` Typer application (console script ``imprun = imprun.cli.main:app``)."""

from __future__ import annotations

import typer

from imprun.cli.down import down
from imprun.cli.status import status
from imprun.cli.up import up

app = typer.Typer(
    name="imprun",
    help="imprun: publish Python functions as HTTP APIs and MCP tools on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)
app.command()(up)
app.command()(down)
app.command()(status)


if __name__ == "__main__":
    app()
