"""``imprun gateway create|list|show|stop|start|delete``; ``create`` waits for Started with a live display."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from imprun.cli.session import JsonOption, api_client, console, done, print_json, print_table
from imprun.sdk.models import Gateway

app = typer.Typer(help="Create, inspect, stop, start and delete gateways.", no_args_is_help=True)

GatewayArg = Annotated[str, typer.Argument(help="Gateway id.")]


def _print_gateway(gateway: Gateway) -> None:
    console().print(
        f"[bold]{escape(gateway.gateway_id)}[/] ({escape(gateway.name)}): state {gateway.state}, phase {gateway.phase}"
    )
    print_table(
        None,
        ["environment", "phase", "tier", "loaded on", "auth", "url"],
        [
            (e.name, e.phase, e.tier, ", ".join(w.replica for w in e.loaded_on) or "-", e.auth_type, e.url)
            for e in gateway.environments
        ],
    )
    _print_failures(gateway)


def _print_failures(gateway: Gateway) -> None:
    """Why the gateway or an environment is not where it should be: ``prod InsufficientCapacity: …``."""
    out = console()
    for where, reason, message in gateway.failures():
        out.print(f"[yellow]![/] {escape(where)} [bold]{escape(reason)}[/]: {escape(message)}")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name; the id is derived from it unless --id.")],
    gateway_id: Annotated[str | None, typer.Option("--id", help="DNS-safe gateway id.")] = None,
    tier: Annotated[
        str | None,
        typer.Option(help="shared (loaded on demand, idle costs nothing) or dedicated (own replicas)."),
    ] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU per replica.")] = None,
    memory: Annotated[int | None, typer.Option(help="Memory per replica (MiB).")] = None,
    min_replicas: Annotated[int | None, typer.Option(help="Replicas kept per environment.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Most replicas per environment.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the gateway is accepted.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Started.")] = 300.0,
    as_json: JsonOption = False,
) -> None:
    """Create a gateway (database + dev, staging and prod) and wait until it is Started."""
    sizes = {
        "tier": tier,
        "cpu": cpu,
        "memory": memory,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
    }
    bundle = {k: v for k, v in sizes.items() if v is not None} or None
    with api_client() as client:
        gateway = client.create_gateway(name, gateway_id=gateway_id, bundle=bundle)
        if not no_wait:
            out = console()
            with out.status(f"{gateway.gateway_id}: {gateway.phase}…") as spinner:
                shown_phase: list[str] = []

                def show(seen: Gateway) -> None:
                    spinner.update(f"{seen.gateway_id}: {seen.phase}…")
                    if as_json:
                        return
                    if shown_phase != [seen.phase]:
                        out.print(f"  [dim]phase[/] {seen.phase}")
                        shown_phase[:] = [seen.phase]
                    _print_failures(seen)

                gateway = client.wait_for_gateway(gateway.gateway_id, timeout=timeout, on_change=show)
    if as_json:
        print_json(gateway)
        return
    done(f"gateway {gateway.gateway_id} {'accepted' if no_wait else 'started'}")
    if not no_wait:
        _print_gateway(gateway)


@app.command("list")
def list_gateways(as_json: JsonOption = False) -> None:
    """List your gateways."""
    with api_client() as client:
        gateways = client.list_gateways()
    if as_json:
        print_json(gateways)
        return
    print_table(
        None,
        ["gateway", "name", "state", "phase"],
        [(g.gateway_id, g.name, g.state, g.phase) for g in gateways],
    )


@app.command("show")
def show(gw: GatewayArg, as_json: JsonOption = False) -> None:
    """Show a gateway and its environments."""
    with api_client() as client:
        gateway = client.get_gateway(gw)
    if as_json:
        print_json(gateway)
    else:
        _print_gateway(gateway)


@app.command("stop")
def stop(gw: GatewayArg) -> None:
    """Scale all three environments to zero (the code and data stay)."""
    with api_client() as client:
        client.stop_gateway(gw)
    done(f"gateway {gw} is stopping")


@app.command("start")
def start(gw: GatewayArg) -> None:
    """Start a stopped gateway again."""
    with api_client() as client:
        client.start_gateway(gw)
    done(f"gateway {gw} is starting")


@app.command("delete")
def delete(
    gw: GatewayArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a gateway: its environments, database and functions."""
    if not yes:
        typer.confirm(f"Delete gateway {gw} with its database and functions?", abort=True)
    with api_client() as client:
        client.delete_gateway(gw)
    done(f"gateway {gw} is being deleted")
