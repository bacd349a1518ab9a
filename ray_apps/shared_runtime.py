"""The ``shared-runtime`` Ray Serve application: the shared tier, many environments per replica.

An environment on the shared tier has no Serve application of its own. Its calls reach this
platform application, at route prefix ``/`` (Serve prefers the longer prefix of a dedicated
environment's application, so a dedicated ``/<gw>/<env>`` keeps its own replicas), and each replica
of its ``SharedRuntime`` deployment serves them with the very ``Supervisor`` a dedicated replica runs
(``ray_apps.environment.build_supervisor``): its own jailed workers, ``imp.db()`` proxy, key gate,
log stream, variables and hot reload from the node's hub, with ``worker_pool_size`` workers that grow
to ``worker_pool_max`` while its calls wait. Nothing of one environment is shared with
another but the replica process itself, which runs no tenant code. Each replica keeps
``spare_workers`` jailed workers spawned ahead (``runtime_actors.replica.pool.spares``): an
environment being loaded takes one instead of waiting for a new interpreter, and a spare has run
nothing before it is handed over.

Which environments a replica holds is ``LoadedEnvironments``: loaded on the first call, evicted when
idle (``idle_seconds``), least recently used first past ``max_environments`` or the replica's
``memory_budget_mb`` (its own and its workers' resident memory). A replica serves an environment only
while its record in the system database carries ``sharedPlacement`` (the environment reconciler sets
it, and clears it on deletion or once a move to the dedicated tier is serving); loaded environments
are checked again every ``recheck_seconds`` and evicted when their placement is gone or their record
was re-created (a new gateway of the same id inherits nothing loaded). The loaded set is reported to
Serve as multiplexed model ids (``<gw>/<env>``, so Serve's router prefers a replica holding the
environment when the ingress sets ``serve_multiplexed_model_id``) and to Redis (``SHARED_LOADED_KEY``,
read by the API).

The AI gateway (its own application, at ``/mcp``) also answers ``/ai-gateway/…``; those paths reach
this catch-all and are handed to it through a Serve handle. The control plane's debug runs and the
AI gateway's tool calls for a shared environment call ``debug`` and ``call_tool`` here, with the
environment's key as the handle's ``multiplexed_model_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final

import ray
from pymongo import AsyncMongoClient
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ray_apps.environment import REPLICA_LOGGING, build_supervisor, serve_request, worker_spec
from ray_apps.reload_hub import reload_hub_for_this_node
from runtime_actors.replica.environment_cache import LoadedEnvironments
from runtime_actors.replica.http import error_response, read_limited
from runtime_actors.replica.pool.spares import SpareWorkers
from runtime_actors.replica.supervisor import Supervisor
from runtime_actors.shared.errors import REQUEST_ID_HEADER
from runtime_actors.shared.names import (
    ENVIRONMENTS,
    PLACED,
    SHARED_DEPLOYMENT,
    SHARED_LOADED_KEY,
    SHARED_PLACEMENT,
    SHARED_RUNTIME_APP,
)
from runtime_actors.shared.runtime_config import RuntimeConfig

__all__ = ["DEPLOYMENT_NAME", "SHARED_APP", "SharedRuntime", "SharedTierConfig", "build_app"]

logger = logging.getLogger(__name__)

SHARED_APP: Final = SHARED_RUNTIME_APP
DEPLOYMENT_NAME: Final = SHARED_DEPLOYMENT
AI_GATEWAY_APP: Final = "ai-gateway"
AI_GATEWAY_PATHS: Final = ("/ai-gateway",)
"""Paths of the AI gateway below this catch-all (its ``/mcp`` has its own route prefix)."""
HEALTH_PATH: Final = "/_shared/_health"
_DRIVER_ARGS: Final = ("version", "num_replicas", "ray_actor_options")
_PLACEMENT_TTL_S: Final = 1.0
"""How long one read of an environment's placement answers for it: a burst of calls to an unknown (or
not shared) environment costs one database read a second, and a first call's load reads no more."""
_PLACEMENTS_MAX: Final = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class SharedTierConfig:
    """The shared tier's knobs; ``runtime`` is what every loaded environment's supervisor gets."""

    runtime: RuntimeConfig
    max_environments: int = 48
    idle_seconds: float = 120.0
    memory_budget_mb: int = 3072
    worker_pool_size: int = 1
    worker_pool_max: int = 2
    spare_workers: int = 1
    recheck_seconds: float = 2.0

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> SharedTierConfig:
        values = dict(args)
        runtime = RuntimeConfig.from_args(values.pop("runtime", {}) or {})
        known = {f.name for f in dataclasses.fields(cls)} - {"runtime"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown shared-tier argument(s) {unknown}; expected some of {sorted(known)}")
        config = cls(runtime=runtime, **values)
        if min(config.max_environments, config.worker_pool_size, config.memory_budget_mb) < 1:
            raise ValueError("max_environments, worker_pool_size and memory_budget_mb must be positive")
        if config.spare_workers < 0:
            raise ValueError("spare_workers cannot be negative")
        if config.worker_pool_max < config.worker_pool_size:
            raise ValueError("worker_pool_max cannot be below worker_pool_size")
        if not config.idle_seconds > 0 or not config.recheck_seconds > 0:
            raise ValueError("idle_seconds and recheck_seconds must be positive")
        return config

    def to_args(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["runtime"] = self.runtime.to_args()
        return values


def environment_key(path: str) -> str | None:
    """``<gw>/<env>`` of a data-plane path ``/<gw>/<env>/…``, or None."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[0] or not parts[1] or not parts[2]:
        return None
    return f"{parts[1]}/{parts[2]}"


def _error(status: int, code: str, message: str, request_id: str | None) -> Response:
    """An error in the API's shape (Serve's middleware adds the ``x-request-id`` header itself)."""
    answer = error_response(status, code, message, request_id or "")
    answer.headers.pop(REQUEST_ID_HEADER, None)
    if status == 503:
        answer.headers["retry-after"] = "1"
    return Response(answer.body, status, answer.headers)


@dataclasses.dataclass(slots=True)
class _Loaded:
    supervisor: Supervisor
    incarnation: str


class SharedRuntime:
    """One shared-tier replica (see the module docstring)."""

    async def __init__(self, config: dict[str, Any]) -> None:  # type: ignore[misc]  # Serve awaits it
        self._config = SharedTierConfig.from_args(config)
        runtime = self._config.runtime
        if runtime.mongo_url is None:
            raise ValueError("the shared runtime needs mongo_url")
        self._runtime = dataclasses.replace(runtime, worker_pool_size=self._config.worker_pool_size)
        self._mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            runtime.mongo_url, tz_aware=True, appname="imprun-shared-runtime", serverSelectionTimeoutMS=5_000
        )
        self._records = self._mongo[runtime.sys_db_name][ENVIRONMENTS]
        self._spares = SpareWorkers(self._config.spare_workers, worker_spec(runtime))
        self._spares.start()
        self._placements: dict[str, tuple[str | None, float]] = {}  # key: (incarnation or None, read at)
        self._environments: LoadedEnvironments[_Loaded] = LoadedEnvironments(
            self._load,
            self._unload,
            max_loaded=self._config.max_environments,
            idle_seconds=self._config.idle_seconds,
            over_budget=self._over_budget,
            on_change=self._report_loaded,
        )
        context = serve.get_replica_context()
        self._replica_id = context.replica_id
        self._replica = context.replica_id.unique_id
        self._node = ray.get_runtime_context().get_node_id()
        self._redis: Any = None
        if runtime.redis_url:
            from redis import asyncio as aioredis

            self._redis = aioredis.from_url(runtime.redis_url, socket_timeout=2.0)
        self._ai_gateway: Any = None
        self._maintenance = asyncio.create_task(self._maintain(), name="shared-runtime maintenance")
        self._hub_started = asyncio.create_task(self._start_hub(), name="start the reload hub")

    # --- requests ----------------------------------------------------------------------------------

    async def __call__(self, request: Request) -> Response:
        path: str = request.scope.get("path", "")
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            held = len(self._environments.loaded())
            return JSONResponse({"status": "ok", "loaded": held, "spareWorkers": self._spares.ready})
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if any(path == p or path.startswith(p + "/") for p in AI_GATEWAY_PATHS):
            return await self._forward_to_ai_gateway(request, request_id)
        key = environment_key(path)
        if key is None or not await self._placed(key):
            return _error(404, "not_found", f"Nothing is served at {path}.", request_id)
        try:
            async with self._environments.use(key) as loaded:
                return await serve_request(loaded.supervisor, request, "/" + key)
        except _LoadFailed as exc:
            return _error(503, "unavailable", str(exc), request_id)

    @contextlib.asynccontextmanager
    async def _environment(self, gateway_id: str, environment: str) -> AsyncIterator[Supervisor]:
        """The placed environment's supervisor, loaded; ``LookupError`` when it is not on this tier
        (a handle caller's, the control plane's or the AI gateway's, answers ``Conflict`` for it)."""
        key = f"{gateway_id}/{environment}"
        if not await self._placed(key):
            raise LookupError(
                f"the {environment} environment of gateway {gateway_id} is not on the shared tier"
            )
        async with self._environments.use(key) as loaded:
            yield loaded.supervisor

    async def debug(
        self, gateway_id: str, environment: str, code: str, invocation: dict[str, Any]
    ) -> dict[str, Any]:
        """Run unpublished ``code`` in a shared environment's sandbox (the control plane's debug route)."""
        async with self._environment(gateway_id, environment) as supervisor:
            return await supervisor.debug(code, invocation)

    async def call_tool(
        self,
        gateway_id: str,
        environment: str,
        function: str,
        arguments: dict[str, Any],
        request_id: str,
        api_key: str,
        client: str = "",
    ) -> dict[str, Any]:
        """Run a published function of a shared environment as an AI-gateway tool."""
        async with self._environment(gateway_id, environment) as supervisor:
            return await supervisor.call_tool(function, arguments, request_id, api_key=api_key, client=client)

    def loaded(self) -> dict[str, list[int]]:
        """The environments this replica holds, least recently used first, with their workers'
        process ids (an operator's view: ``serve.get_deployment_handle(…).loaded.remote()``)."""
        return {key: self._workers_of(key) for key in self._environments.loaded()}

    def spare_workers(self) -> dict[str, Any]:
        """The spare workers' process ids, and how many spares loads have taken so far."""
        return {"ready": self._spares.pids, "taken": self._spares.taken}

    def _workers_of(self, key: str) -> list[int]:
        entry = self._environments.peek(key)
        return entry.supervisor.worker_pids if entry is not None else []

    async def evict(self, key: str) -> bool:
        """Unload ``key`` now (after its calls in flight)."""
        return self._environments.evict(key)

    # --- placement ---------------------------------------------------------------------------------

    async def _placed(self, key: str) -> bool:
        return self._environments.is_loaded(key) or await self._placement(key) is not None

    async def _placement(self, key: str) -> str | None:
        """The environment's incarnation while it is placed on the shared tier, else None (one read
        answers for ``_PLACEMENT_TTL_S``)."""
        now = time.monotonic()
        remembered = self._placements.get(key)
        if remembered is not None and now - remembered[1] < _PLACEMENT_TTL_S:
            return remembered[0]
        record = await self._records.find_one({"_id": key, SHARED_PLACEMENT: PLACED}, {"createdAt": 1})
        incarnation = None if record is None else str(record.get("createdAt"))
        if len(self._placements) >= _PLACEMENTS_MAX:
            self._placements.clear()
        self._placements[key] = (incarnation, now)
        return incarnation

    async def _load(self, key: str) -> _Loaded:
        incarnation = await self._placement(key)
        if incarnation is None:
            raise _LoadFailed(f"the environment {key} is no longer on the shared tier")
        gateway_id, environment = key.split("/", 1)
        supervisor = build_supervisor(
            gateway_id,
            environment,
            self._runtime,
            spares=self._spares,
            max_workers=self._config.worker_pool_max,
        )
        try:
            await supervisor.start()
        except BaseException as exc:  # a cancelled first call too: its workers must not outlive it
            with contextlib.suppress(Exception):
                await asyncio.shield(supervisor.close())
            if not isinstance(exc, Exception):
                raise
            logger.exception("loading %s failed", key)
            raise _LoadFailed(f"the environment {key} could not be loaded; retry shortly") from exc
        logger.info("loaded %s (%d loaded)", key, len(self._environments.loaded()) + 1)
        return _Loaded(supervisor, incarnation)

    async def _unload(self, loaded: _Loaded) -> None:
        logger.info("unloading %s/%s", loaded.supervisor.gateway_id, loaded.supervisor.environment)
        await loaded.supervisor.close()

    async def _start_hub(self) -> None:
        """Start the node's reload hub now rather than on the first load (it is a Ray actor of its own:
        about a second to start, which the first call would otherwise wait for)."""
        runtime = self._runtime
        assert runtime.mongo_url is not None
        try:
            hub = reload_hub_for_this_node(runtime.mongo_url, runtime.redis_url, runtime.sys_db_name)
            await hub.stats.remote()
        except Exception as exc:
            logger.warning("the node's reload hub is not up yet (%r); the first load will start it", exc)

    def _over_budget(self) -> bool:
        return _tree_rss_bytes(os.getpid()) > self._config.memory_budget_mb * 1024 * 1024

    async def _maintain(self) -> None:
        """Every ``recheck_seconds``: evict idle environments and those no longer placed here (or
        re-created since they were loaded), and report the loaded set."""
        while True:
            await asyncio.sleep(self._config.recheck_seconds)
            try:
                self._environments.sweep()
                await self._drop_unplaced()
                await self._publish_loaded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("shared-runtime maintenance failed: %r", exc)

    async def _drop_unplaced(self) -> None:
        keys = self._environments.loaded()
        if not keys:
            return
        cursor = self._records.find({"_id": {"$in": keys}, SHARED_PLACEMENT: PLACED}, {"createdAt": 1})
        current = {doc["_id"]: str(doc.get("createdAt")) async for doc in cursor}
        now = time.monotonic()
        for key in keys:
            self._placements[key] = (current.get(key), now)  # what was just read answers the next load
            loaded = self._environments.peek(key)
            if loaded is not None and current.get(key) != loaded.incarnation:
                logger.info("%s left the shared tier (or was re-created): unloading", key)
                self._environments.evict(key)

    def _report_loaded(self, keys: list[str]) -> None:
        with contextlib.suppress(Exception):
            from ray.serve._private.common import RequestRoutingInfo
            from ray.serve.context import _get_global_client

            client = _get_global_client()
            assert client is not None
            client.record_request_routing_info(
                RequestRoutingInfo(replica_id=self._replica_id, multiplexed_model_ids=list(keys))
            )

    async def _publish_loaded(self) -> None:
        if self._redis is None:
            return
        entry = {
            "replica": self._replica,
            "node": self._node,
            "environments": self._environments.loaded(),
            "at": time.time(),
        }
        await self._redis.hset(SHARED_LOADED_KEY, self._replica, json.dumps(entry))

    # --- the AI gateway's paths --------------------------------------------------------------------

    async def _forward_to_ai_gateway(self, request: Request, request_id: str | None) -> Response:
        limit = self._config.runtime.max_request_bytes
        try:
            body = await read_limited(request.stream(), limit)
        except Exception:
            return _error(413, "too_large", f"The request body is over {limit} bytes.", request_id)
        client = request.scope.get("client")
        try:
            if self._ai_gateway is None:
                self._ai_gateway = serve.get_app_handle(AI_GATEWAY_APP)
            status, headers, content = await self._ai_gateway.forward.remote(
                request.method,
                request.scope.get("path", ""),
                request.scope.get("query_string", b""),
                list(request.scope["headers"]),
                body,
                str(client[0]) if client else "",
            )
        except Exception as exc:
            self._ai_gateway = None
            logger.warning("the AI gateway did not answer %s: %r", request.url.path, exc)
            return _error(
                503, "unavailable", "The AI gateway is not serving right now; retry shortly.", request_id
            )
        return Response(content, status, dict(headers))

    async def __del__(self) -> None:
        for name in ("_maintenance", "_hub_started"):
            task: asyncio.Task[None] | None = getattr(self, name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        environments = getattr(self, "_environments", None)
        if environments is not None:
            await environments.close()
        spares = getattr(self, "_spares", None)
        if spares is not None:
            await spares.close()
        redis = getattr(self, "_redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.hdel(SHARED_LOADED_KEY, self._replica)
                await redis.aclose()
        mongo = getattr(self, "_mongo", None)
        if mongo is not None:
            await mongo.close()


class _LoadFailed(Exception):
    """An environment could not be loaded (answered 503; the next call tries again)."""


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` and all its descendants (the replica and its workers)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        proc = Path("/proc") / str(todo.pop())
        try:
            total += int((proc / "statm").read_text().split()[1]) * page
            for task in (proc / "task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: ``SharedTierConfig`` args plus the driver's deployment options."""
    options: dict[str, Any] = {k: args[k] for k in _DRIVER_ARGS if k in args}
    config = SharedTierConfig.from_args({k: v for k, v in args.items() if k not in _DRIVER_ARGS})
    deployment = serve.deployment(
        name=DEPLOYMENT_NAME, logging_config=REPLICA_LOGGING, max_ongoing_requests=1000
    )(SharedRuntime)
    if "version" in options:
        options["_internal"] = True
    deployment = deployment.options(**options) if options else deployment
    return deployment.bind(config.to_args())
