"""Benchmark: how long a published version takes to go live on the data plane.

Run it from the repository root: ``.venv/bin/python bench/publish_to_live.py [--quick] [--tier shared]``. It starts
its own embedded stack (``_stack.platform_stack``: nx-27017, redis-server, a Ray head with Serve's
HAProxy ingress, the control plane in its own process), creates one gateway (one replica per
environment) with a function whose answer names its version (``{"v": n}``), and then, ``--publishes``
times (200; 50 with ``--quick``), after a few unmeasured rounds:

1. the baseline: inserts a document into a test collection of nx-27017 and polls a change stream
   on it with ``try_next`` in a tight loop until the insert's event arrives (insert acknowledged →
   event received) — the floor any change-stream-driven reload sits on;
2. changes the function's draft (unmeasured), publishes it to ``dev`` and GETs
   ``/<gw>/dev/<fn>`` back to back through HAProxy until an answer carries the new version
   (publish response received → first response with the new version);
3. promotes that version with ``deploy-to-stage`` to ``staging`` and polls ``/<gw>/staging/<fn>`` the
   same way.

The three are interleaved, so machine noise hits them alike. It prints p50/p90/p99/max of each, the
ratios of the platform's latencies to the baseline's, the API calls' own durations and the data
plane's poll round trip (the resolution of the measurement), with the load average.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from _measure import Summary, load_average
from _stack import (
    BUNDLE,
    SHARED_BUNDLE,
    Stack,
    carries,
    new_id,
    platform_stack,
    poll_until_live,
    versioned_code,
)
from pymongo import MongoClient
from pymongo.collection import Collection

FUNCTION: Final = "live"
WARMUP_ROUNDS: Final = 5
SAMPLE_TIMEOUT_S: Final = 30.0
BASELINE_TIMEOUT_S: Final = 5.0

Document = dict[str, Any]


@dataclass
class Series:
    """Samples in seconds, and how many rounds produced none (timed out)."""

    samples: list[float] = field(default_factory=list)
    missed: int = 0

    def add(self, seconds: float | None) -> None:
        if seconds is None:
            self.missed += 1
        else:
            self.samples.append(seconds)


@dataclass
class Results:
    change_event: Series = field(default_factory=Series)
    publish_live: Series = field(default_factory=Series)
    deploy_live: Series = field(default_factory=Series)
    publish_call: Series = field(default_factory=Series)
    deploy_call: Series = field(default_factory=Series)
    polls: int = 0
    polling_seconds: float = 0.0


def change_event_latency(collection: Collection[Document], stream: Any, marker: int) -> float | None:
    """Insert one document, then ``try_next`` until its event: seconds from the acknowledgement."""
    key = f"event-{marker}"  # a string: nx-27017 reports documentKey ids as strings
    collection.insert_one({"_id": key})
    acknowledged = time.perf_counter()
    while time.perf_counter() - acknowledged < BASELINE_TIMEOUT_S:
        change = stream.try_next()
        if (
            change is not None
            and (change.get("fullDocument") or change.get("documentKey") or {}).get("_id") == key
        ):
            return time.perf_counter() - acknowledged
    return None


def timed_call(call: Callable[[], object]) -> tuple[float, float]:
    """Run ``call``; how long it took, and the moment its response arrived."""
    started = time.perf_counter()
    call()
    answered = time.perf_counter()
    return answered - started, answered


def one_round(
    stack: Stack, gw: str, marker: int, collection: Collection[Document], stream: Any, results: Results
) -> None:
    results.change_event.add(change_event_latency(collection, stream, marker))
    stack.update_function(gw, FUNCTION, versioned_code(marker))
    for env, action, call_series, live_series in (
        ("dev", lambda: stack.publish(gw, FUNCTION, "dev"), results.publish_call, results.publish_live),
        (
            "staging",
            lambda: stack.deploy_to_stage(gw, FUNCTION, "staging"),
            results.deploy_call,
            results.deploy_live,
        ),
    ):
        took, answered = timed_call(action)
        call_series.add(took)
        live = poll_until_live(
            stack.data_plane, f"/{gw}/{env}/{FUNCTION}", marker, since=answered, timeout=SAMPLE_TIMEOUT_S
        )
        live_series.add(live.seconds if live else None)
        if live is not None:
            results.polls += live.polls
            results.polling_seconds += live.seconds


def print_table(results: Results, rounds: int, deadline_hit: bool, tier: str) -> None:
    baseline = Summary.of(results.change_event.samples)
    rows: list[tuple[str, Series, bool]] = [
        ("nx-27017 insert → change event (baseline)", results.change_event, True),
        ("publish (dev) → first response with it", results.publish_live, True),
        ("deploy-to-stage (→ staging) → first response", results.deploy_live, True),
        ("publish API call (request → response)", results.publish_call, False),
        ("deploy-to-stage API call", results.deploy_call, False),
    ]
    print()
    shape = "1 replica per environment" if tier == "dedicated" else "loaded in the shared runtime"
    print(f"publish → live — {rounds} rounds, 1 gateway, tier {tier} ({shape}); {load_average()}")
    header = (
        f"{'measurement (ms)':<46} {'n':>4} {'miss':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
        f" {'p50/base':>9} {'p99/base':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, series, compare in rows:
        if not series.samples:
            print(f"{label:<46} {0:>4} {series.missed:>4}   (no samples)")
            continue
        s = Summary.of(series.samples)
        ratios = f" {s.p50 / baseline.p50:>8.1f}x {s.p99 / baseline.p99:>8.1f}x" if compare else ""
        print(
            f"{label:<46} {s.count:>4} {series.missed:>4} {1000 * s.p50:>7.2f} {1000 * s.p90:>7.2f}"
            f" {1000 * s.p99:>7.2f} {1000 * s.max:>7.2f}{ratios}"
        )
    if results.polls:
        print(
            f"data-plane poll round trip (resolution of the live measurements): "
            f"{1000 * results.polling_seconds / results.polls:.2f} ms on average, "
            f"{results.polls / max(1, len(results.publish_live.samples) + len(results.deploy_live.samples)):.1f}"
            " polls per sample"
        )
    if deadline_hit:
        print("note: the run hit its time limit before all rounds were done")
    print(
        "ratios = platform latency / the baseline's at the same percentile; miss = no answer with the "
        f"new version within {SAMPLE_TIMEOUT_S:g} s"
    )


def run(args: argparse.Namespace) -> None:
    rounds = args.publishes or (50 if args.quick else 200)
    budget = 30.0 if args.quick else 200.0  # seconds of measuring at most
    print(f"starting the stack… ({load_average()})", flush=True)
    with platform_stack() as stack:
        gw = new_id("live")
        stack.create_gateways([gw], BUNDLE if args.tier == "dedicated" else SHARED_BUNDLE)
        stack.wait_started([gw], timeout=300)
        for env in ("dev", "staging"):
            stack.open_environment(gw, env)
        stack.create_function(gw, FUNCTION, versioned_code(0))
        stack.publish(gw, FUNCTION, "dev")
        stack.wait_served(f"/{gw}/dev/{FUNCTION}", lambda r: carries(r, 0), timeout=120)
        assert stack.settings.mongo_url
        mongo: MongoClient[Document] = MongoClient(stack.settings.mongo_url)
        try:
            collection = mongo["bench_change_stream"]["events"]
            collection.drop()
            with collection.watch() as stream:
                print(f"warm-up ({WARMUP_ROUNDS} unmeasured rounds)…", flush=True)
                for marker in range(1, WARMUP_ROUNDS + 1):
                    one_round(stack, gw, marker, collection, stream, Results())
                print(f"measuring {rounds} rounds…", flush=True)
                results = Results()
                deadline = time.monotonic() + budget
                done = 0
                while done < rounds and time.monotonic() < deadline:
                    one_round(stack, gw, WARMUP_ROUNDS + 1 + done, collection, stream, results)
                    done += 1
            print_table(results, done, deadline_hit=done < rounds, tier=args.tier)
        finally:
            mongo.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="50 rounds (a smoke run)")
    parser.add_argument("--publishes", type=int, default=0, help="rounds to measure (default 200, 50 quick)")
    parser.add_argument(
        "--tier", choices=("dedicated", "shared"), default="dedicated", help="the gateway's tier (dedicated)"
    )
    started = time.monotonic()
    run(parser.parse_args())
    print(f"the run took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
