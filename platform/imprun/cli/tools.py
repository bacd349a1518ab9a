"""``imprun tools list`` (the AI gateway's MCP tools) and ``imprun dashboard`` (the Ray dashboard URL)."""

from __future__ import annotations

import os
import webbrowser
from typing import Annotated
from urllib.parse import urlsplit

import typer

from imprun.cli.session import JsonOption, api_client, print_json, print_table

app = typer.Typer(help="The AI gateway's MCP tools.", no_args_is_help=True)

DASHBOARD_PORT = 8265


@app.command("list")
def list_tools(as_json: JsonOption = False) -> None:
    """List the MCP tools agents can call."""
    with api_client() as client:
        tools = client.list_mcp_tools()
    if as_json:
        print_json(tools)
        return
    print_table(
        None,
        ["tool", "gateway", "environment", "function", "description"],
        [(t.name, t.gateway_id, t.environment, t.function, t.description) for t in tools],
    )


def dashboard(
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Print the Ray dashboard URL (IMPRUN_DASHBOARD_URL, else the control plane's host on :8265)."""
    url = os.environ.get("IMPRUN_DASHBOARD_URL")
    if not url:
        with api_client() as client:
            host = urlsplit(client.url).hostname or "127.0.0.1"
        url = f"http://{host}:{os.environ.get('IMPRUN_DASHBOARD_PORT', DASHBOARD_PORT)}"
    typer.echo(url)
    if open_browser:
        webbrowser.open(url)
