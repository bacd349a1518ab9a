"""Benchmark: the first call to a shared-tier environment loaded nowhere, next to a warm call and to
Ray Serve's own scale-from-zero of a bare app, all in one run.

Run it from the repository root: ``.venv/bin/python bench/cold_start.py [--environments N]``. It
starts its own embedded stack (``_stack.platform_stack``, with ``shared_idle_seconds`` set to
``--idle`` so that an environment is evicted soon after its last call) and ``--environments`` (50)
gateways on the shared tier, each with the ``hello`` function published to ``dev`` at ``authType:
none`` (waited for until applied) — none of them called, so none is loaded. Then, one
environment after the other:

1. **first call ever**: the first GET of the function (the shared runtime loads the environment:
   its supervisor, jailed worker, published code), then at once a second GET (**warm**);
2. when the shared runtime reports all of them unloaded again (idle eviction), the same pair once
   more: **first call after eviction**, and warm;
3. the baseline: ``--bare-apps`` (10) bare Serve hello apps on the same head, behind the same HAProxy
   ingress, with autoscaling ``min_replicas: 0`` (so no replica at first), each called once, and
   again once Serve has scaled them back to zero: **Serve's scale-from-zero**.

Before the series, one more environment is called once (the warm-up): the shared replica's first
load since it started also pays for the process's own first connections and imports, and is printed
apart. Each time is from the request until its answer; a call answered with an error is retried every
20 ms and timed until the first 2xx (the errors are counted and printed). It prints p50/p99 of every
series, the ratios, the targets of issue 17, and cleans up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from _measure import Summary, load_average, run_timed
from _stack import (
    CPU,
    MEMORY_MB,
    SHARED_BUNDLE,
    FirstAnswer,
    Stack,
    first_answer,
    new_id,
    platform_stack,
    ray_driver,
    wait_until,
)
from ray import serve
from starlette.requests import Request
from starlette.responses import PlainTextResponse

FUNCTION: Final = "hello"
CODE: Final = 'def main(req):\n    return "hi"\n'
ENV: Final = "dev"
TARGET_P50_MS: Final = 150.0
TARGET_P99_MS: Final = 500.0

FIRST: Final = "shared tier: first call ever (cold load)"
AFTER_EVICTION: Final = "shared tier: first call after idle eviction"
WARM: Final = "shared tier: warm call (the next one)"
BARE: Final = "bare Serve: first request after scale to zero"


class BareHello:
    """The baseline app (defined in ``__main__``: Ray pickles it by value)."""

    async def __call__(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")


SCALE_TO_ZERO: Final = {
    "min_replicas": 0,
    "initial_replicas": 0,
    "max_replicas": 1,
    "upscale_delay_s": 0,
    "downscale_delay_s": 2,
    "downscale_to_zero_delay_s": 2,
    "metrics_interval_s": 0.5,
    "look_back_period_s": 1,
}
BARE_HELLO: Final = serve.deployment(
    name="BareHello",
    ray_actor_options={"num_cpus": CPU, "memory": MEMORY_MB * 1024 * 1024},
    autoscaling_config=SCALE_TO_ZERO,
    logging_config={"enable_access_log": False},
)(BareHello)


@dataclass
class Series:
    label: str
    answers: list[FirstAnswer] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        return Summary.of([1000 * a.seconds for a in self.answers])

    @property
    def refused(self) -> int:
        return sum(a.refused for a in self.answers)


def call_pairs(stack: Stack, gateways: list[str], cold: Series, warm: Series) -> None:
    for gw in gateways:
        path = f"/{gw}/{ENV}/{FUNCTION}"
        cold.answers.append(first_answer(stack.data_plane, path))
        warm.answers.append(first_answer(stack.data_plane, path))


def running_replicas(app: str) -> int:
    status = serve.status().applications.get(app)
    if status is None:
        return 0
    states = status.deployments["BareHello"].replica_states
    return sum(count for state, count in states.items() if str(state).endswith(("RUNNING", "STARTING")))


def all_at_zero(apps: list[str]) -> Callable[[], bool]:
    return lambda: all(running_replicas(app) == 0 for app in apps)


def scale_from_zero(stack: Stack, count: int, rounds: int, series: Series) -> None:
    apps = [f"bench-zero-{i}" for i in range(count)]
    print(f"deploying {count} bare Serve apps at min_replicas 0…", flush=True)
    for app in apps:
        serve.run(BARE_HELLO.bind(), name=app, route_prefix=f"/{app}")
    try:
        for round_ in range(rounds):
            wait_until(all_at_zero(apps), timeout=180, what="bare apps at zero replicas", interval=0.5)
            print(f"  round {round_ + 1}: calling {count} apps at zero replicas…", flush=True)
            for app in apps:
                series.answers.append(first_answer(stack.data_plane, f"/{app}"))
    finally:
        for app in apps:
            serve.delete(app, _blocking=False)
        wait_until(
            lambda: not set(apps) & set(serve.status().applications), timeout=120, what="bare apps deleted"
        )


def print_table(series: list[Series], environments: int, idle: float) -> None:
    bare = series[-1].summary
    warm = next(s for s in series if s.label == WARM).summary
    print()
    print(
        f"cold start — function {FUNCTION!r} on {environments} shared-tier environments "
        f"(shared_idle_seconds {idle:g}), each called once cold and once warm; ms"
    )
    header = (
        f"{'series':<46} {'n':>4} {'errors':>6} {'p50':>8} {'p99':>8} {'max':>8}"
        f" {'p50/bare':>9} {'p99/bare':>9} {'p50/warm':>9}"
    )
    print(header)
    print("-" * len(header))
    for entry in series:
        s = entry.summary
        print(
            f"{entry.label:<46} {s.count:>4} {entry.refused:>6} {s.p50:>8.1f} {s.p99:>8.1f} {s.max:>8.1f}"
            f" {s.p50 / bare.p50:>8.2f}x {s.p99 / bare.p99:>8.2f}x {s.p50 / warm.p50:>8.1f}x"
        )
    print("errors: answers other than 2xx before the first 2xx (each retried after 20 ms, still timed)")
    for entry in series[:2]:
        s = entry.summary
        verdict = "met" if s.p50 <= TARGET_P50_MS and s.p99 <= TARGET_P99_MS else "NOT met"
        print(
            f"target (issue 17) cold p50 ≤ {TARGET_P50_MS:g} ms, p99 ≤ {TARGET_P99_MS:g} ms — "
            f"{entry.label}: p50 {s.p50:.1f} ms, p99 {s.p99:.1f} ms: {verdict}"
        )
    statuses = sorted({status for entry in series for a in entry.answers for status in a.statuses})
    if statuses:
        print(f"statuses of the refused answers: {statuses}")


def run(args: argparse.Namespace) -> None:
    n = args.environments
    print(f"starting the stack… ({load_average()})", flush=True)
    overrides = {"shared_idle_seconds": args.idle, "quota_gateways": n + 1}
    with platform_stack(settings=overrides) as stack:
        warmup, *gateways = [new_id("cold") for _ in range(n + 1)]
        print(f"creating {n} shared-tier gateways, and one more for the warm-up…", flush=True)
        stack.create_gateways([warmup, *gateways], SHARED_BUNDLE)
        stack.wait_started([warmup, *gateways], timeout=900)
        print(f"publishing {FUNCTION!r} to {ENV} of each (authType none)…", flush=True)
        for gw in [warmup, *gateways]:
            stack.publish_open(gw, FUNCTION, CODE, ENV)
        stack.wait_anonymous([warmup, *gateways], ENV, timeout=600)
        # The replica's first load ever also pays once for what the process had not done yet (its
        # first connections, first imports on the load path): timed apart, not in the series.
        first_ever = first_answer(stack.data_plane, f"/{warmup}/{ENV}/{FUNCTION}")
        time.sleep(3)  # the shared runtime reports what it holds every 2 s
        loaded = stack.shared_loaded()
        print(f"loaded before the first calls: {len(loaded)} environment(s)", flush=True)
        first, warm = Series(FIRST), Series(WARM)
        during = load_average()
        call_pairs(stack, gateways, first, warm)
        print(f"waiting for the shared runtime to evict them (idle {args.idle:g} s)…", flush=True)
        keys = {f"{gw}/{ENV}" for gw in gateways}
        # idle past shared_idle_seconds, swept (every 2 s) and the sweep reported (every 2 s)
        evictable = time.monotonic() + args.idle + 4
        wait_until(
            lambda: time.monotonic() > evictable and not stack.shared_loaded() & keys,
            timeout=args.idle + 120,
            what="idle eviction of every environment",
            interval=1,
        )
        evicted = Series(AFTER_EVICTION)
        call_pairs(stack, gateways, evicted, warm)
        bare = Series(BARE)
        with ray_driver(stack):
            scale_from_zero(stack, args.bare_apps, args.rounds, bare)
        print_table([first, evicted, warm, bare], n, args.idle)
        print(
            f"the shared replica's first load since it started (warm-up, not in the series): "
            f"{1000 * first_ever.seconds:.1f} ms"
        )
        for entry in (first, evicted):
            times = [a.seconds for a in entry.answers]
            slowest = max(range(len(times)), key=times.__getitem__)
            print(
                f"{entry.label}: slowest was call {slowest + 1} of {len(times)} ({1000 * times[slowest]:.1f} ms)"
            )
        print(f"loaded before the first calls: {len(loaded)}; while calling: {during}")
        print(f"at the end: {load_average()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--environments", type=int, default=50, help="shared-tier environments (default 50)")
    parser.add_argument("--idle", type=float, default=10.0, help="shared_idle_seconds of the stack (10)")
    parser.add_argument("--bare-apps", type=int, default=10, help="bare Serve apps at min_replicas 0 (10)")
    parser.add_argument("--rounds", type=int, default=2, help="scale-from-zero rounds of the bare apps (2)")
    args = parser.parse_args()
    if min(args.environments, args.bare_apps, args.rounds) < 1 or args.idle <= 0:
        parser.error("--environments, --bare-apps and --rounds must be positive, --idle above 0")
    return run_timed(run, args)


if __name__ == "__main__":
    sys.exit(main())
