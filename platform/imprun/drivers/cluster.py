"""The ``ClusterDriver`` Protocol: how the control plane runs gateway environments on a Ray cluster.

One gateway environment is one Serve application named ``<gw>-<env>`` behind the route prefix
``/<gw>/<env>``. Reconcilers describe what they want with an ``AppSpec``, read back an
``ObservedApp`` and never wait for replicas: ``apply`` and ``delete`` return once the cluster has
accepted the request, and the next tick's ``observe`` tells how it went. Implementations translate
their client's exceptions at this boundary into ``imprun.errors.Unavailable`` (the cluster cannot be
reached right now; retry later) or ``imprun.errors.Invalid`` (the spec can never work). This module
holds only the Protocol and its value objects, so the layers above import it without importing Ray;
``imprun.drivers.local_ray`` is the implementation for a local Ray head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from imprun.domain.naming import ENVIRONMENT_NAMES, route_prefix, serve_app_name, validate_gateway_id
from imprun.domain.observations import AppStatus
from imprun.domain.placement import check_custom_resources
from imprun.errors import Invalid
from ray_apps.replica_http import MIDDLEWARES_IMPORT_PATH

__all__ = [
    "ENVIRONMENT_REPLICA_ENV_VARS",
    "REPLICA_ENV_VARS",
    "AppSpec",
    "AppStatus",
    "ClusterDriver",
    "ObservedApp",
    "PlatformAppSpec",
    "replica_actor_options",
    "validate_app_ref",
]

REPLICA_ENV_VARS: Final = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
"""The process environment of every replica imprun deploys (environments and platform apps).

Serve runs a deployment's code on a second event loop in its own thread by default, so that user
code that blocks cannot stall the replica's request handling. imprun's replicas run only imprun's
own non-blocking code (tenant code runs in jailed worker processes), so they run it on the replica's
main loop: no cross-thread hop per request (bench/throughput.py measures the difference)."""

ENVIRONMENT_REPLICA_ENV_VARS: Final = {
    **REPLICA_ENV_VARS,
    "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": MIDDLEWARES_IMPORT_PATH,
}
"""A gateway environment's replicas also skip Serve's per-request disconnect watch (``ray_apps.replica_http``:
the supervisor bounds every call with the function's timeout). Platform apps keep it: the AI gateway
streams MCP responses to clients that may go away."""


def replica_actor_options(
    cpu: float,
    memory_mb: int,
    resources: Mapping[str, float] | None = None,
    *,
    env_vars: Mapping[str, str] = REPLICA_ENV_VARS,
) -> dict[str, Any]:
    """Serve ``ray_actor_options`` of one imprun replica, for either driver."""
    options: dict[str, Any] = {"num_cpus": cpu, "runtime_env": {"env_vars": dict(env_vars)}}
    if memory_mb:
        options["memory"] = memory_mb * 1024 * 1024
    if resources:
        options["resources"] = dict(sorted(resources.items()))
    return options


def validate_app_ref(gateway_id: str, environment: str) -> None:
    """Raise ``Invalid`` unless ``gateway_id`` is a valid gateway id and ``environment`` one of ours."""
    validate_gateway_id(gateway_id)
    if environment not in ENVIRONMENT_NAMES:
        raise Invalid(
            f"Unknown environment {environment!r}: use one of {', '.join(ENVIRONMENT_NAMES)}.",
            details={"field": "environment", "value": environment},
        )


@dataclass(frozen=True, slots=True)
class AppSpec:
    """The desired shape of one environment's application.

    ``min_replicas == max_replicas`` asks for a fixed replica count; otherwise the cluster autoscales
    between them (``min_replicas`` may be 0). ``cpu`` is the CPU share reserved per replica,
    ``memory_mb`` the memory reserved per replica (0 reserves none) and ``resources`` the custom
    cluster resources each replica holds, which restricts replicas to the nodes offering them.
    """

    gateway_id: str
    environment: str
    min_replicas: int
    max_replicas: int
    cpu: float
    memory_mb: int
    resources: Mapping[str, float] = field(default_factory=dict)
    tier: str = "dedicated"
    """``dedicated``: this application; ``shared``: none, the shared runtime serves the environment."""

    def __post_init__(self) -> None:
        validate_app_ref(self.gateway_id, self.environment)
        if self.tier not in ("shared", "dedicated"):
            raise Invalid(f"tier must be 'shared' or 'dedicated', got {self.tier!r}.")
        try:
            object.__setattr__(self, "resources", check_custom_resources(self.resources))
        except ValueError as exc:
            raise Invalid(f"resources: {exc}.", details={"field": "resources"}) from exc
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise Invalid(
                f"replicas must satisfy 0 <= min_replicas <= max_replicas and max_replicas >= 1, got "
                f"min_replicas={self.min_replicas}, max_replicas={self.max_replicas}."
            )
        if not self.cpu >= 0:
            raise Invalid(f"cpu must be a non-negative number of cores, got {self.cpu}.")
        if self.memory_mb < 0:
            raise Invalid(f"memory_mb must be >= 0, got {self.memory_mb}.")

    @property
    def app_name(self) -> str:
        return serve_app_name(self.gateway_id, self.environment)

    @property
    def route_prefix(self) -> str:
        return route_prefix(self.gateway_id, self.environment)

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas != self.max_replicas


@dataclass(frozen=True, slots=True)
class PlatformAppSpec:
    """A platform-wide Serve application (the AI gateway): one per cluster, not per gateway.

    ``import_path`` names a builder ``module:function`` that takes ``args`` (JSON-able) and returns
    the Serve application, exactly as a ``serveConfigV2`` entry would; ``route_prefix`` is where the
    ingress sends it traffic (``/`` catches every path no environment claims).
    """

    name: str
    import_path: str
    route_prefix: str
    args: Mapping[str, Any] = field(default_factory=dict)
    replicas: int = 1
    cpu: float = 0.1
    memory_mb: int = 0
    env_vars: Mapping[str, str] = field(default_factory=lambda: dict(REPLICA_ENV_VARS))
    """The replicas' process environment (``ENVIRONMENT_REPLICA_ENV_VARS`` for the shared runtime)."""

    def __post_init__(self) -> None:
        module, _, attribute = self.import_path.partition(":")
        if not module or not attribute:
            raise Invalid(f"import_path must be 'module:builder', got {self.import_path!r}.")
        if not self.route_prefix.startswith("/"):
            raise Invalid(f"route_prefix must start with '/', got {self.route_prefix!r}.")
        if self.replicas < 1 or self.cpu < 0 or self.memory_mb < 0:
            raise Invalid("a platform application needs replicas >= 1, cpu >= 0 and memory_mb >= 0.")

    def digest(self) -> str:
        """Changes whenever anything a replica is built from does (its args included)."""
        shape = {
            "import_path": self.import_path,
            "route_prefix": self.route_prefix,
            "args": dict(self.args),
            "replicas": self.replicas,
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            **({"env_vars": dict(self.env_vars)} if self.env_vars != REPLICA_ENV_VARS else {}),
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ObservedApp:
    """One observation of an environment's application; ``message`` explains failures."""

    status: AppStatus
    message: str = ""


class FunctionRuntime(Protocol):
    """Runs code in an environment's sandbox on behalf of the control plane."""

    def debug(
        self, gateway_id: str, environment: str, code: str, invocation: dict[str, Any]
    ) -> dict[str, Any]:
        """Run ``code`` (unpublished) once with ``invocation`` (``{method?, path?, query?, headers?, body?}``);
        return ``{status, headers, body, logs, durationMs}``. Raises ``Conflict`` when the environment
        is not deployed, ``Unavailable`` when the cluster cannot be reached, ``Timeout``."""
        ...


class ClusterDriver(Protocol):
    """Runs gateway environments as Serve applications. Every method may raise ``Unavailable``."""

    def apply(self, spec: AppSpec) -> None:
        """Create or update the application; returns once the cluster accepted it (no waiting for
        replicas). Raises ``Invalid`` if the spec can never be deployed."""
        ...

    def observe(self, gateway_id: str, environment: str) -> ObservedApp:
        """The application's current status (``MISSING`` when it does not exist)."""
        ...

    def delete(self, gateway_id: str, environment: str) -> None:
        """Start deleting the application; returns at once. Deleting a missing application is fine."""
        ...

    def list_apps(self) -> list[str]:
        """Names of the imprun environment applications on the cluster (for orphan detection)."""
        ...

    def apply_platform_app(self, spec: PlatformAppSpec) -> None:
        """Create or update a platform-wide application (idempotent; no waiting for replicas)."""
        ...

    def observe_platform_app(self, name: str) -> ObservedApp:
        """A platform application's current status (``MISSING`` when it does not exist)."""
        ...

    def delete_platform_app(self, name: str) -> None:
        """Start deleting a platform application; deleting a missing one is fine."""
        ...

    def ping(self) -> None:
        """Return if the cluster answers, raise ``Unavailable`` if not (readiness checks)."""
        ...

    def close(self) -> None:
        """Release the connection; the applications keep running."""
        ...
