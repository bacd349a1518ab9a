"""Benchmark: how long a gateway takes from ``POST /v1/api-gateways`` to phase Started.

Run it from the repository root with ``.venv/bin/python bench/lifecycle.py``. It starts its own
embedded stack (nx-27017, redis-server and a Ray head with Serve's HAProxy ingress, on free ports,
data in a temporary directory) and an in-process control plane (``create_app`` behind a
``TestClient``, reconcilers running), then measures, in the same run:

* imprun: 1 gateway, then ``--gateways`` (default 10) gateways created at once, each with the
  bundle cpu 0.05 / memory 128 MiB / 1 replica, from ``POST`` to phase Started (polled every
  ``--poll`` seconds), and from ``DELETE`` until the gateway is gone (404);
* the baseline: a bare ``serve.run`` of a trivial app with the same resources, and a bare
  ``serve.run_many`` of as many trivial apps as the gateways have environments (3 per gateway),
  blocking until RUNNING; and their bare ``serve.delete``.

It prints one table with the ratios imprun / bare Serve and cleans up everything it started (one
unmeasured warm-up round first, so the cold start of Ray's workers is not charged to either side).
Memory: each replica is ≈140 MB, so 10 gateways (30 replicas) need ≈4.2 GB; on 2 cores this is slow,
which is what it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from ray import serve
from starlette.requests import Request

from imprun.api.app import create_app
from imprun.embedded.mongo import embedded_mongo_url, mongo_service
from imprun.embedded.ray_head import start_ray_head, stop_ray_head
from imprun.embedded.redis import embedded_redis_url, redis_service
from imprun.settings import Settings

CPU = 0.05
MEMORY_MB = 128
BUNDLE = {"tier": "dedicated", "cpu": CPU, "memory": MEMORY_MB, "minReplicas": 1, "maxReplicas": 1}
ENVIRONMENTS_PER_GATEWAY = 3
DEADLINE_SECONDS = 900.0


class Hello:
    """The baseline: the most trivial Serve app there is."""

    async def __call__(self, request: Request) -> str:
        return "hello"


HELLO = serve.deployment(ray_actor_options={"num_cpus": CPU, "memory": MEMORY_MB * 1024 * 1024})(Hello)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], bool], *, what: str, poll: float) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {DEADLINE_SECONDS:.0f} s")
        time.sleep(poll)


# --- the stack ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_stack(data_dir: Path) -> Iterator[Settings]:
    """nx-27017, redis-server and a Ray head on free ports under ``data_dir``; stopped on exit."""
    base = Settings(
        data_dir=data_dir,
        embedded_mongo_port=free_port(),
        embedded_redis_port=free_port(),
        embedded_ray_port=free_port(),
        dashboard_port=free_port(),
        serve_port=free_port(),
        api_port=free_port(),
        log_json=False,
        log_level="WARNING",
    )
    mongo, redis = mongo_service(base), redis_service(base)
    with contextlib.ExitStack() as stack:
        mongo.start(timeout=60)
        stack.callback(mongo.stop)
        redis.start(timeout=30)
        stack.callback(redis.stop)
        head = start_ray_head(base)
        stack.callback(stop_ray_head, base)
        if not head.run_dir.is_relative_to(data_dir):  # Ray's sockets went to a short dir in /tmp
            stack.callback(shutil.rmtree, head.run_dir, ignore_errors=True)
        yield base.model_copy(
            update={
                "mongo_url": embedded_mongo_url(base),
                "redis_url": embedded_redis_url(base),
                "ray_address": head.address,
            }
        )


@dataclass
class ControlPlaneClient:
    client: TestClient
    headers: dict[str, str]
    poll: float

    def create(self, gw: str) -> None:
        body = {"name": f"bench {gw}", "gatewayId": gw, "bundle": BUNDLE}
        response = self.client.post("/v1/api-gateways", json=body, headers=self.headers)
        response.raise_for_status()

    def delete(self, gw: str) -> None:
        self.client.delete(f"/v1/api-gateways/{gw}", headers=self.headers).raise_for_status()

    def phase(self, gw: str) -> str | None:
        response = self.client.get(f"/v1/api-gateways/{gw}", headers=self.headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        phase: str = response.json()["phase"]
        return phase

    def time_until(
        self, gws: list[str], action: Callable[[str], None], done: Callable[[str], bool]
    ) -> list[float]:
        """Apply ``action`` to every gateway, then the seconds each one took until ``done``."""
        started: dict[str, float] = {}
        for gw in gws:
            started[gw] = time.perf_counter()
            action(gw)
        took: dict[str, float] = {}
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(took) < len(gws):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(took)} of {len(gws)} gateways got there")
            for gw in gws:
                if gw not in took and done(gw):
                    took[gw] = time.perf_counter() - started[gw]
            time.sleep(self.poll)
        return [took[gw] for gw in gws]

    def create_until_started(self, gws: list[str]) -> list[float]:
        return self.time_until(gws, self.create, lambda gw: self.phase(gw) == "Started")

    def delete_until_gone(self, gws: list[str]) -> list[float]:
        return self.time_until(gws, self.delete, lambda gw: self.phase(gw) is None)


def login(client: TestClient) -> dict[str, str]:
    credentials = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": "correct-horse-battery"}
    client.post("/v1/auth/register", json=credentials).raise_for_status()
    token = client.post("/v1/auth/login", json=credentials).json()["token"]
    return {"Authorization": f"Bearer {token}"}


# --- the baseline ------------------------------------------------------------------------------------


def bare_serve_run(count: int, *, poll: float) -> tuple[float, float]:
    """Seconds for a bare ``serve.run`` (``run_many`` beyond 1) of ``count`` trivial apps until RUNNING,
    and for deleting them again until Serve no longer lists them."""
    names = [f"bench-{uuid.uuid4().hex[:6]}" for _ in range(count)]
    started = time.perf_counter()
    if count == 1:
        serve.run(HELLO.bind(), name=names[0], route_prefix=f"/{names[0]}")
    else:
        serve.run_many([serve.RunTarget(HELLO.bind(), name=name, route_prefix=f"/{name}") for name in names])
    deployed = time.perf_counter() - started
    started = time.perf_counter()
    for name in names:
        serve.delete(name, _blocking=False)
    wait_for(lambda: not set(names) & set(serve.status().applications), what="bare delete", poll=poll)
    return deployed, time.perf_counter() - started


# --- the run -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: str
    imprun: float
    bare: float

    @property
    def ratio(self) -> float:
        return self.imprun / self.bare


def print_table(rows: list[Row], single_app: float, settings: Settings, gateways: int) -> None:
    print()
    print(
        f"imprun lifecycle benchmark — bundle cpu {CPU} / memory {MEMORY_MB} MiB / 1 replica, "
        f"reconcile interval {settings.reconcile_interval_seconds:g} s, {gateways} gateways at once"
    )
    header = f"{'scenario':<44} {'imprun':>9} {'bare Serve':>11} {'ratio':>7} {'vs 1 app':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.scenario:<44} {row.imprun:>8.2f}s {row.bare:>10.2f}s {row.ratio:>6.1f}x "
            f"{row.imprun / single_app:>8.1f}x"
        )
    print(f"{'bare serve.run, 1 trivial app (baseline)':<44} {'':>9} {single_app:>10.2f}s")
    print()
    print("imprun: POST → phase Started (DELETE → 404), in-process control plane, polled;")
    print("bare Serve: serve.run / serve.run_many of as many trivial apps, blocking until RUNNING")
    print("(serve.delete until unlisted); 'vs 1 app' = imprun / the bare single-app baseline.")


def run(args: argparse.Namespace) -> None:
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # one INFO line per deploy otherwise
    with tempfile.TemporaryDirectory(prefix="imprun-bench-") as tmp, embedded_stack(Path(tmp)) as settings:
        print(f"stack up: mongo {settings.mongo_url}, ray {settings.ray_address}", flush=True)
        with TestClient(create_app(settings)) as client:
            plane = ControlPlaneClient(client, login(client), args.poll)
            print("warm-up (unmeasured)…", flush=True)
            warm = f"warm-{uuid.uuid4().hex[:6]}"
            plane.create_until_started([warm])  # also connects this process to Ray and starts Serve
            plane.delete_until_gone([warm])
            bare_serve_run(1, poll=args.poll)

            print("1 gateway…", flush=True)
            single_app, _ = bare_serve_run(1, poll=args.poll)
            bare_one, bare_one_delete = bare_serve_run(ENVIRONMENTS_PER_GATEWAY, poll=args.poll)
            gw = f"bench-{uuid.uuid4().hex[:6]}"
            [one] = plane.create_until_started([gw])
            [one_delete] = plane.delete_until_gone([gw])

            n = args.gateways
            print(f"{n} gateways at once…", flush=True)
            bare_many, bare_many_delete = bare_serve_run(n * ENVIRONMENTS_PER_GATEWAY, poll=args.poll)
            gws = [f"bench-{uuid.uuid4().hex[:6]}" for _ in range(n)]
            try:
                many = plane.create_until_started(gws)
            finally:
                print("cleaning up…", flush=True)
                many_delete = plane.delete_until_gone([g for g in gws if plane.phase(g) is not None])
        apps = ENVIRONMENTS_PER_GATEWAY
        rows = [
            Row(f"1 gateway ({apps} apps): create → Started", one, bare_one),
            Row(f"{n} gateways ({n * apps} apps): all Started", max(many), bare_many),
            Row("1 gateway: delete → gone", one_delete, bare_one_delete),
            Row(f"{n} gateways: all gone", max(many_delete or [0.0]), bare_many_delete),
        ]
        print_table(rows, single_app, settings, n)
        print(
            f"{n} gateways, each POST → Started: min {min(many):.2f} s, median {statistics.median(many):.2f} s, "
            f"max {max(many):.2f} s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gateways", type=int, default=10, help="gateways created at once (default 10)")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between phase polls (default 0.1)")
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
