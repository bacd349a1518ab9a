"""Benchmark: the CPU an idle imprun burns, and whether registered environments slow publishing down.

Run it from the repository root: ``.venv/bin/python bench/idle.py [--quick]``. It starts its own
embedded stack (``_stack.platform_stack``: nx-27017, redis-server, a Ray head with Serve's HAProxy
ingress, the control plane in its own process) and measures, with no traffic at all, the CPU time
of every platform process over a window of 30 s (10 s with ``--quick``) in three states:

1. the platform with no gateway;
2. ``--gateways`` gateways (10; 2 with ``--quick``), i.e. three times that many environments, each with one
   replica (cpu 0.05 / 256 MiB, minReplicas 1) and a published function;
3. the baseline: after those gateways are deleted, as many bare Serve hello apps as there were
   environments, with the same resources and one replica each, on the same head.

CPU is read from ``/proc/<pid>/stat`` for the services this run started (nx-27017, redis-server, the
control plane) and everything below them, and for every process carrying this run's Ray head marker
(``IMPRUN_RAY_HEAD_ID=<port>``: GCS, raylet, dashboard, Serve controller, HAProxy, replicas, the reload
hub) and everything below those (the replicas' jailed workers) — never another Ray head's processes.
It also measures publish → first response with the new version (``dev``, polled back to back) with
1 gateway registered (3 environments: the fewest a gateway has) and with all of them. It prints the
CPU per process group as % of one core, the ratios, the latencies, the load average, and cleans up.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Final

from _measure import (
    RAY_SYSTEM,
    RELOAD_HUB,
    REPLICAS,
    CpuUsage,
    PlatformProcesses,
    Summary,
    load_average,
    measure_idle,
    run_timed,
)
from _stack import (
    CONTROL_PLANE,
    CPU,
    ENVIRONMENTS,
    MEMORY_MB,
    MONGO,
    REDIS,
    Stack,
    carries,
    new_id,
    platform_stack,
    poll_until_live,
    ray_driver,
    serve_app_names,
    versioned_code,
    wait_until,
)
from ray import serve
from starlette.requests import Request
from starlette.responses import PlainTextResponse

FUNCTION: Final = "live"
GROUPS: Final = (MONGO, REDIS, CONTROL_PLANE, RAY_SYSTEM, RELOAD_HUB, REPLICAS)
SAMPLE_TIMEOUT_S: Final = 30.0


class BareHello:
    """The baseline app (defined in ``__main__``: Ray pickles it by value)."""

    async def __call__(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")


BARE_HELLO: Final = serve.deployment(
    ray_actor_options={"num_cpus": CPU, "memory": MEMORY_MB * 1024 * 1024},
    logging_config={"enable_access_log": False},
)(BareHello)


@dataclass(frozen=True)
class IdleRow:
    label: str
    units: int  # environments or bare apps
    usage: CpuUsage


@dataclass(frozen=True)
class LiveRow:
    label: str
    samples: list[float]
    missed: int


def publish_to_live(
    stack: Stack, gw: str, first_marker: int, count: int, budget: float
) -> tuple[list[float], int]:
    """``count`` rounds of: change the draft, publish to dev, poll until it answers with it."""
    samples: list[float] = []
    missed = 0
    deadline = time.monotonic() + budget
    for marker in range(first_marker, first_marker + count):
        if time.monotonic() > deadline:
            break
        stack.update_function(gw, FUNCTION, versioned_code(marker))
        stack.publish(gw, FUNCTION, "dev")
        answered = time.perf_counter()
        live = poll_until_live(
            stack.data_plane, f"/{gw}/dev/{FUNCTION}", marker, since=answered, timeout=SAMPLE_TIMEOUT_S
        )
        if live is None:
            missed += 1
        else:
            samples.append(live.seconds)
    return samples, missed


def provision(stack: Stack, gateways: list[str], *, timeout: float) -> None:
    """Create the gateways, wait for them, and give every environment a published function."""
    stack.create_gateways(gateways)
    stack.wait_started(gateways, timeout=timeout)
    for gw in gateways:
        stack.create_function(gw, FUNCTION, versioned_code(0))
        stack.publish(gw, FUNCTION, "dev")
        for env in ENVIRONMENTS[1:]:
            stack.deploy_to_stage(gw, FUNCTION, env)


def bare_apps(count: int, *, settle: float, window: float, processes: PlatformProcesses) -> CpuUsage:
    names = [f"bare-{i}" for i in range(count)]
    print(f"deploying {count} bare Serve hello apps…", flush=True)
    serve.run_many([serve.RunTarget(BARE_HELLO.bind(), name=name, route_prefix=f"/{name}") for name in names])
    try:
        return measure_idle(processes, settle=settle, window=window, what=f"{count} bare Serve apps")
    finally:
        for name in names:
            serve.delete(name, _blocking=False)
        wait_until(
            lambda: not set(names) & set(serve.status().applications), timeout=120, what="bare apps deleted"
        )


def print_tables(idle: list[IdleRow], live: list[LiveRow], window: float) -> None:
    empty = idle[0].usage.total_percent
    bare = idle[-1].usage.total_percent
    print()
    print(f"idle CPU — no traffic, {window:g} s windows, % of one core (the machine has 2 cores = 200 %)")
    short = {MONGO: "nx", REDIS: "redis", CONTROL_PLANE: "ctl", RAY_SYSTEM: "ray+serve", RELOAD_HUB: "hub",
             REPLICAS: "replicas"}  # fmt: skip
    header = (
        f"{'scenario':<40} {'total':>7} "
        + " ".join(f"{short[g]:>9}" for g in GROUPS)
        + f" {'procs':>6} {'vs empty':>9} {'vs bare':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in idle:
        usage = row.usage
        print(
            f"{row.label:<40} {usage.total_percent:>6.1f}% "
            + " ".join(f"{usage.percent(g):>8.1f}%" for g in GROUPS)
            + f" {sum(usage.processes.values()):>6} {usage.total_percent - empty:>+8.1f}% "
            f"{usage.total_percent / bare:>7.2f}x"
        )
    imprun_row, bare_row = idle[1], idle[-1]
    per_env = (imprun_row.usage.total_percent - empty) / imprun_row.units
    per_app = (bare_row.usage.total_percent - empty) / bare_row.units
    ratio = f"{per_env / per_app:.2f}x" if per_app > 0 else "n/a"
    print(
        f"above the empty platform: {per_env:.2f} % of a core per imprun environment, "
        f"{per_app:.2f} % per bare Serve app ({ratio})"
    )
    vanished = sum(row.usage.vanished for row in idle)
    if vanished:
        print(f"note: {vanished} process(es) exited during a window; their CPU is not counted")
    print()
    print("publish (dev) → first response with the new version, other environments idle")
    header = f"{'registered':<40} {'n':>4} {'miss':>4} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}"
    print(header)
    print("-" * len(header))
    first: Summary | None = None
    for entry in live:
        if not entry.samples:
            print(f"{entry.label:<40} {0:>4} {entry.missed:>4}   (no samples)")
            continue
        summary = Summary.of(entry.samples)
        first = first or summary
        print(
            f"{entry.label:<40} {summary.count:>4} {entry.missed:>4} {1000 * summary.p50:>8.2f} "
            f"{1000 * summary.p99:>8.2f} {summary.p50 / first.p50:>9.2f}x {summary.p99 / first.p99:>9.2f}x"
        )


def run(args: argparse.Namespace) -> None:
    n = args.gateways or (2 if args.quick else 10)
    window = args.window or (10.0 if args.quick else 30.0)
    settle = 3.0 if args.quick else 10.0
    samples = 20 if args.quick else 100
    print(f"starting the stack… ({load_average()})", flush=True)
    with platform_stack() as stack:
        processes = stack.platform_processes()
        idle: list[IdleRow] = []
        live: list[LiveRow] = []
        idle.append(
            IdleRow(
                "platform, no gateways",
                0,
                measure_idle(processes, settle=settle, window=window, what="empty"),
            )
        )

        gateways = [new_id("idle") for _ in range(n)]
        print("1 gateway…", flush=True)
        provision(stack, gateways[:1], timeout=300)
        stack.open_environment(gateways[0], "dev")
        stack.wait_served(f"/{gateways[0]}/dev/{FUNCTION}", lambda r: carries(r, 0), timeout=120)
        publish_to_live(stack, gateways[0], 1, 5, budget=60)  # warm-up, unmeasured
        got, missed = publish_to_live(stack, gateways[0], 100, samples, budget=60)
        live.append(LiveRow("1 gateway (3 environments)", got, missed))

        print(f"{n - 1} more gateways…", flush=True)
        provision(stack, gateways[1:], timeout=600)
        label = f"{n} gateways ({3 * n} environments)"
        idle.append(IdleRow(label, 3 * n, measure_idle(processes, settle=settle, window=window, what=label)))
        got, missed = publish_to_live(stack, gateways[0], 1000, samples, budget=60)
        live.append(LiveRow(label, got, missed))
        during = load_average()

        print(f"deleting the {n} gateways…", flush=True)
        stack.delete_gateways(gateways, timeout=300)
        with ray_driver(stack):
            names = set(serve_app_names(gateways))
            wait_until(
                lambda: not names & set(serve.status().applications), timeout=120, what="imprun apps gone"
            )
            usage = bare_apps(3 * n, settle=settle, window=window, processes=processes)
        idle.append(IdleRow(f"{3 * n} bare Serve hello apps (baseline)", 3 * n, usage))
        print_tables(idle, live, window)
        print(f"while the gateways ran: {during}")
        print(f"at the end: {load_average()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 gateways, 10 s windows (a smoke run)")
    parser.add_argument("--gateways", type=int, default=0, help="gateways registered (default 10, 2 quick)")
    parser.add_argument("--window", type=float, default=0.0, help="seconds of each CPU window (30, 10 quick)")
    args: Any = parser.parse_args()
    if args.gateways < 0 or args.gateways == 1:
        parser.error("--gateways must be at least 2")
    return run_timed(run, args)


if __name__ == "__main__":
    sys.exit(main())
