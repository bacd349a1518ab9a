"""The Ray Serve application that serves one gateway environment at ``/<gw>/<env>``.

Each replica of its single deployment, ``FunctionActor``, is the trusted supervisor of one
environment: ``runtime_actors.replica.supervisor.Supervisor`` with a jailed ``WorkerPool``, the ``imp.db()``
proxy and the ``imp.fetch`` egress policy, fed by this node's reload hub (``ray_apps.reload_hub``).
This module is the Serve wiring only: it turns the Starlette request into the supervisor's
``RequestHead`` (body read lazily, under the size limit), answers ``GET /<gw>/<env>/_health`` itself,
and exposes ``debug`` for the control plane's Serve handle. ``build_app(args)`` builds the
application, so the same code runs whether the local cluster driver deploys it through the Python API
or a KubeRay ``serveConfigV2`` names it by import path (``ray_apps.environment:build_app`` with
``args: {gateway_id, environment, mongo_url, redis_url, …}``, see ``RuntimeConfig``). Requests pass
the supervisor's ``KeyAuthGate`` first (API keys against the hub's access snapshot, hashed with
``api_key_pepper``; rate limits counted in Redis). Without a ``mongo_url`` the replica runs no tenant
code and serves only its health route (404 elsewhere).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import ray
from ray import serve
from ray.exceptions import RayActorError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ray_apps.function_metrics import FunctionMetrics
from ray_apps.reload_hub import reload_hub_for_this_node
from ray_apps.replica_http import DISCONNECT_DISABLED_HEADER
from runtime_actors.replica.admission.key_auth import KeyAuthGate
from runtime_actors.replica.admission.limiter import RedisRateLimiter
from runtime_actors.replica.callbacks.db_proxy import DbProxy
from runtime_actors.replica.callbacks.egress import Egress, EgressPolicy
from runtime_actors.replica.http import BodyTooLarge, RequestHead, read_limited
from runtime_actors.replica.log_stream import DiscardLogs, RedisLogStream
from runtime_actors.replica.ports import FunctionLogSink, FunctionPool
from runtime_actors.replica.supervisor import Supervisor
from runtime_actors.shared.errors import REQUEST_ID_HEADER, error_json
from runtime_actors.shared.messages import Invocation, InvocationResult, PublishedFunction, Snapshot
from runtime_actors.shared.runtime_config import RuntimeConfig

if TYPE_CHECKING:
    from runtime_actors.replica.pool.spares import SpareWorkers, WorkerSpec

__all__ = [
    "DEPLOYMENT_NAME",
    "FunctionActor",
    "RuntimeConfig",
    "build_app",
    "build_supervisor",
    "environment_deployment",
    "route_of",
    "serve_request",
]

logger = logging.getLogger(__name__)

DEPLOYMENT_NAME: Final = "FunctionActor"
"""Name of the environment's deployment, as shown in the Ray dashboard."""

REPLICA_LOGGING: Final = {"enable_access_log": False, "log_level": "WARNING"}
"""Serve's own logger in a replica. No per-request access log (the logs that matter go to the
environment's Redis stream), and WARNING, not INFO: with the access log off Serve still builds and
filters an INFO record per request (bench/throughput.py), and its other INFO lines are replica
start/stop notices that the controller's log repeats."""

HEALTH_ROUTE: Final = "/_health"
DISCONNECT_DISABLED: Final = DISCONNECT_DISABLED_HEADER.decode()


def route_of(scope: Mapping[str, Any], prefix: str) -> str:
    """The request path below ``prefix`` (``/<gw>/<env>``), whether or not the ingress stripped it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    for candidate in (root, prefix):
        if candidate and (path == candidate or path.startswith(candidate + "/")):
            return path[len(candidate) :] or "/"
    return path


def _path_segment(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"{kind} must be a non-empty string without '/', got {value!r}")
    return value


class _HubSource:
    """The node's reload hub bound to one environment; re-finds the hub if it died."""

    def __init__(self, gateway_id: str, environment: str, config: RuntimeConfig) -> None:
        assert config.mongo_url is not None
        self._args = (config.mongo_url, config.redis_url, config.sys_db_name)
        self._key = (gateway_id, environment)
        self._hub: Any = None

    def _handle(self) -> Any:
        if self._hub is None:
            self._hub = reload_hub_for_this_node(*self._args)
        return self._hub

    async def snapshot(self) -> Snapshot:
        try:
            result: Snapshot = await self._handle().snapshot.remote(*self._key)
        except RayActorError:
            self._hub = None
            raise
        return result

    async def wait_changed(self, known_generation: int, timeout_s: float) -> Snapshot | None:
        try:
            result: Snapshot | None = await self._handle().wait_changed.remote(
                *self._key, known_generation, timeout_s
            )
        except RayActorError:
            self._hub = None
            raise
        return result


_RAY_DEFAULT_CLIENT_AND_WORKER_PORTS: Final = range(10001, 20000)
"""``ray start``'s defaults: the client server on 10001, ``--min/max-worker-port`` 10002 to 19999."""


_SERVE_PORTS: Final = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
    "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
    "RAY_SERVE_WORKER_PROXY_HTTP_PORT",
    "RAY_SERVE_WORKER_PROXY_GRPC_PORT",
)
"""Serve's single ports (HAProxy's stats and metrics, the fallback and worker proxies')."""

_SERVE_PORT_RANGES: Final = (
    ("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"),
    ("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT", "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT"),
)
"""The ranges each replica's direct-ingress HTTP and gRPC servers take a port from."""

_EPHEMERAL_PORTS: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
"""The kernel's range for listeners bound to port 0: every Serve replica's inter-deployment gRPC
server (on all interfaces; it answers handle calls, ``debug`` included) gets its port there."""


def _this_nodes_ray_ports(environ: Mapping[str, str]) -> frozenset[int]:
    """The ports Ray reports for this node (its agents, node and object managers, metrics), Ray's
    default client-server port and worker port range (each worker process and actor serves gRPC
    there), and Serve's ports and port ranges (HAProxy's, the proxies', every replica's direct
    ingress), as the node's environment sets them or Serve's defaults, and the kernel's ephemeral
    range, where each replica's inter-deployment gRPC server listens: never for ``imp.fetch``."""
    node_id = ray.get_runtime_context().get_node_id()
    ports = {
        value
        for node in ray.nodes()  # type: ignore[no-untyped-call]
        if node.get("NodeID") == node_id
        for key, value in node.items()
        if key.endswith("Port") and isinstance(value, int) and value > 0
    }
    ports.update(_RAY_DEFAULT_CLIENT_AND_WORKER_PORTS)
    serve_port = functools.partial(_serve_port, environ)
    ports.update(port for port in map(serve_port, _SERVE_PORTS) if port is not None)
    for low, high in _SERVE_PORT_RANGES:
        first, last = serve_port(low), serve_port(high)
        if first is not None and last is not None:
            ports.update(range(first, last + 1))
    first, last = map(int, _EPHEMERAL_PORTS.read_text().split())
    ports.update(range(first, last + 1))
    return frozenset(ports)


def _serve_port(environ: Mapping[str, str], name: str) -> int | None:
    """A Serve port setting: the node's environment's, else Serve's default (its constant)."""
    from ray.serve._private import constants

    value = environ.get(name)
    if value is not None:
        return int(value) if value.isdigit() else None
    default = getattr(constants, name, None)
    return default if isinstance(default, int) else None


class _NoTenantCode:
    """The pool of a replica without a runtime configuration: loads nothing, runs nothing."""

    async def start(self) -> None:
        pass

    async def load(
        self, functions: list[PublishedFunction], *, env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        return {f.name: "this replica has no runtime configuration" for f in functions}

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        return _unconfigured()

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        return _unconfigured()

    async def close(self) -> None:
        pass


def _unconfigured() -> InvocationResult:
    body = error_json("unavailable", "This environment's runtime is not configured.")
    return InvocationResult(503, {}, body, error="unavailable")


def worker_spec(config: RuntimeConfig) -> WorkerSpec:
    """How a replica's jailed workers are spawned (the spare workers of a shared replica too)."""
    from runtime_actors.replica.pool.spares import WorkerSpec
    from runtime_actors.shared.jail_config import WorkerLimits

    return WorkerSpec(WorkerLimits(), insecure=config.insecure_dev)


def _worker_pool(
    gateway_id: str, config: RuntimeConfig, spares: SpareWorkers | None, max_workers: int | None
) -> FunctionPool:
    """The jailed pool, its ``imp.db()`` proxy and ``imp.fetch`` policy (imported here: the control
    plane imports this module for ``build_app`` and never starts workers)."""
    from runtime_actors.replica.pool.worker_pool import WorkerPool

    assert config.mongo_url is not None
    db = DbProxy.for_gateway(config.mongo_url, gateway_id, max_database_bytes=config.gateway_db_max_bytes)
    ray_ports = frozenset(config.egress_denied_ports) | _this_nodes_ray_ports(os.environ)
    egress = Egress(EgressPolicy(allow=config.egress_allow, denied_ports=ray_ports))
    spec = worker_spec(config)  # every field of it: spares go only to a pool of their own spec
    pool: FunctionPool = WorkerPool(
        config.worker_pool_size,
        spec.limits,
        None,  # the pool makes (and removes) its own scratch directory
        spec.insecure,
        db_executor=db.execute,
        fetch_executor=egress.execute,
        min_landlock_abi=spec.min_landlock_abi,
        python=spec.python,
        run_as=spec.run_as,
        spares=spares,
        max_size=max_workers,
    )
    return pool


def build_supervisor(
    gateway_id: str,
    environment: str,
    config: RuntimeConfig,
    *,
    spares: SpareWorkers | None = None,
    max_workers: int | None = None,
) -> Supervisor:
    """The supervisor of one replica, wired to Ray (the hub), Redis (logs, rate limits), the key gate
    and the jailed pool (which takes its workers from ``spares`` when it can, and grows to
    ``max_workers`` while calls wait)."""
    if config.mongo_url is None:
        logger.warning("%s/%s: no mongo_url: this replica serves no functions", gateway_id, environment)
        return Supervisor(
            gateway_id,
            environment,
            _NoTenantCode(),
            None,
            DiscardLogs(),
            max_request_bytes=config.max_request_bytes,
        )
    logs: FunctionLogSink = (
        RedisLogStream(
            config.redis_url,
            f"{gateway_id}/{environment}",
            max_len=config.log_retention_entries,
            max_bytes=config.log_max_bytes,
        )
        if config.redis_url
        else DiscardLogs()
    )
    limiter = RedisRateLimiter(config.redis_url) if config.redis_url else None
    return Supervisor(
        gateway_id,
        environment,
        _worker_pool(gateway_id, config, spares, max_workers),
        _HubSource(gateway_id, environment, config),
        logs,
        max_request_bytes=config.max_request_bytes,
        gate=KeyAuthGate(gateway_id, environment, config.pepper(), limiter),
        variables=config.variables_opener(gateway_id, environment),
        observer=FunctionMetrics(gateway_id, environment),
    )


async def serve_request(supervisor: Supervisor, request: Request, prefix: str) -> Response:
    """Hand a Starlette request below ``prefix`` to ``supervisor`` (body read lazily, under its limit)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    headers.pop(DISCONNECT_DISABLED, None)  # ours (replica_http), not the caller's
    client = request.scope.get("client")
    head = RequestHead(
        request.method,
        route_of(request.scope, prefix),
        request.scope.get("query_string", b"").decode("latin-1"),
        headers,
        str(client[0]) if client else "",
    )

    async def body(limit: int) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
        return await read_limited(request.stream(), limit)

    # Serve's request-id middleware has put an x-request-id on the request (the caller's, or a new
    # one) and adds it to the response itself: use that id, and do not send a second header.
    response = await supervisor.handle(head, body, request_id=headers.get(REQUEST_ID_HEADER) or None)
    response.headers.pop(REQUEST_ID_HEADER, None)
    return Response(response.body, response.status, response.headers)


class FunctionActor:
    """One replica of a gateway environment (see the module docstring)."""

    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
        self, gateway_id: str, environment: str, runtime: Mapping[str, Any] | None = None
    ) -> None:
        self._gateway_id = _path_segment("gateway_id", gateway_id)
        self._environment = _path_segment("environment", environment)
        self._prefix = f"/{gateway_id}/{environment}"
        self._health = {"gateway": gateway_id, "environment": environment, "status": "ok"}
        self._supervisor = build_supervisor(gateway_id, environment, RuntimeConfig.from_args(runtime or {}))
        await self._supervisor.start()

    async def __call__(self, request: Request) -> Response:
        if route_of(request.scope, self._prefix) == HEALTH_ROUTE and request.method in ("GET", "HEAD"):
            return JSONResponse(self._health)
        return await serve_request(self._supervisor, request, self._prefix)

    async def debug(self, code: str, invocation: dict[str, Any]) -> dict[str, Any]:
        """Run unpublished ``code`` in this environment's sandbox (the control plane's debug route)."""
        return await self._supervisor.debug(code, invocation)

    async def call_tool(
        self, function: str, arguments: dict[str, Any], request_id: str, api_key: str, client: str = ""
    ) -> dict[str, Any]:
        """Run a published function as an AI-gateway tool for the caller presenting ``api_key``."""
        return await self._supervisor.call_tool(
            function, arguments, request_id, api_key=api_key, client=client
        )

    async def __del__(self) -> None:
        supervisor: Supervisor | None = getattr(self, "_supervisor", None)
        if supervisor is not None:
            await supervisor.close()


def environment_deployment(options: Mapping[str, Any] | None = None) -> serve.Deployment:
    """The ``FunctionActor`` deployment with Serve deployment ``options`` (replicas, resources, …)."""
    deployment = serve.deployment(name=DEPLOYMENT_NAME, logging_config=REPLICA_LOGGING)(FunctionActor)
    return deployment.options(**options) if options else deployment


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder; ``args`` are ``{"gateway_id", "environment"}`` plus ``RuntimeConfig``'s."""
    gateway_id = _path_segment("gateway_id", args.get("gateway_id"))
    environment = _path_segment("environment", args.get("environment"))
    runtime = {k: v for k, v in args.items() if k not in ("gateway_id", "environment")}
    config = RuntimeConfig.from_args(runtime)
    return environment_deployment().bind(gateway_id, environment, runtime=config.to_args())
