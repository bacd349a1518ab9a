"""``imprun up``: start the embedded stack, then run the control plane in the foreground.

Order of events: refuse if a control plane is already recorded or the API port is taken, record our
pid, start (or reuse) nx-27017, redis-server and the Ray head with a progress display, serve the
control plane until SIGINT/SIGTERM, print the URLs once ``/readyz`` is 200. Shutting down stops
uvicorn first, then the services this process started, newest first — except the Ray head, which is
kept unless ``--stop-ray``: it exists apart from the control plane so that restarting the control
plane does not take deployed functions down. ``imprun down`` stops everything.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from imprun.api.routes.console import default_console_dir
from imprun.cli.control_plane import control_plane_pid, control_plane_record, forget_own_pid, record_own_pid
from imprun.cli.output import error_console, exit_on_error, load_settings
from imprun.cli.progress import StackProgress
from imprun.cli.serving import ShutdownSignals, build_server, serve_until_stopped
from imprun.embedded.process import port_open
from imprun.embedded.stack import RAY, EmbeddedStack
from imprun.errors import Conflict
from imprun.observability.logs import configure_logging
from imprun.settings import Settings


def up(
    no_ray: Annotated[
        bool,
        typer.Option("--no-ray", help="Run only the control plane and its databases; no Ray, no data plane."),
    ] = False,
    stop_ray: Annotated[
        bool,
        typer.Option("--stop-ray", help="On Ctrl-C also stop the Ray head this command started."),
    ] = False,
) -> None:
    """Start the embedded services and run the control plane in the foreground.

    Every service without a configured URL (IMPRUN_MONGO_URL, IMPRUN_REDIS_URL, IMPRUN_RAY_ADDRESS) is
    started under IMPRUN_DATA_DIR, or reused if one already answers on its port.

    Ctrl-C (or SIGTERM) stops the control plane, then the nx-27017 and redis-server this command
    started. The Ray head is left running so deployed functions keep their replicas and the next
    `imprun up` reuses it at once; pass --stop-ray to stop it too, or run `imprun down`, which stops
    everything.
    """
    console, errors = Console(highlight=False), error_console()
    with exit_on_error(errors):
        settings = load_settings()
        configure_logging(settings.log_level, json_lines=settings.log_json)
        run_up(settings, console, with_ray=not no_ray, keep_ray=not stop_ray)


def run_up(settings: Settings, console: Console, *, with_ray: bool, keep_ray: bool) -> None:
    record = control_plane_record(settings)
    pid = control_plane_pid(record)
    if pid is not None:
        raise Conflict(f"imprun is already running (pid {pid}); stop it with `imprun down`")
    if port_open(settings.host, settings.api_port):
        raise Conflict(
            f"port {settings.host}:{settings.api_port} is already in use; "
            f"stop what listens there or set IMPRUN_API_PORT"
        )
    record_own_pid(record)
    with ShutdownSignals() as signals, StackProgress(console) as progress:
        stack = EmbeddedStack(settings, with_ray=with_ray, on_progress=progress)
        try:
            effective = stack.start()
            server = build_server(effective)
            serve_until_stopped(
                server, effective, signals, lambda: announce(console, effective, stack, keep_ray=keep_ray)
            )
        except KeyboardInterrupt:
            pass  # a signal during start-up: EmbeddedStack.start already stopped what it had started
        finally:
            signals.cleaning_up = True
            if signals.requested:
                console.print("Stopping…")
            stack.stop(keep_ray=keep_ray)
            forget_own_pid(record)
    if stack.reused:
        console.print(
            f"[dim]{', '.join(stack.reused)} ran before `imprun up` and keep running; "
            f"`imprun down` stops them[/]",
            soft_wrap=True,
        )
    console.print("[bold]imprun stopped[/]")


def announce(console: Console, settings: Settings, stack: EmbeddedStack, *, keep_ray: bool) -> None:
    urls = Table.grid(padding=(0, 2))
    urls.add_row("control plane", settings.control_plane_url)
    console_built = (default_console_dir() / "index.html").is_file()
    urls.add_row(
        "web console",
        f"{settings.control_plane_url}/" if console_built else "[yellow]not built: bash console/setup.sh[/]",
    )
    if settings.ray_address is None:
        urls.add_row("data plane", "[yellow]none (--no-ray)[/]")
    else:
        urls.add_row("data plane", settings.data_plane_url)
        if settings.ai_gateway:
            urls.add_row("MCP (agents)", f"{settings.data_plane_url}/mcp")
        urls.add_row("Ray", settings.ray_address)
        urls.add_row("Ray dashboard", stack.ray_dashboard_url or "[dim]see your Ray cluster[/]")
    console.print("[bold green]imprun is up[/]")
    console.print(urls)
    kept = keep_ray and RAY in stack.started
    tail = "; the Ray head keeps running (`imprun down` stops it)" if kept else ""
    console.print(f"[dim]Ctrl-C stops the control plane and the services it started{tail}.[/]")
