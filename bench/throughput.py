"""Benchmark: requests per second and latency of a function through imprun's whole data path.

Run it from the repository root::

    .venv/bin/python bench/throughput.py [--quick]                      # the hello function
    .venv/bin/python bench/throughput.py --function find_one [--quick]  # one imp.db() find_one

It starts its own embedded stack (``_stack.platform_stack``: nx-27017, redis-server, a Ray head with
Serve's HAProxy ingress, the control plane in its own process), one gateway on the dedicated tier
whose environments have one replica each (cpu 0.05 / 256 MiB, the default jailed worker pool), and
one gateway on the shared tier (its environments loaded on demand into the platform's shared runtime,
with the shared tier's worker pool). The function is published to ``dev`` of both with ``authType:
none``. Then, at concurrency 1, 16 and 64 (closed loop: each of that
many keep-alive connections sends the next request when the previous answer is in; ``_loadgen.py``,
in its own process) for 10 s each (3 s with ``--quick``) after a short unmeasured warm-up, it
measures req/s and p50/p99 latency of, in turn:

* imprun: HAProxy → the environment's replica (supervisor) → a jailed worker running the function;
* imprun's shared tier: HAProxy → a shared-runtime replica (the environment's supervisor, loaded
  there) → the environment's jailed worker; its ratio to the dedicated tier is printed (target ≥ 0.9);
* imprun with key-auth on, when the control plane has ``/v1/applications``: the same version
  promoted to ``staging`` (which keeps ``key-auth``), called with a grant's key in ``apikey``;
* a bare Serve deployment doing the same work, with the same resources, on the same Ray head behind
  the same HAProxy ingress (the baseline the ratio is taken against, target ≥ 0.75);
* the same bare deployment with imprun's replica setting (``REPLICA_ENV_VARS``: Serve runs the code on
  the replica's main loop instead of a second thread), to show what that setting alone is worth;
* a plain FastAPI app doing the same work on uvicorn in its own process (no Ray at all).

Work: ``hello`` answers ``hi``; ``find_one`` answers ``imp.db().collection("items").find_one({"_id":
"x"})`` — in the baselines a pymongo ``find_one`` on the same nx-27017 collection (in a thread, so
the event loop keeps serving). It prints one table with the ratios and the load average, and cleans
up everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from _loadgen import LoadResult, run_load
from _measure import load_average, run_timed
from _stack import (
    BUNDLE,
    CPU,
    MEMORY_MB,
    SHARED_BUNDLE,
    Stack,
    free_port,
    new_id,
    platform_stack,
    ray_driver,
    wait_until,
)
from pymongo import MongoClient
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from imprun.drivers.cluster import REPLICA_ENV_VARS
from runtime_actors.shared.names import gateway_database_name

BARE_APP: Final = "bench-bare"
BARE_MAIN_LOOP_APP: Final = "bench-bare-main-loop"
LEVELS: Final = (1, 16, 64)
TARGET_RATIO: Final = 0.75
TARGET_SHARED_RATIO: Final = 0.9
KEY_TIMEOUT_S: Final = 30.0

IMPRUN: Final = "imprun (HAProxy → supervisor → jailed worker)"
IMPRUN_SHARED: Final = "imprun shared tier (→ shared runtime → worker)"
IMPRUN_KEY: Final = "imprun, key-auth on (apikey header)"
BARE: Final = "bare Serve deployment, same HAProxy ingress"
BARE_MAIN_LOOP: Final = "bare Serve, user code on the main loop too"
FASTAPI: Final = "FastAPI on uvicorn, own process (no Ray)"

HELLO_CODE: Final = 'def main(req):\n    return "hi"\n'
FIND_ONE_CODE: Final = (
    'import imp\n\n\ndef main(req):\n    return imp.db().collection("items").find_one({"_id": "x"})\n'
)
ITEM: Final = {"_id": "x", "name": "benchmark item", "price": 42}

Document = dict[str, Any]


# --- the bare Serve baselines (defined here: Ray pickles classes of __main__ by value) -------------------


class BareHello:
    async def __call__(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")


class BareFindOne:
    def __init__(self, mongo_url: str, database: str) -> None:
        self._items = MongoClient[Document](mongo_url, maxPoolSize=4)[database]["items"]

    async def __call__(self, request: Request) -> JSONResponse:
        document = await asyncio.to_thread(self._items.find_one, {"_id": "x"})
        return JSONResponse(document, status_code=200 if document else 404)


def bare_deployment(cls: type, *, main_loop: bool = False) -> Any:
    """``cls`` as a Serve deployment with the resources of an imprun replica and no access log; with
    ``main_loop``, also with imprun's replica environment (Serve runs the code on its main loop)."""
    options: dict[str, Any] = {"num_cpus": CPU, "memory": MEMORY_MB * 1024 * 1024}
    if main_loop:
        options["runtime_env"] = {"env_vars": dict(REPLICA_ENV_VARS)}
    return serve.deployment(
        name="Bare", ray_actor_options=options, logging_config={"enable_access_log": False}
    )(cls)


# --- workloads -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    code: str
    fastapi_path: str
    expected: Callable[[httpx.Response], bool]

    def bare_app(self, stack: Stack, database: str, *, main_loop: bool = False) -> Any:
        if self.name == "hello":
            return bare_deployment(BareHello, main_loop=main_loop).bind()
        return bare_deployment(BareFindOne, main_loop=main_loop).bind(stack.settings.mongo_url, database)


def says_hi(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.text.strip('"') == "hi"


def has_item(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("_id") == "x"


WORKLOADS: Final = {
    "hello": Workload("hello", HELLO_CODE, "/hello", says_hi),
    "find_one": Workload("find_one", FIND_ONE_CODE, "/find_one", has_item),
}


@dataclass(frozen=True)
class Target:
    label: str
    port: int
    path: str
    headers: dict[str, str] | None = None


# --- the FastAPI baseline ------------------------------------------------------------------------------


@contextlib.contextmanager
def fastapi_server(workload: Workload, mongo_url: str, database: str) -> Iterator[int]:
    """``_fastapi_app.py`` on a free port, until it answers; stopped on exit."""
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("_fastapi_app.py")), "--port", str(port)]
    if workload.name == "find_one":
        command += ["--mongo-url", mongo_url, "--database", database]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:

            def answers() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the FastAPI baseline exited with {process.returncode}")
                try:
                    return workload.expected(httpx.get(f"http://127.0.0.1:{port}{workload.fastapi_path}"))
                except httpx.HTTPError:
                    return False

            wait_until(answers, timeout=60, what="the FastAPI baseline answering")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# --- the run -------------------------------------------------------------------------------------------


def prepare_function(stack: Stack, workload: Workload, gw: str, bundle: Mapping[str, Any] = BUNDLE) -> None:
    stack.create_gateways([gw], bundle)
    stack.wait_started([gw], timeout=300)
    stack.open_environment(gw, "dev")
    stack.create_function(gw, workload.name, workload.code)
    stack.publish(gw, workload.name, "dev")
    stack.wait_served(f"/{gw}/dev/{workload.name}", workload.expected, timeout=120)


def key_auth_target(stack: Stack, workload: Workload, gw: str) -> tuple[Target | None, str]:
    """The key-auth target (``staging`` with a grant's key), or None and why it is skipped."""
    if not stack.applications_api():
        return None, "key-auth line skipped: this control plane has no /v1/applications API yet"
    path = f"/{gw}/staging/{workload.name}"
    try:
        stack.deploy_to_stage(gw, workload.name, "staging")
        without_key = stack.wait_served(path, lambda r: r.status_code in (401, 200), timeout=60)
        if without_key.status_code != 401:
            return None, f"key-auth line skipped: {path} answered {without_key.status_code} without a key"
        application_id, key = stack.issue_key(gw, "staging")
    except (RuntimeError, TimeoutError) as exc:
        return None, f"key-auth line skipped: setting it up failed: {exc}"
    headers = {"apikey": key}
    try:
        stack.wait_served(path, workload.expected, timeout=KEY_TIMEOUT_S, headers=headers)
    except TimeoutError as exc:
        grants = [(g.get("status"), g.get("applied")) for g in stack.grants(application_id)]
        return None, (
            f"key-auth line skipped: {path} still refuses the grant's key {KEY_TIMEOUT_S:g} s after it was "
            f"issued (grant status/applied: {grants}): {exc}"
        )
    target = Target(IMPRUN_KEY, stack.settings.serve_port, path, headers)
    return target, "key-auth line: staging keeps authType key-auth; 401 without a key, 200 with the grant's"


def print_table(
    workload: Workload,
    results: dict[tuple[str, int], LoadResult],
    labels: list[str],
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"throughput — function {workload.name!r}, closed loop, {args.duration:g} s per level "
        f"(+{args.warmup:g} s warm-up), 1 replica (cpu {CPU} / {MEMORY_MB} MiB) for imprun and bare Serve"
    )
    header = (
        f"{'target':<46} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'vs bare':>8}"
    )
    print(header)
    print("-" * len(header))
    for level in args.levels:
        bare = results.get((BARE, level))
        for label in labels:
            result = results.get((label, level))
            if result is None:
                continue
            ratio = result.requests_per_second / bare.requests_per_second if bare and bare.requests else 0.0
            print(
                f"{label:<46} {level:>4} {result.requests_per_second:>8.0f} {result.p50_ms:>8.2f}"
                f" {result.p99_ms:>8.2f} {result.errors:>6} {ratio:>7.2f}x"
            )
        print()
    for baseline, measured, title in (
        (BARE, IMPRUN, f"ratio to bare Serve (req/s, target ≥ {TARGET_RATIO})"),
        (
            BARE_MAIN_LOOP,
            IMPRUN,
            "ratio to bare Serve with imprun's replica setting (user code on the main loop)",
        ),
        (
            IMPRUN,
            IMPRUN_SHARED,
            f"shared tier / dedicated tier (req/s, target ≥ {TARGET_SHARED_RATIO} at c=16)",
        ),
    ):
        ratios = []
        for level in args.levels:
            base, mine = results.get((baseline, level)), results.get((measured, level))
            if base and mine and base.requests:
                ratios.append(f"c={level}: {mine.requests_per_second / base.requests_per_second:.2f}")
        print(f"{title}: " + ", ".join(ratios))


def run(args: argparse.Namespace) -> None:
    workload = WORKLOADS[args.function]
    print(f"starting the stack… ({load_average()})", flush=True)
    with platform_stack() as stack:
        gw, shared_gw = new_id("tp"), new_id("tp-shared")
        database = gateway_database_name(gw)
        assert stack.settings.mongo_url
        with MongoClient[Document](stack.settings.mongo_url) as mongo:
            for name in (database, gateway_database_name(shared_gw)):
                mongo[name]["items"].replace_one({"_id": "x"}, ITEM, upsert=True)
        prepare_function(stack, workload, gw)
        prepare_function(stack, workload, shared_gw, SHARED_BUNDLE)
        serve_port = stack.settings.serve_port
        targets = [
            Target(IMPRUN, serve_port, f"/{gw}/dev/{workload.name}"),
            Target(IMPRUN_SHARED, serve_port, f"/{shared_gw}/dev/{workload.name}"),
        ]
        keyed, note = key_auth_target(stack, workload, gw)
        if keyed is not None:
            targets.append(keyed)
        with ray_driver(stack), fastapi_server(workload, stack.settings.mongo_url, database) as fastapi_port:
            serve.run(workload.bare_app(stack, database), name=BARE_APP, route_prefix=f"/{BARE_APP}")
            serve.run(
                workload.bare_app(stack, database, main_loop=True),
                name=BARE_MAIN_LOOP_APP,
                route_prefix=f"/{BARE_MAIN_LOOP_APP}",
            )
            try:
                stack.wait_served(f"/{BARE_APP}", workload.expected, timeout=60)
                stack.wait_served(f"/{BARE_MAIN_LOOP_APP}", workload.expected, timeout=60)
                targets += [
                    Target(BARE, serve_port, f"/{BARE_APP}"),
                    Target(BARE_MAIN_LOOP, serve_port, f"/{BARE_MAIN_LOOP_APP}"),
                    Target(FASTAPI, fastapi_port, workload.fastapi_path),
                ]
                print(f"warm-up, then {len(args.levels)} levels x {len(targets)} targets…", flush=True)
                if not args.quick:  # a smoke run makes do with each run's own warm-up
                    for target in targets:
                        run_load(
                            target.port,
                            target.path,
                            concurrency=16,
                            duration=1.0,
                            warmup=1.0,
                            headers=target.headers,
                        )
                started_load = load_average()
                results: dict[tuple[str, int], LoadResult] = {}
                for level in args.levels:  # interleaved, so noise of the machine hits every target alike
                    for target in targets:
                        results[(target.label, level)] = run_load(
                            target.port,
                            target.path,
                            concurrency=level,
                            duration=args.duration,
                            warmup=args.warmup,
                            headers=target.headers,
                        )
            finally:
                serve.delete(BARE_APP)
                serve.delete(BARE_MAIN_LOOP_APP)
        print_table(workload, results, [t.label for t in targets], args)
        print(note)
        print(
            f"worker pool: {stack.settings.worker_pool_size} jailed workers per dedicated replica, "
            f"{stack.settings.shared_worker_pool_size} per environment on the shared tier, growing to "
            f"{stack.settings.shared_worker_pool_max} while calls wait (the defaults)"
        )
        print(f"before the load: {started_load}")
        print(f"after the load:  {load_average()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--function", choices=sorted(WORKLOADS), default="hello", help="the work (default hello)"
    )
    parser.add_argument("--quick", action="store_true", help="3 s per level (a smoke run)")
    parser.add_argument("--duration", type=float, default=0.0, help="measured seconds per level (default 10)")
    parser.add_argument(
        "--levels",
        type=lambda text: [int(c) for c in text.split(",")],
        default=LEVELS,
        help=f"comma-separated concurrency levels (default {','.join(map(str, LEVELS))})",
    )
    args = parser.parse_args()
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = 0.5 if args.quick else 1.0
    return run_timed(run, args)


if __name__ == "__main__":
    sys.exit(main())
