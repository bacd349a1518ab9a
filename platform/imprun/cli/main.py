"""The ``imprun`` Typer application (console script ``imprun = imprun.cli.main:app``).

Exit codes: 0 success, 1 a local command failed (``up``/``down``/``status``), 2 usage error,
3 the API answered an error or there is no login, 4 the control plane could not be reached.
"""

from __future__ import annotations

import typer

from imprun.cli import applications, environments, functions, gateway, tools
from imprun.cli.auth import invites, login, logout, password
from imprun.cli.down import down
from imprun.cli.logs import logs
from imprun.cli.status import status
from imprun.cli.up import up

app = typer.Typer(
    name="imprun",
    help=(
        "imprun: publish Python functions as HTTP APIs and MCP tools on Ray.\n\n"
        "Exit codes: 0 ok, 1 local failure, 2 usage error, 3 API error or no login, 4 unreachable."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)
app.command()(up)
app.command()(down)
app.command()(status)
app.command()(login)
app.command()(logout)
app.command()(password)
app.command()(logs)
app.command()(tools.dashboard)
app.add_typer(gateway.app, name="gateway")
app.add_typer(environments.app, name="env")
app.add_typer(environments.variables, name="var")
app.add_typer(functions.app, name="fn")
app.add_typer(applications.app, name="app")
app.add_typer(applications.grant, name="grant")
app.add_typer(tools.app, name="tools")
app.add_typer(invites, name="invite")


if __name__ == "__main__":
    app()
