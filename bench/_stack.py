"""The embedded imprun stack the benchmarks run against, and a client for its control plane.

``platform_stack()`` starts, on free loopback ports with its data in a temporary directory, what
``imprun up`` starts: nx-27017, redis-server, a Ray head with Serve's HAProxy ingress (the
``imprun.embedded`` code), and the control plane as its own process (uvicorn serving
``imprun.api.app:app_from_env``, reconcilers running, the local Ray Serve driver deploying
environments whose replicas run the function runtime). It registers a user and yields a ``Stack``
with an HTTP client for the control plane and one for the data plane. On exit — also after an error
or Ctrl-C — it deletes the gateways it created, then stops the control plane, the Ray head and the
services, each step bounded in time.

``platform_stack(settings={...})`` overrides settings (``Settings`` field names, e.g.
``shared_idle_seconds``) for the whole stack: the control plane gets them as ``IMPRUN_*`` variables.

``ray_driver(stack)`` connects the benchmark process itself to the head, for the bare Serve
baselines deployed next to imprun's applications.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import pymongo
import redis
from _measure import PlatformProcesses

from imprun.embedded.mongo import embedded_mongo_url, mongo_service
from imprun.embedded.process import ServiceProcess
from imprun.embedded.ray_head import HEAD_MARKER_ENV, RayHead, start_ray_head, stop_ray_head
from imprun.embedded.redis import embedded_redis_url, redis_service
from imprun.settings import Settings
from runtime_actors.shared.names import ENVIRONMENTS as ENVIRONMENT_RECORDS
from runtime_actors.shared.names import SHARED_LOADED_KEY

CPU: Final = 0.05
MEMORY_MB: Final = 256
BUNDLE: Final = {"tier": "dedicated", "cpu": CPU, "memory": MEMORY_MB, "minReplicas": 1, "maxReplicas": 1}
"""Each environment's replica in every benchmark: one small replica (the bare baselines get the same)."""
SHARED_BUNDLE: Final = {"tier": "shared"}
"""An environment loaded on demand into the platform's shared runtime (no replica of its own)."""

ENVIRONMENTS: Final = ("dev", "staging", "prod")

CONTROL_PLANE: Final = "control plane"
MONGO: Final = "nx-27017"
REDIS: Final = "redis-server"

_API_TIMEOUT_S: Final = 60.0
_TEARDOWN_TIMEOUT_S: Final = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``probe`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def serve_app_names(gateway_ids: Sequence[str]) -> list[str]:
    return [f"{gw}-{env}" for gw in gateway_ids for env in ENVIRONMENTS]


@dataclass
class Stack:
    """A running embedded stack: its settings, its processes and clients for both planes."""

    settings: Settings
    head: RayHead
    services: dict[str, ServiceProcess]
    api: httpx.Client
    data_plane: httpx.Client
    gateways: list[str] = field(default_factory=list)

    # --- gateways -------------------------------------------------------------------------------------

    def create_gateways(self, gateway_ids: Sequence[str], bundle: Mapping[str, Any] | None = BUNDLE) -> None:
        """Create the gateways with ``bundle`` (None: none at all, the platform's defaults apply)."""
        for gw in gateway_ids:
            body: dict[str, Any] = {"name": f"bench {gw}", "gatewayId": gw}
            if bundle is not None:
                body["bundle"] = dict(bundle)
            self._ok(self.api.post("/v1/api-gateways", json=body))
            self.gateways.append(gw)

    def phase(self, gw: str) -> str | None:
        response = self.api.get(f"/v1/api-gateways/{gw}")
        if response.status_code == 404:
            return None
        phase: str = self._ok(response)["phase"]
        return phase

    def wait_started(self, gateway_ids: Sequence[str], *, timeout: float) -> None:
        pending = set(gateway_ids)

        def all_started() -> bool:
            pending.difference_update({gw for gw in pending if self.phase(gw) == "Started"})
            return not pending

        wait_until(all_started, timeout=timeout, what=f"phase Started of {len(gateway_ids)} gateway(s)")

    def delete_gateways(self, gateway_ids: Sequence[str], *, timeout: float) -> None:
        """Delete the gateways and wait until they are gone (404)."""
        for gw in gateway_ids:
            response = self.api.delete(f"/v1/api-gateways/{gw}")
            if response.status_code != 404:
                self._ok(response)
        pending = set(gateway_ids)

        def all_gone() -> bool:
            pending.difference_update({gw for gw in pending if self.phase(gw) is None})
            return not pending

        wait_until(all_gone, timeout=timeout, what=f"deletion of {len(gateway_ids)} gateway(s)", interval=0.5)
        self.gateways[:] = [gw for gw in self.gateways if gw not in gateway_ids]

    def allow_anonymous(self, gw: str, env: str) -> None:
        """Set the environment's ``authType: none`` (applied asynchronously to a running replica)."""
        self._ok(self.api.patch(f"/v1/api-gateways/{gw}/environments/{env}", json={"authType": "none"}))

    def open_environment(self, gw: str, env: str, *, timeout: float = 120.0) -> None:
        """Let callers in without an API key (``authType: none``) and wait until the replica does."""
        self.allow_anonymous(gw, env)
        # The supervisor checks the key before routing: an unknown path is 404 once the environment is
        # open, 401 while it still wants a key, 503 while its access table is not loaded.
        self.wait_served(f"/{gw}/{env}/__bench_probe", lambda r: r.status_code == 404, timeout=timeout)

    def applications_api(self) -> bool:
        """Whether this control plane has ``/v1/applications`` (API keys by grant)."""
        paths = self._ok(self.api.get("/openapi.json")).get("paths", {})
        return any(path.startswith("/v1/applications") for path in paths)

    def issue_key(self, gw: str, env: str) -> tuple[str, str]:
        """Create an application with a grant on ``gw``/``env``: the application's id and the key."""
        application = self._ok(self.api.post("/v1/applications", json={"name": new_id("bench-app")}))
        application_id: str = application["applicationId"]
        grant = self._ok(
            self.api.post(
                f"/v1/applications/{application_id}/grants", json={"gatewayId": gw, "environment": env}
            )
        )
        key: str = grant["apiKey"]
        return application_id, key

    def grants(self, application_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/v1/applications/{application_id}/grants")
        self._ok_status(response)
        grants: list[dict[str, Any]] = response.json()
        return grants

    # --- functions ------------------------------------------------------------------------------------

    def create_function(self, gw: str, name: str, code: str) -> None:
        self._ok(self.api.post(f"/v1/api-gateways/{gw}/functions", json={"name": name, "code": code}))

    def update_function(self, gw: str, name: str, code: str) -> None:
        self._ok(self.api.patch(f"/v1/api-gateways/{gw}/functions/{name}", json={"code": code}))

    def publish(self, gw: str, name: str, env: str) -> dict[str, Any]:
        return self._ok(
            self.api.post(f"/v1/api-gateways/{gw}/functions/{name}/publish", json={"environment": env})
        )

    def deploy_to_stage(self, gw: str, name: str, target: str) -> dict[str, Any]:
        return self._ok(
            self.api.post(
                f"/v1/api-gateways/{gw}/functions/{name}/deploy-to-stage", json={"targetStage": target}
            )
        )

    def publish_open(self, gw: str, name: str, code: str, env: str = "dev") -> None:
        """Create function ``name``, publish it to ``env`` and set ``env`` to ``authType: none``,
        without calling it (a shared-tier environment stays loaded nowhere)."""
        self.create_function(gw, name, code)
        self.publish(gw, name, env)
        self.allow_anonymous(gw, env)

    def wait_anonymous(self, gateway_ids: Sequence[str], env: str, *, timeout: float) -> None:
        """Wait until the environment reconciler has applied ``authType: none`` to ``env`` of every
        gateway (its ``appliedRoute``, recorded once the settings replicas read are written)."""
        keys = [f"{gw}/{env}" for gw in gateway_ids]
        query = {"_id": {"$in": keys}, "appliedRoute.auth_type": "none"}
        with pymongo.MongoClient[dict[str, Any]](self.settings.mongo_url) as mongo:
            records = mongo[self.settings.sys_db_name][ENVIRONMENT_RECORDS]
            wait_until(
                lambda: records.count_documents(query) == len(keys),
                timeout=timeout,
                what=f"authType none applied to {len(keys)} environment(s)",
                interval=0.5,
            )

    def wait_served(
        self,
        path: str,
        predicate: Callable[[httpx.Response], bool],
        *,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """GET ``path`` on the data plane until ``predicate`` holds (hot reload is asynchronous)."""
        last: list[httpx.Response] = []

        def passes() -> bool:
            last[:] = [self.data_plane.get(path, headers=headers)]
            return predicate(last[0])

        try:
            wait_until(passes, timeout=timeout, what=f"GET {path} passing", interval=0.02)
        except TimeoutError as exc:
            seen = f"{last[0].status_code} {last[0].text[:300]}" if last else "no answer"
            raise TimeoutError(f"{exc}; last answer: {seen}") from None
        return last[0]

    def shared_loaded(self) -> set[str]:
        """The environments (``<gw>/<env>``) the shared runtime's replicas report loaded (each
        replica reports every couple of seconds)."""
        with redis.Redis.from_url(self.settings.redis_url or "", socket_timeout=5.0) as client:
            entries = client.hvals(SHARED_LOADED_KEY)
        return {key for entry in entries for key in json.loads(entry)["environments"]}

    # --- processes ------------------------------------------------------------------------------------

    def platform_processes(self) -> PlatformProcesses:
        """The services' process trees and the Ray head's marked processes, for CPU accounting."""
        roots: dict[int, str] = {}
        for name, service in self.services.items():
            pid = service.recorded_pid()
            if pid is not None:
                roots[pid] = name
        marker = f"{HEAD_MARKER_ENV}={self.settings.embedded_ray_port}".encode()
        return PlatformProcesses(roots=roots, ray_head_marker=marker)

    @classmethod
    def _ok(cls, response: httpx.Response) -> dict[str, Any]:
        cls._ok_status(response)
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def _ok_status(response: httpx.Response) -> None:
        if response.is_error:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path} → {response.status_code}: "
                f"{response.text[:500]}"
            )


def _control_plane_service(settings: Settings, overrides: Mapping[str, Any]) -> ServiceProcess:
    """The control plane as ``imprun up`` would run it, but in its own process (its CPU is its own)."""
    assert settings.mongo_url and settings.redis_url and settings.ray_address
    variables = {
        "MONGO_URL": settings.mongo_url,
        "REDIS_URL": settings.redis_url,
        "RAY_ADDRESS": settings.ray_address,
        "DATA_DIR": str(settings.data_dir),
        "HOST": settings.host,
        "API_PORT": str(settings.api_port),
        "SERVE_PORT": str(settings.serve_port),
        "DASHBOARD_PORT": str(settings.dashboard_port),
        "EMBEDDED_MONGO_PORT": str(settings.embedded_mongo_port),
        "EMBEDDED_REDIS_PORT": str(settings.embedded_redis_port),
        "EMBEDDED_RAY_PORT": str(settings.embedded_ray_port),
        "RECONCILE_INTERVAL_SECONDS": str(settings.reconcile_interval_seconds),
        "LOG_LEVEL": "WARNING",
        "LOG_JSON": "false",
        **{name.upper(): str(value) for name, value in overrides.items()},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPRUN_")}
    env.update({f"IMPRUN_{name}": value for name, value in variables.items()})
    url = settings.control_plane_url

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return ServiceProcess(
        name="control-plane",
        command=[
            sys.executable, "-m", "uvicorn", "--factory", "imprun.api.app:app_from_env",
            "--host", settings.host, "--port", str(settings.api_port),
            "--no-access-log", "--log-level", "warning",
        ],
        host=settings.host,
        port=settings.api_port,
        run_dir=settings.data_dir / "run",
        ready=ready,
        env=env,
    )  # fmt: skip


def _login(api: httpx.Client) -> None:
    credentials = {"username": new_id("bench"), "password": secrets.token_urlsafe(18)}
    api.post("/v1/auth/register", json=credentials).raise_for_status()
    login = api.post("/v1/auth/login", json=credentials)
    login.raise_for_status()
    api.headers["Authorization"] = f"Bearer {login.json()['token']}"


def _stop_on_sigterm(cleanup: contextlib.ExitStack) -> None:
    """Turn SIGTERM (``timeout``, ``kill``) into ``SystemExit`` so the cleanup still runs."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    cleanup.callback(signal.signal, signal.SIGTERM, previous)


@contextlib.contextmanager
def platform_stack(
    *, reconcile_interval: float = 1.0, settings: Mapping[str, Any] | None = None
) -> Iterator[Stack]:
    """Start the whole embedded stack (see the module docstring) with ``settings`` overriding the
    defaults; stop all of it on exit."""
    overrides = dict(settings or {})
    with contextlib.ExitStack() as cleanup:
        _stop_on_sigterm(cleanup)
        data_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imprun-bench-")))
        base = Settings(
            data_dir=data_dir,
            host="127.0.0.1",
            embedded_mongo_port=free_port(),
            embedded_redis_port=free_port(),
            embedded_ray_port=free_port(),
            dashboard_port=free_port(),
            serve_port=free_port(),
            api_port=free_port(),
            reconcile_interval_seconds=reconcile_interval,
            log_json=False,
            log_level="WARNING",
            **overrides,
        )
        mongo, redis = mongo_service(base), redis_service(base)
        mongo.start(timeout=60)
        cleanup.callback(mongo.stop)
        redis.start(timeout=30)
        cleanup.callback(redis.stop)
        head = start_ray_head(base)
        if not head.run_dir.is_relative_to(data_dir):  # Ray's sockets live in a short dir under /tmp
            cleanup.callback(shutil.rmtree, head.run_dir, ignore_errors=True)
        cleanup.callback(stop_ray_head, base)
        configured = base.model_copy(
            update={
                "mongo_url": embedded_mongo_url(base),
                "redis_url": embedded_redis_url(base),
                "ray_address": head.address,
            }
        )
        control_plane = _control_plane_service(configured, overrides)
        control_plane.start(timeout=120)
        cleanup.callback(control_plane.stop, timeout=30)
        api = cleanup.enter_context(
            httpx.Client(base_url=configured.control_plane_url, timeout=_API_TIMEOUT_S)
        )
        data_plane = cleanup.enter_context(httpx.Client(base_url=head.serve_url, timeout=_API_TIMEOUT_S))
        _login(api)
        stack = Stack(
            settings=configured,
            head=head,
            services={MONGO: mongo, REDIS: redis, CONTROL_PLANE: control_plane},
            api=api,
            data_plane=data_plane,
        )
        try:
            yield stack
        finally:
            if stack.gateways:
                print(f"cleaning up: deleting {len(stack.gateways)} gateway(s)…", flush=True)
                try:
                    stack.delete_gateways(list(stack.gateways), timeout=_TEARDOWN_TIMEOUT_S)
                except (TimeoutError, RuntimeError, httpx.HTTPError) as exc:
                    print(
                        f"  gateways not all deleted ({exc}); stopping the Ray head removes them", flush=True
                    )


@contextlib.contextmanager
def ray_driver(stack: Stack) -> Iterator[None]:
    """Connect this process to the stack's Ray head (for bare Serve baselines); disconnect on exit."""
    import ray

    from imprun.drivers.local_ray import use_token_auth_from_environment

    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    use_token_auth_from_environment()
    ray.init(
        address=stack.head.address,
        namespace="imprun-bench",
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield
    finally:
        ray.shutdown()


# --- first calls ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstAnswer:
    seconds: float  # from the first request until the first 2xx answer
    refused: int  # answers before it that were not 2xx (0: the first request was answered)
    statuses: tuple[int, ...]  # their statuses


def first_answer(client: httpx.Client, path: str, *, timeout: float = 60.0) -> FirstAnswer:
    """GET ``path`` until it answers 2xx (every 20 ms): how long that took and what came before."""
    started = time.perf_counter()
    statuses: list[int] = []
    while True:
        status = client.get(path).status_code
        if 200 <= status < 300:
            return FirstAnswer(time.perf_counter() - started, len(statuses), tuple(statuses))
        statuses.append(status)
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"GET {path} answered no 2xx within {timeout:g} s (got {statuses[-5:]})")
        time.sleep(0.02)


# --- publish → live --------------------------------------------------------------------------------------


def versioned_code(marker: int) -> str:
    """A function whose answer names its version: ``{"v": marker}``."""
    return f'def main(req):\n    return {{"v": {marker}}}\n'


def carries(response: httpx.Response, marker: int) -> bool:
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("v") == marker


@dataclass(frozen=True)
class Live:
    seconds: float  # from ``since`` until the first response carrying the version
    polls: int


def poll_until_live(
    client: httpx.Client, path: str, marker: int, *, since: float, timeout: float
) -> Live | None:
    """GET ``path`` back to back until an answer carries ``marker``; None ``timeout`` s after ``since``."""
    polls = 0
    while True:
        response = client.get(path)
        polls += 1
        now = time.perf_counter()
        if carries(response, marker):
            return Live(now - since, polls)
        if now - since > timeout:
            return None
