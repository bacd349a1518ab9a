"""``LocalRayServeDriver``: the ``ClusterDriver`` that deploys environments with Ray Serve's Python API.

It drives any Ray cluster reachable by address, the embedded head of ``imprun up`` being the usual
one, from inside the control-plane process: it connects on first use (one Ray connection per
process), starts Serve with the settings' HTTP host and port if nobody has, and deploys each
environment as the Serve application ``<gw>-<env>`` built from ``ray_apps.environment``, with the
deployment ``FunctionActor`` (the names an operator sees in the Ray dashboard) and the replicas'
``RuntimeConfig`` taken from the settings (Mongo and Redis URLs, system database, body limit, pool
size, insecure mode) plus the API-key pepper the composition root hands over (drivers may not
import ``imprun.security``: whoever builds the driver passes
``load_master_key(settings).derive("api-key-lookup")``; without it no API key can match). ``apply``
submits the application to the Serve controller and returns without waiting for replicas. Deployments carry a version derived from the ``ray_apps`` and
``runtime_actors`` sources and from that configuration, so applying an unchanged spec restarts
nothing and a change of replica counts scales in place. A bundle's custom resources become the
replicas' Ray resources, so replicas run only on nodes offering them. A replica reserves the bundle's
memory and at most ``settings.replica_reserved_cpu`` of its CPU (``reserved_cpu``): an idle replica
uses next to no CPU, and what tenant code burns is bounded by the jailed workers' limits, so the
bundle's CPU is a ceiling, not a reservation (README, "bundles"). ``observe`` reports an app that
Serve keeps deploying (or finds unhealthy) while replicas wait for a node as ``UNSCHEDULABLE`` (no
alive node's total resources fit one) or ``INSUFFICIENT_CAPACITY`` (one would, but none has the room
free and the cluster lists the request as pending), with a message naming what is asked, free and
short, instead of letting it look like a slow deploy: one read of the cluster's resource state from
the GCS (every node's total and free resources, the pending requests) against Serve's per-replica
requirement and its replicas without a node (``imprun.domain.placement``), not a timer. Ray's
exceptions are translated here: unreachable cluster or controller → ``Unavailable``; a spec Serve
rejects → ``Invalid``. All calls block; async callers run them in a worker thread.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import ray
from ray import serve
from ray._raylet import Config as RayConfig  # type: ignore[attr-defined]
from ray._raylet import GcsClient  # type: ignore[attr-defined]
from ray.core.generated.autoscaler_pb2 import (  # type: ignore[attr-defined]
    GetClusterResourceStateReply,
    NodeStatus,
)
from ray.exceptions import RayError
from ray.serve.context import _get_global_client
from ray.serve.exceptions import RayServeException
from ray.serve.schema import ServeInstanceDetails

from imprun.domain.naming import serve_app_name
from imprun.domain.placement import NodeResources, PlacementProblem, placement_problem
from imprun.drivers.cluster import (
    ENVIRONMENT_REPLICA_ENV_VARS,
    AppSpec,
    AppStatus,
    ObservedApp,
    PlatformAppSpec,
    replica_actor_options,
    validate_app_ref,
)
from imprun.errors import ImprunError, Invalid, Unavailable
from imprun.settings import Settings
from ray_apps.environment import DEPLOYMENT_NAME, RuntimeConfig, environment_deployment
from runtime_actors.shared.names import SHARED_RUNTIME_APP, SHARED_RUNTIME_IMPORT_PATH

__all__ = ["LocalRayServeDriver", "runtime_config", "shared_runtime_spec"]

# Serve's ApplicationStatus values; NOT_STARTED is what Serve reports for an unknown application.
_STATUSES: Final = {
    "NOT_STARTED": AppStatus.MISSING,
    "DEPLOYING": AppStatus.DEPLOYING,
    "RUNNING": AppStatus.RUNNING,
    "UNHEALTHY": AppStatus.UNHEALTHY,
    "DEPLOY_FAILED": AppStatus.DEPLOY_FAILED,
    "DELETING": AppStatus.DELETING,
}

_RAY_NAMESPACE: Final = "imprun"  # of this driver's job; Serve's own actors live in namespace "serve"

_CONTROLLER_TIMEOUT_S: Final = 15.0

# Serve statuses of an app whose replicas may be waiting for a node that can hold them.
_MAYBE_UNPLACED: Final = frozenset({AppStatus.DEPLOYING, AppStatus.UNHEALTHY})
_STARTING: Final = "STARTING"  # Serve's ReplicaState of a replica not running yet (placed or not)


@dataclass(frozen=True, slots=True)
class ClusterResources:
    """What the cluster's resource state says: alive nodes' resources and the requests waiting for room."""

    nodes: tuple[NodeResources, ...]
    pending: tuple[dict[str, float], ...] = ()


class LocalRayServeDriver:
    """Runs gateway environments as Serve applications on the Ray cluster at ``ray_address``."""

    def __init__(
        self, ray_address: str, settings: Settings, *, api_key_pepper: bytes = b"", variables_key: bytes = b""
    ) -> None:
        host, _, port = ray_address.rpartition("://")[2].rpartition(":")
        if not host or not port.isdigit():
            raise Invalid(f"Ray address {ray_address!r} is not host:port or ray://host:port.")
        self._address = ray_address
        self._host, self._port = host, int(port)
        self._settings = settings
        self._api_key_pepper = api_key_pepper
        self._variables_key = variables_key
        self._lock = threading.RLock()
        self._connected = False
        self._owns_connection = False
        self._serve_started = False
        self._gcs: GcsClient | None = None

    def reserved_cpu(self, spec: AppSpec) -> float:
        """The CPU one replica of ``spec`` reserves in Ray: its bundle's, capped by the settings."""
        return min(spec.cpu, self._settings.replica_reserved_cpu)

    def apply(self, spec: AppSpec) -> None:
        options = _deployment_options(spec, self.reserved_cpu(spec))
        runtime = runtime_config(self._settings, self._api_key_pepper, self._variables_key)
        version = f"{_code_version()}-{runtime.digest()}"
        with self._translated(f"deploying {spec.app_name}"):
            self._ensure_serve()
            deployment = environment_deployment(options).options(version=version, _internal=True)
            target = serve.RunTarget(
                deployment.bind(spec.gateway_id, spec.environment, runtime=runtime.to_args()),
                name=spec.app_name,
                route_prefix=spec.route_prefix,
            )
            serve.run_many(
                [target], wait_for_ingress_deployment_creation=False, wait_for_applications_running=False
            )

    def apply_platform_app(self, spec: PlatformAppSpec) -> None:
        """Build the application with its builder (``version`` added to the args, so an unchanged spec
        restarts nothing) and submit it without waiting for replicas."""
        module_name, _, builder_name = spec.import_path.partition(":")
        args = {
            **spec.args,
            "version": f"{_code_version()}-{spec.digest()}",
            "ray_actor_options": replica_actor_options(spec.cpu, spec.memory_mb, env_vars=spec.env_vars),
            "num_replicas": spec.replicas,
        }
        with self._translated(f"deploying {spec.name}"):
            builder = getattr(importlib.import_module(module_name), builder_name)
            self._ensure_serve()
            target = serve.RunTarget(builder(args), name=spec.name, route_prefix=spec.route_prefix)
            serve.run_many(
                [target], wait_for_ingress_deployment_creation=False, wait_for_applications_running=False
            )

    def observe_platform_app(self, name: str) -> ObservedApp:
        return self._observe_app(name)

    def delete_platform_app(self, name: str) -> None:
        self._delete_app(name)

    def observe(self, gateway_id: str, environment: str) -> ObservedApp:
        validate_app_ref(gateway_id, environment)
        return self._observe_app(serve_app_name(gateway_id, environment))

    def _observe_app(self, name: str) -> ObservedApp:
        with self._translated(f"reading the status of {name}"):
            client = self._serve_client()
            if client is None:
                return ObservedApp(AppStatus.MISSING)
            overview = client.get_serve_status(name)
            serve_status = str(overview.app_status.status.value)
            message = str(overview.app_status.message)
            status = _STATUSES.get(serve_status)
            if status is None:
                return ObservedApp(AppStatus.UNHEALTHY, f"unknown Serve status {serve_status}: {message}")
            if status in _MAYBE_UNPLACED:
                problem = self._placement_problem(client, name)
                if problem is not None:
                    return ObservedApp(problem.status, problem.message)
        return ObservedApp(status, message)

    def _placement_problem(self, client: Any, name: str) -> PlacementProblem | None:
        """Why replicas of app ``name`` that Serve wants running have no node, or None."""
        application = ServeInstanceDetails(**client.get_serve_details()).applications.get(name)
        if application is None:
            return None
        cluster: ClusterResources | None = None
        for deployment in application.deployments.values():
            if deployment.target_num_replicas < 1:
                continue
            request = {
                str(key): float(value)
                for key, value in deployment.required_resources.items()
                if isinstance(value, int | float) and value > 0
            }
            waiting = sum(
                1 for replica in deployment.replicas if replica.state == _STARTING and not replica.node_id
            )
            cluster = cluster or self.cluster_resources()
            problem = placement_problem(request, cluster.nodes, waiting=waiting, pending=cluster.pending)
            if problem is not None:
                return problem
        return None

    def cluster_resources(self) -> ClusterResources:
        """Every alive node's total and free resources and the requests waiting for room, read from
        the GCS in one call (through a Ray client connection, ``ray://``, only the nodes' totals)."""
        if self._address.startswith("ray://"):
            nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
            totals = [dict(node["Resources"]) for node in nodes if node.get("Alive")]
            return ClusterResources(tuple(NodeResources(total, total) for total in totals))
        with self._lock:
            if self._gcs is None:
                use_token_auth_from_environment()
                self._gcs = GcsClient(address=self._address)
            gcs = self._gcs
        reply = GetClusterResourceStateReply()
        reply.ParseFromString(gcs.get_cluster_resource_state(timeout_s=_CONTROLLER_TIMEOUT_S))
        state = reply.cluster_resource_state
        return ClusterResources(
            nodes=tuple(
                NodeResources(dict(node.total_resources), dict(node.available_resources))
                for node in state.node_states
                if node.status != NodeStatus.DEAD
            ),
            pending=tuple(
                dict(request.request.resources_bundle) for request in state.pending_resource_requests
            ),
        )

    def delete(self, gateway_id: str, environment: str) -> None:
        validate_app_ref(gateway_id, environment)
        self._delete_app(serve_app_name(gateway_id, environment))

    def _delete_app(self, name: str) -> None:
        with self._translated(f"deleting {name}"):
            client = self._serve_client()
            if client is not None:
                # serve.delete(_blocking=False) does not even wait for the controller to accept the
                # deletion; this waits for that (errors surface here), not for the replicas to stop.
                ray.get(client._controller.delete_apps.remote([name]), timeout=_CONTROLLER_TIMEOUT_S)

    def list_apps(self) -> list[str]:
        with self._translated("listing applications"):
            client = self._serve_client()
            if client is None:
                return []
            details = ServeInstanceDetails(**client.get_serve_details())
        return sorted(
            name
            for name, app in details.applications.items()
            if _is_environment_app(name, app.route_prefix, set(app.deployments))
        )

    def ping(self) -> None:
        with self._translated("answering a ping"):
            self._connect()
            if not _reachable(self._host, self._port, self._settings.dependency_timeout_seconds):
                raise Unavailable(f"Ray at {self._address} is not reachable; check that the Ray head runs.")

    def close(self) -> None:
        with self._lock:
            if self._owns_connection and ray.is_initialized():
                ray.shutdown()
            self._connected = self._owns_connection = self._serve_started = False
            self._gcs = None

    def _connect(self) -> None:
        """Connect this process to the cluster once; fail fast when nothing listens there."""
        with self._lock:
            if self._connected:
                return
            if not _reachable(self._host, self._port, self._settings.dependency_timeout_seconds):
                raise Unavailable(
                    f"Ray at {self._address} is not reachable; start it (`imprun up`) or check "
                    "IMPRUN_RAY_ADDRESS."
                )
            if not ray.is_initialized():
                use_token_auth_from_environment()
                ray.init(
                    address=self._address,
                    namespace=_RAY_NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
                self._owns_connection = True
            elif not self._address.startswith("ray://"):
                connected_port = str(ray.get_runtime_context().gcs_address).rpartition(":")[2]
                if connected_port != str(self._port):
                    raise Invalid(
                        f"This process is already connected to the Ray cluster at port {connected_port}; "
                        f"it cannot also drive {self._address}."
                    )
            self._connected = True

    def _serve_client(self) -> Any:
        """Serve's controller client, or None when Serve has not been started on the cluster."""
        self._connect()
        return _get_global_client(raise_if_no_controller_running=False)

    def _ensure_serve(self) -> None:
        """Start Serve with our HTTP host and port unless it runs (the embedded head starts it itself)."""
        with self._lock:
            if self._serve_started:
                return
            if self._serve_client() is None:
                serve.start(http_options={"host": self._settings.host, "port": self._settings.serve_port})
            self._serve_started = True

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Map Ray's exceptions to ours: the cluster failing is temporary, a rejected spec is not."""
        try:
            yield
        except ImprunError:
            raise
        except (RayServeException, ValueError, TypeError) as exc:
            raise Invalid(f"Ray Serve refused {action}: {_first_line(exc)}") from exc
        except (RayError, ConnectionError, TimeoutError, OSError, RuntimeError) as exc:
            raise Unavailable(
                f"Ray at {self._address} failed while {action}: {_first_line(exc)}; retry later."
            ) from exc


def runtime_config(
    settings: Settings, api_key_pepper: bytes = b"", variables_key: bytes = b""
) -> RuntimeConfig:
    """What replicas need from the settings: services, limits, whether tenant code may run unjailed,
    the pepper of API-key lookup hashes (``MasterKey.derive("api-key-lookup")``) and the key that opens
    environment variables (``MasterKey.derive("environment-variables")``; without it ``imp.env`` is empty)."""
    return RuntimeConfig(
        mongo_url=settings.mongo_url,
        redis_url=settings.redis_url,
        sys_db_name=settings.sys_db_name,
        insecure_dev=settings.insecure_dev,
        max_request_bytes=settings.max_request_bytes,
        worker_pool_size=settings.worker_pool_size,
        egress_allow=settings.egress_allow,
        egress_denied_ports=_ray_ports(settings),
        api_key_pepper=api_key_pepper.hex(),
        variables_key=variables_key.hex(),
        log_retention_entries=settings.log_retention_entries,
        gateway_db_max_bytes=settings.quota_gateway_db_mb * 1024 * 1024,
        log_max_bytes=int(settings.quota_log_mb_per_environment * 1024 * 1024),
    )


def shared_runtime_spec(
    settings: Settings,
    api_key_pepper: bytes = b"",
    variables_key: bytes = b"",
    *,
    mongo_url: str | None = None,
    redis_url: str | None = None,
) -> PlatformAppSpec:
    """The shared tier's platform application (``ray_apps.shared_runtime``) with the replicas'
    ``RuntimeConfig`` and the tier's settings (``IMPRUN_SHARED_*``); ``mongo_url`` and ``redis_url``,
    when given, are the shared runtime's own logins instead of the platform's."""
    runtime = runtime_config(settings, api_key_pepper, variables_key)
    runtime = replace(
        runtime, mongo_url=mongo_url or runtime.mongo_url, redis_url=redis_url or runtime.redis_url
    )
    return PlatformAppSpec(
        name=SHARED_RUNTIME_APP,
        import_path=SHARED_RUNTIME_IMPORT_PATH,
        route_prefix="/",
        args={
            "runtime": runtime.to_args(),
            "max_environments": settings.shared_max_environments,
            "idle_seconds": settings.shared_idle_seconds,
            "memory_budget_mb": settings.shared_memory_budget_mb,
            "worker_pool_size": settings.shared_worker_pool_size,
            "worker_pool_max": settings.shared_worker_pool_max,
            "spare_workers": settings.shared_spare_workers,
        },
        replicas=settings.shared_replicas,
        cpu=settings.replica_reserved_cpu,
        env_vars=ENVIRONMENT_REPLICA_ENV_VARS,
    )


def _ray_ports(settings: Settings) -> tuple[int, ...]:
    """Ray's ports the settings name (GCS or client server, dashboard), refused to ``imp.fetch``."""
    port = (settings.ray_address or "").rpartition(":")[2]
    named = {settings.embedded_ray_port, settings.dashboard_port, *([int(port)] if port.isdigit() else [])}
    return tuple(sorted(named))


def _deployment_options(spec: AppSpec, cpu: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "ray_actor_options": replica_actor_options(
            cpu, spec.memory_mb, spec.resources, env_vars=ENVIRONMENT_REPLICA_ENV_VARS
        )
    }
    if spec.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": spec.min_replicas,
            "max_replicas": spec.max_replicas,
        }
    else:
        options["num_replicas"] = spec.min_replicas
    return options


def _is_environment_app(name: str, prefix: str | None, deployments: set[str]) -> bool:
    """An application this driver deployed: ``<gw>-<env>`` at ``/<gw>/<env>``, only FunctionActor."""
    segments = (prefix or "").strip("/").split("/")
    return len(segments) == 2 and "-".join(segments) == name and deployments <= {DEPLOYMENT_NAME}


@functools.cache
def _code_version() -> str:
    """A digest of the code replicas run; it changes (and replicas restart) only when that code does."""
    digest = hashlib.sha256()
    for package in ("ray_apps", "runtime_actors"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            root = Path(location)
            for source in sorted(root.rglob("*.py")):
                digest.update(source.relative_to(root.parent).as_posix().encode())
                digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def use_token_auth_from_environment() -> None:
    """Make this process present Ray's token if ``RAY_AUTH_MODE=token`` is set (see ``ray_head``).

    Ray reads its authentication mode once, when it is imported, and ``ray.init`` with an explicit
    address never switches to token mode by itself; a process that set the variable after importing
    Ray (the control plane of ``imprun up``, a test session) has Ray read its configuration again.
    """
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        RayConfig.initialize("")


def _reachable(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
