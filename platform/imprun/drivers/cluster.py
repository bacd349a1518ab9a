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

from dataclasses import dataclass
from typing import Protocol

from imprun.domain.naming import ENVIRONMENT_NAMES, route_prefix, serve_app_name, validate_gateway_id
from imprun.domain.observations import AppStatus
from imprun.errors import Invalid

__all__ = ["AppSpec", "AppStatus", "ClusterDriver", "ObservedApp", "validate_app_ref"]


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
    between them (``min_replicas`` may be 0). ``cpu`` is the CPU share reserved per replica and
    ``memory_mb`` the memory reserved per replica (0 reserves none).
    """

    gateway_id: str
    environment: str
    min_replicas: int
    max_replicas: int
    cpu: float
    memory_mb: int

    def __post_init__(self) -> None:
        validate_app_ref(self.gateway_id, self.environment)
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
class ObservedApp:
    """One observation of an environment's application; ``message`` explains failures."""

    status: AppStatus
    message: str = ""


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

    def ping(self) -> None:
        """Return if the cluster answers, raise ``Unavailable`` if not (readiness checks)."""
        ...

    def close(self) -> None:
        """Release the connection; the applications keep running."""
        ...
