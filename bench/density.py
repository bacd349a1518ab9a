"""Benchmark: how many gateways created with defaults one machine holds, what they cost idle, and how
ten of them answer under load while the rest stay idle.

Run it from the repository root: ``.venv/bin/python bench/density.py [--gateways N] [--idle-seconds S]
[--set NAME=VALUE …]``. It starts its own embedded stack (``_stack.platform_stack``, defaults but for
the per-user gateway quota, raised to ``--gateways``, and any ``--set``) and:

1. measures the platform with no gateway, idle (the baseline): CPU over ``--idle-seconds`` (60), the
   resident memory of its processes, the machine's used memory;
2. creates ``--gateways`` (100) gateways with no bundle (the platform's default tier: shared) and
   times from the first ``POST`` until all are ``Started``;
3. gives each one function (``hello``) published to ``dev`` at ``authType: none``, waits until the
   environment reconciler has applied that to every one (asynchronous: it writes the settings
   replicas read when it applies the environment's route), and calls each once (the first call loads the environment into the
   shared runtime; an error is retried every 20 ms, counted, and the call timed until its first 2xx);
4. measures the platform again with all of them idle, as in 1, twice: just after their first calls
   (the environments still loaded), then once the shared runtime has unloaded them all
   (``IMPRUN_SHARED_IDLE_SECONDS``, 120 s by default, after the last call: the steady state of idle
   gateways, which the targets are checked against);
5. puts ``--loaded`` (10) gateways under closed-loop load, ``--concurrency`` (16) connections in all
   spread over them (``_loadgen.py``), for ``--duration`` (20) s while the others stay idle.

Platform processes (``_measure.PlatformProcesses``): nx-27017, redis-server, the control plane and
everything below them, and every process of this run's Ray head (GCS, raylet, dashboard, Serve
controller, HAProxy, the shared runtime's replicas, the reload hub, the AI gateway) and below them
(jailed workers). RSS sums count pages shared between processes in each; PSS counts them once. The
machine's used memory (``MemTotal - MemAvailable``) includes whatever else runs on the machine. It
prints every figure next to the targets of issue 17 and cleans up.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Final

from _loadgen import run_load
from _measure import (
    GIB,
    RAY_SYSTEM,
    RELOAD_HUB,
    REPLICAS,
    CpuUsage,
    Summary,
    load_average,
    machine_used_bytes,
    measure_idle,
    run_timed,
)
from _stack import CONTROL_PLANE, MONGO, REDIS, first_answer, new_id, platform_stack, wait_until

FUNCTION: Final = "hello"
CODE: Final = 'def main(req):\n    return "hi"\n'
ENV: Final = "dev"
GROUPS: Final = (MONGO, REDIS, CONTROL_PLANE, RAY_SYSTEM, RELOAD_HUB, REPLICAS)
TARGET_MEMORY_GIB: Final = 4.0
TARGET_CPU_PERCENT: Final = 20.0
SETTLE_S: Final = 10.0


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_idle(label: str, usage: CpuUsage, machine: int) -> tuple[float, float]:
    """One idle state's figures; returns (RSS GiB, CPU %)."""
    rss = usage.end.rss_by_group()
    total = sum(rss.values()) / GIB
    pss = usage.end.pss_bytes() / GIB
    print(
        f"{label}: CPU {usage.total_percent:.1f} % of one core over {usage.seconds:.0f} s, "
        f"RSS {total:.2f} GiB (PSS {pss:.2f} GiB) in {sum(usage.processes.values())} processes, "
        f"machine used {machine / GIB:.2f} GiB"
    )
    for group in GROUPS:
        print(
            f"    {group:<28} CPU {usage.percent(group):>5.1f} %   RSS {rss.get(group, 0) / GIB:>6.2f} GiB"
            f"   {usage.processes.get(group, 0):>4} processes"
        )
    return total, usage.total_percent


def run(args: argparse.Namespace) -> None:
    n = args.gateways
    print(f"starting the stack… ({load_average()})", flush=True)
    if args.settings:
        print(f"settings other than the defaults: {args.settings}", flush=True)
    with platform_stack(settings={**args.settings, "quota_gateways": n}) as stack:
        processes = stack.platform_processes()
        empty = measure_idle(processes, settle=SETTLE_S, window=args.idle_seconds, what="no gateways")
        empty_machine = machine_used_bytes()

        gateways = [new_id("dense") for _ in range(n)]
        print(f"creating {n} gateways with defaults (no bundle)…", flush=True)
        started = time.perf_counter()
        stack.create_gateways(gateways, bundle=None)
        posted = time.perf_counter() - started
        stack.wait_started(gateways, timeout=args.timeout)
        all_started = time.perf_counter() - started
        tiers = {stack.api.get(f"/v1/api-gateways/{gw}").json()["bundle"]["tier"] for gw in gateways}

        print(f"publishing {FUNCTION!r} to {ENV} of each (authType none)…", flush=True)
        started = time.perf_counter()
        for gw in gateways:
            stack.publish_open(gw, FUNCTION, CODE, ENV)
        published = time.perf_counter() - started
        stack.wait_anonymous(gateways, ENV, timeout=args.timeout)
        anonymous = time.perf_counter() - started
        print("first call to each…", flush=True)
        firsts = [first_answer(stack.data_plane, f"/{gw}/{ENV}/{FUNCTION}") for gw in gateways]
        loaded = len(stack.shared_loaded())

        called = measure_idle(
            processes, settle=SETTLE_S, window=args.idle_seconds, what=f"{n} gateways just called"
        )
        called_machine = machine_used_bytes()
        loaded_idle = len(stack.shared_loaded())
        print("waiting until the shared runtime has unloaded every environment…", flush=True)
        unload_started = time.perf_counter()
        wait_until(
            lambda: not stack.shared_loaded(),
            timeout=stack.settings.shared_idle_seconds + 300,
            what="idle unloading of every environment",
            interval=1,
        )
        unloaded_after = time.perf_counter() - unload_started
        idle = measure_idle(
            processes, settle=SETTLE_S, window=args.idle_seconds, what=f"{n} gateways unloaded"
        )
        idle_machine = machine_used_bytes()

        busy = gateways[: args.loaded]
        print(f"{len(busy)} gateways under load (c={args.concurrency}), {n - len(busy)} idle…", flush=True)
        before = load_average()
        load = run_load(
            stack.settings.serve_port,
            [f"/{gw}/{ENV}/{FUNCTION}" for gw in busy],
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=2.0,
        )
        after = load_average()

        print()
        print(
            f"density — {n} gateways created with defaults (tier {', '.join(sorted(tiers))}), one function each"
        )
        print(
            f"create: {n} POSTs took {posted:.1f} s; all {n} Started {all_started:.1f} s after the first "
            f"POST (target: all Started: met)"
        )
        first = Summary.of([1000 * a.seconds for a in firsts])
        refused = sum(a.refused for a in firsts)
        statuses = sorted({s for a in firsts for s in a.statuses})
        print(
            f"publish + authType none for all: {published:.1f} s (API), authType none applied to all "
            f"{anonymous:.1f} s after the first publish; first call: {first.count}/{n} answered 2xx, "
            f"p50 {first.p50:.1f} ms, p99 {first.p99:.1f} ms, max {first.max:.1f} ms; "
            f"{refused} error answer(s) before them{f' {statuses}' if statuses else ''} (target: all answering: "
            f"{verdict(first.count == n)})"
        )
        print(
            f"environments loaded in the shared runtime: {loaded} after the first calls, {loaded_idle} at the "
            f"end of the first idle window, none {unloaded_after:.0f} s later"
        )
        print()
        empty_rss, empty_cpu = print_idle("platform, no gateways (baseline)", empty, empty_machine)
        print_idle(
            f"platform, {n} gateways idle just after their first calls (loaded)", called, called_machine
        )
        rss, cpu = print_idle(f"platform, {n} gateways idle and unloaded (steady state)", idle, idle_machine)
        print(
            f"idle with {n} gateways vs none: RSS {rss / empty_rss:.2f}x (+{rss - empty_rss:.2f} GiB), "
            f"CPU {cpu - empty_cpu:+.1f} points, machine used +{(idle_machine - empty_machine) / GIB:.2f} GiB"
        )
        print(
            f"target: idle platform ≤ {TARGET_MEMORY_GIB:g} GiB: {rss:.2f} GiB RSS, "
            f"{idle.end.pss_bytes() / GIB:.2f} GiB PSS: {verdict(rss <= TARGET_MEMORY_GIB)}; "
            f"≤ {TARGET_CPU_PERCENT:g} % of one core: {cpu:.1f} %: {verdict(cpu <= TARGET_CPU_PERCENT)}"
        )
        print()
        print(
            f"mixed: {len(busy)} gateways under load, c={args.concurrency} in all, {args.duration:g} s, "
            f"{n - len(busy)} idle: {load.requests_per_second:.0f} req/s, p50 {load.p50_ms:.2f} ms, "
            f"p99 {load.p99_ms:.2f} ms, {load.errors} errors (target 0 errors: {verdict(load.errors == 0)})"
        )
        print(f"before the load: {before}")
        print(f"after the load:  {after}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gateways", type=int, default=100, help="gateways created (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle CPU window (default 60)")
    parser.add_argument("--loaded", type=int, default=10, help="gateways under load (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections in all (default 16)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (default 20)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="for all Started (default 1200 s)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the stack other than its default (a Settings field, e.g. reconcile_resync_seconds=60)",
    )
    args = parser.parse_args()
    try:
        args.settings = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        parser.error("--set takes NAME=VALUE")
    if args.gateways < 1 or not 1 <= args.loaded <= args.gateways or args.idle_seconds <= 0:
        parser.error("--gateways must be positive, --loaded 1..gateways, --idle-seconds above 0")
    return run_timed(run, args)


if __name__ == "__main__":
    sys.exit(main())
