"""``imprun status``: the control plane (pid file and ``/readyz``) and each service, as a table or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from imprun.cli.control_plane import (
    CONTROL_PLANE,
    Readiness,
    control_plane_pid,
    control_plane_record,
    probe_readyz,
)
from imprun.cli.output import error_console, exit_on_error, load_settings
from imprun.embedded.stack import ServiceStatus, embedded_status
from imprun.settings import Settings


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show whether the control plane and each service run, where, and under which pid."""
    with exit_on_error(error_console()):
        settings = load_settings()
        report = collect_status(settings)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        print_status(Console(highlight=False), report)


def collect_status(settings: Settings) -> dict[str, Any]:
    pid = control_plane_pid(control_plane_record(settings))
    readiness = probe_readyz(settings)
    services: list[ServiceStatus] = embedded_status(settings)
    return {
        "controlPlane": {
            "name": CONTROL_PLANE,
            "url": settings.control_plane_url,
            "running": pid is not None or readiness.status_code is not None,
            "pid": pid,
            "ready": readiness.ready,
            "readyz": _readyz_summary(readiness),
        },
        "services": [asdict(row) for row in services],
    }


def _readyz_summary(readiness: Readiness) -> dict[str, Any] | None:
    if readiness.status_code is None:
        return None
    return {"status": readiness.status_code, "body": readiness.body}


def print_status(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="imprun", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("state")
    table.add_column("url", overflow="fold")
    table.add_column("pid", justify="right")
    plane = report["controlPlane"]
    if plane["ready"]:
        state = "[green]ready[/]"
    elif plane["running"]:
        state = f"[yellow]not ready ({plane['readyz']['status'] if plane['readyz'] else 'no answer'})[/]"
    else:
        state = "[red]stopped[/]"
    table.add_row(plane["name"], state, plane["url"], _pid(plane["pid"]))
    for row in report["services"]:
        state = "[green]running[/]" if row["running"] else "[red]stopped[/]"
        if row["external"]:
            state += " [dim](external)[/]"
        table.add_row(row["name"], state, escape(row["url"] or ""), _pid(row["pid"]))
    console.print(table)


def _pid(pid: int | None) -> str:
    return "" if pid is None else str(pid)
