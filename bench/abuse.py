"""Benchmark: what one abusive client costs everyone else — a registration burst and a ReDoS pattern.

Run it from the repository root: ``.venv/bin/python bench/abuse.py [--registrations 200]``. No Ray.

1. **Registration burst.** Starts nx-27017, redis-server and the control plane as its own process
   (uvicorn serving ``imprun.api.app:app_from_env``, no data plane), trusting loopback as a proxy so
   each registration can come from a client address of its own (``X-Forwarded-For``). It measures
   another user's ``POST /v1/auth/login`` and ``GET /v1/api-gateways`` latencies while idle (the
   baseline), then sends ``--registrations`` registrations at once and, during the burst, samples
   the control plane's resident memory and the same two requests. It does this twice, in the same
   run, each with a fresh control plane: with ``IMPRUN_PASSWORD_HASH_CONCURRENCY`` at its default
   (4: 2 slots for registrations, 2 for sign-ins), and at 80 (40 registrations hashing at once, as
   the request pool of 40 threads did before the bound).
2. **ReDoS.** Serves the AI gateway's HTTP app (``AiGatewayHttp`` with the real ``McpEndpoint``; a
   stand-in tool catalog and runtime) under uvicorn, registers a tool whose schema says
   ``"pattern": "^(a+)+$"``, and measures another key's ``tools/list`` latency while idle and while
   an attacker keeps calling the tool with 34 ``a``s and a ``!`` — which Python's ``re`` would take
   hours to reject (the run measures how long ``re`` takes for 18 to 24 ``a``s, the in-run baseline).

3. **Debug runs** (``--debug-runs 40``; starts a Ray head with ``_stack.platform_stack``). One user
   sends that many debug runs at once of a function that spins until its 10 s timeout; another
   user's ``GET /v1/api-gateways`` is timed while idle and during the runs.

It prints p50/p99 (ms), ratios to the idle baselines, peak memory and the outcomes of the burst.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import uvicorn
from _measure import Summary, load_average
from _stack import free_port, wait_until

from imprun.ai.catalog import KeyView
from imprun.ai.chat import ChatService
from imprun.ai.dispatch import Caller, ToolOutcome
from imprun.ai.http_app import AiGatewayHttp
from imprun.ai.mcp_server import McpEndpoint
from imprun.ai.tools import Tool
from imprun.embedded.mongo import embedded_mongo_url, mongo_service
from imprun.embedded.process import ServiceProcess
from imprun.embedded.redis import embedded_redis_url, redis_service
from imprun.settings import Settings

PASSWORD: Final = secrets.token_urlsafe(18)
PROBES: Final = 30
REDOS_PATTERN: Final = "^(a+)+$"
MCP_HEADERS: Final = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


# --- 1. the registration burst -------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def control_plane(settings: Settings, concurrency: int) -> Iterator[tuple[str, int]]:
    """The control plane in its own process; yields its URL and pid."""
    assert settings.mongo_url and settings.redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPRUN_")}
    env.update(
        {
            "IMPRUN_MONGO_URL": settings.mongo_url,
            "IMPRUN_REDIS_URL": settings.redis_url,
            "IMPRUN_DATA_DIR": str(settings.data_dir),
            "IMPRUN_SYS_DB_NAME": f"abuse_{concurrency}_{time.monotonic_ns()}",
            "IMPRUN_TRUSTED_PROXIES": '["127.0.0.1"]',
            "IMPRUN_PASSWORD_HASH_CONCURRENCY": str(concurrency),
            "IMPRUN_AI_GATEWAY": "false",
            "IMPRUN_LOG_LEVEL": "WARNING",
            "IMPRUN_LOG_JSON": "false",
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    service = ServiceProcess(
        name=f"control-plane-{concurrency}",
        command=[
            sys.executable, "-m", "uvicorn", "--factory", "imprun.api.app:app_from_env",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--no-proxy-headers",
        ],
        host="127.0.0.1",
        port=port,
        run_dir=settings.data_dir / "run",
        ready=ready,
        env=env,
    )  # fmt: skip
    service.start(timeout=60)
    try:
        pid = service.recorded_pid()
        assert pid is not None
        yield url, pid
    finally:
        service.stop()


def other_user(url: str) -> tuple[httpx.Client, Callable[[], float], Callable[[], float]]:
    """A user who is not part of the burst, and two timed requests of theirs."""
    client = httpx.Client(base_url=url, timeout=120, headers={"X-Forwarded-For": "198.51.100.1"})
    credentials = {"username": "bystander", "password": PASSWORD}
    client.post("/v1/auth/register", json=credentials).raise_for_status()
    token = client.post("/v1/auth/login", json=credentials).json()["token"]

    def login() -> float:
        started = time.perf_counter()
        client.post("/v1/auth/login", json=credentials).raise_for_status()
        return time.perf_counter() - started

    def list_gateways() -> float:
        started = time.perf_counter()
        client.get("/v1/api-gateways", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        return time.perf_counter() - started

    return client, login, list_gateways


def burst(url: str, pid: int, registrations: int) -> dict[str, Any]:
    client, login, list_gateways = other_user(url)
    idle_login = [login() for _ in range(PROBES)]
    idle_list = [list_gateways() for _ in range(PROBES)]
    idle_rss = rss_mib(pid)
    peak = [idle_rss]
    busy_login: list[float] = []
    busy_list: list[float] = []
    done = threading.Event()

    def sample_memory() -> None:
        while not done.is_set():
            peak.append(rss_mib(pid))
            done.wait(0.02)

    def probe() -> None:
        while not done.is_set():
            busy_login.append(login())
            busy_list.append(list_gateways())

    def register(i: int) -> int:
        with httpx.Client(base_url=url, timeout=120) as one:
            body = {"username": f"burst-{i}", "password": PASSWORD}
            return one.post(
                "/v1/auth/register", json=body, headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.9"}
            ).status_code

    watchers = [threading.Thread(target=sample_memory), threading.Thread(target=probe)]
    for watcher in watchers:
        watcher.start()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(registrations) as pool:
        statuses = Counter(pool.map(register, range(registrations)))
    elapsed = time.perf_counter() - started
    done.set()
    for watcher in watchers:
        watcher.join()
    client.close()
    return {
        "idle_rss": idle_rss,
        "peak_rss": max(peak),
        "elapsed": elapsed,
        "statuses": dict(sorted(statuses.items())),
        "idle_login": Summary.of(idle_login),
        "idle_list": Summary.of(idle_list),
        "busy_login": Summary.of(busy_login or idle_login),
        "busy_list": Summary.of(busy_list or idle_list),
    }


def registration_part(registrations: int) -> None:
    with tempfile.TemporaryDirectory(prefix="imprun-abuse-") as data:
        base = Settings(data_dir=Path(data), embedded_mongo_port=free_port(), embedded_redis_port=free_port())
        mongo, redis = mongo_service(base), redis_service(base)
        mongo.start(timeout=60)
        redis.start(timeout=30)
        settings = base.model_copy(
            update={"mongo_url": embedded_mongo_url(base), "redis_url": embedded_redis_url(base)}
        )
        try:
            for concurrency, label in (
                (4, "bounded (default 4: 2 for registrations, 2 for sign-ins)"),
                (80, "40 registrations at once (as the 40-thread request pool hashed before the bound)"),
            ):
                with control_plane(settings, concurrency) as (url, pid):
                    result = burst(url, pid, registrations)
                print_burst(label, registrations, result)
        finally:
            redis.stop()
            mongo.stop()


def print_burst(label: str, registrations: int, r: dict[str, Any]) -> None:
    print(f"\n{registrations} concurrent registrations, password hashing {label}")
    print(
        f"  control-plane RSS: idle {r['idle_rss']:.0f} MiB, peak {r['peak_rss']:.0f} MiB; burst took {r['elapsed']:.1f} s"
    )
    print(f"  answers: {r['statuses']}")
    for name, idle, busy in (
        ("login", r["idle_login"], r["busy_login"]),
        ("GET /v1/api-gateways", r["idle_list"], r["busy_list"]),
    ):
        print(
            f"  another user's {name}: idle p50 {idle.p50 * 1000:.1f} / p99 {idle.p99 * 1000:.1f} ms; "
            f"during the burst p50 {busy.p50 * 1000:.1f} / p99 {busy.p99 * 1000:.1f} ms "
            f"(p99 x{busy.p99 / idle.p99:.1f}, {busy.count} samples)"
        )


# --- 2. ReDoS against the AI gateway -----------------------------------------------------------------


class StubCatalog:
    def __init__(self, tools: list[Tool]) -> None:
        self._tools = tools

    async def view_of_async(self, api_key: str) -> KeyView:
        return KeyView(api_key, frozenset({("gw", "prod")}), frozenset({"app"}))

    async def tools_of_async(self, view: KeyView) -> list[Tool]:
        return self._tools


class EchoInvoker:
    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        return ToolOutcome(200, {"echo": dict(arguments)}, 0.1)


def python_re_seconds(length: int) -> float:
    started = time.perf_counter()
    re.search(REDOS_PATTERN, "a" * length + "!")
    return time.perf_counter() - started


def redos_part(calls: int) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": REDOS_PATTERN}}}
    catalog = StubCatalog([Tool("check", "Checks a word.", schema, "gw", "prod", "check")])
    endpoint = McpEndpoint(catalog, EchoInvoker())  # type: ignore[arg-type]
    app = AiGatewayHttp(catalog, endpoint, ChatService({}, EchoInvoker()))  # type: ignore[arg-type]

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            async with endpoint.running():
                await send({"type": "lifespan.startup.complete"})
                await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(lifespan_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, what="the AI gateway app")
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        victim = httpx.Client(timeout=60, headers={**MCP_HEADERS, "apikey": "imp_prod_" + "V" * 43})
        attacker = httpx.Client(timeout=60, headers={**MCP_HEADERS, "apikey": "imp_prod_" + "A" * 43})

        def list_tools(i: int) -> float:
            started = time.perf_counter()
            answer = victim.post(url, json={"jsonrpc": "2.0", "id": i, "method": "tools/list"})
            answer.raise_for_status()
            return time.perf_counter() - started

        def attack(i: int) -> tuple[float, bool]:
            call = {"name": "check", "arguments": {"s": "a" * 34 + "!"}}
            started = time.perf_counter()
            answer = attacker.post(
                url, json={"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": call}
            )
            answer.raise_for_status()
            return time.perf_counter() - started, bool(answer.json()["result"]["isError"])

        idle = [list_tools(i) for i in range(calls)]
        attacks: list[tuple[float, bool]] = []
        stop = threading.Event()

        def keep_attacking() -> None:
            i = 0
            while not stop.is_set():
                attacks.append(attack(i))
                i += 1

        attacker_thread = threading.Thread(target=keep_attacking)
        attacker_thread.start()
        busy = [list_tools(i) for i in range(calls)]
        stop.set()
        attacker_thread.join()
        victim.close()
        attacker.close()
    finally:
        server.should_exit = True
        thread.join(30)
    idle_s, busy_s = Summary.of(idle), Summary.of(busy)
    attack_s = Summary.of([t for t, _ in attacks])
    print(f"\nReDoS: schema pattern {REDOS_PATTERN!r}, argument of 34 'a's and a '!'")
    print(
        "  Python's re (the in-run baseline): "
        + ", ".join(f"{n} a's {python_re_seconds(n) * 1000:.0f} ms" for n in (18, 20, 22, 24))
    )
    print(
        f"  the attacker's tools/call: {attack_s.count} calls, all refused as tool errors: "
        f"{all(refused for _, refused in attacks)}; p50 {attack_s.p50 * 1000:.1f} / p99 {attack_s.p99 * 1000:.1f} ms"
    )
    print(
        f"  another key's tools/list: idle p50 {idle_s.p50 * 1000:.1f} / p99 {idle_s.p99 * 1000:.1f} ms; "
        f"under attack p50 {busy_s.p50 * 1000:.1f} / p99 {busy_s.p99 * 1000:.1f} ms (p99 x{busy_s.p99 / idle_s.p99:.1f})"
    )


# --- 3. debug runs of one user (needs Ray) --------------------------------------------------------------

SPIN: Final = "def main():\n    while True:\n        pass\n"
"""A debug run that holds its caller until the function's timeout (10 s) ends it."""


def debug_part(runs: int) -> None:
    from _stack import new_id, platform_stack  # starts a Ray head: only for this part

    with platform_stack() as stack:
        gw = new_id("abuse")
        stack.create_gateways([gw])
        stack.wait_started([gw], timeout=600)
        stack.create_function(gw, "spin", SPIN)
        other, _, list_gateways = other_user(stack.settings.control_plane_url)
        try:
            idle = [list_gateways() for _ in range(PROBES)]
            busy: list[float] = []
            done = threading.Event()

            def probe() -> None:
                while not done.is_set():
                    busy.append(list_gateways())

            def debug(i: int) -> int:
                path = f"/v1/api-gateways/{gw}/functions/spin/debug"
                return stack.api.post(path, json={}, timeout=120).status_code

            prober = threading.Thread(target=probe)
            prober.start()
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(runs) as pool:
                statuses = Counter(pool.map(debug, range(runs)))
            elapsed = time.perf_counter() - started
            done.set()
            prober.join()
        finally:
            other.close()
    idle_s, busy_s = Summary.of(idle), Summary.of(busy)
    print(f"\n{runs} concurrent debug runs by one user of a function that spins until its 10 s timeout")
    print(f"  answers: {dict(sorted(statuses.items()))} in {elapsed:.1f} s")
    print(
        f"  another user's GET /v1/api-gateways: idle p50 {idle_s.p50 * 1000:.1f} / p99 {idle_s.p99 * 1000:.1f} ms; "
        f"during the runs p50 {busy_s.p50 * 1000:.1f} / p99 {busy_s.p99 * 1000:.1f} ms "
        f"(p99 x{busy_s.p99 / idle_s.p99:.1f}, {busy_s.count} samples)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200, help="tools/list calls per ReDoS phase")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument(
        "--debug-runs", type=int, default=0, help="also N concurrent debug runs by one user (starts Ray)"
    )
    args = parser.parse_args()
    print(f"imprun abuse benchmark — load average before: {load_average()}")
    if not args.skip_burst:
        registration_part(args.registrations)
    redos_part(args.calls)
    if args.debug_runs:
        debug_part(args.debug_runs)
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
