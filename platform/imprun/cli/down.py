"""``imprun down``: stop the control plane through its pid file, then every embedded service.

The control plane is asked to stop first (SIGTERM; it stops the services it started on its way
out), then whatever is still recorded under the data dir is stopped: the Ray head, redis-server,
nx-27017. Running it when nothing runs is fine and says so.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from imprun.cli.control_plane import CONTROL_PLANE, control_plane_pid, control_plane_record
from imprun.cli.output import error_console, exit_on_error, load_settings
from imprun.embedded.stack import embedded_status, stop_embedded
from imprun.settings import Settings


def down(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each process to exit before it is killed.", min=1)
    ] = 60.0,
) -> None:
    """Stop the control plane, the Ray head, redis-server and nx-27017 started from IMPRUN_DATA_DIR.

    Services configured by URL (IMPRUN_MONGO_URL, IMPRUN_REDIS_URL, IMPRUN_RAY_ADDRESS) are never
    touched. Safe to run when nothing is running.
    """
    console = Console(highlight=False)
    with exit_on_error(error_console()):
        settings = load_settings()
        stopped = stop_everything(settings, timeout=timeout)
    if not stopped:
        console.print("imprun is not running; nothing to stop")
    for name, pid in stopped:
        console.print(f"[dim]■[/] stopped {name}" + (f" (pid {pid})" if pid is not None else ""))


def stop_everything(settings: Settings, *, timeout: float) -> list[tuple[str, int | None]]:
    """Stop all of it; returns ``(name, pid)`` of what was running before and is stopped now."""
    before = {row.name: row for row in embedded_status(settings) if not row.external}
    record = control_plane_record(settings)
    stopped: list[tuple[str, int | None]] = []
    pid = control_plane_pid(record)
    if pid is not None and record.stop(timeout=timeout):
        stopped.append((CONTROL_PLANE, pid))
    stopped_now = stop_embedded(settings, timeout=timeout)
    after = {row.name: row for row in embedded_status(settings) if not row.external}
    for name, row in before.items():
        # Either we stopped it just now, or the control plane stopped it while shutting down.
        gone = row.pid is not None and after[name].pid is None
        if name in stopped_now or gone:
            stopped.append((name, row.pid))
    return stopped
