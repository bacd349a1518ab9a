"""The environment reconciler: keeps each environment's Serve app deployed, updated, or gone — and its
ingress route (auth type, rate limit) published.

The app spec comes from the owning gateway's bundle; the spec last deployed is remembered next to
the record (store bookkeeping), so a changed bundle is noticed and rolled out as an in-place update.
The ingress route is handled the same way: the route last given to the ``IngressDriver`` is kept as
``appliedRoute`` bookkeeping, and ``decide_ingress`` (pure) asks for ``apply_environment`` whenever the
environment's auth type or rate limit differ from it, again each time the environment becomes
Started, and for ``delete_environment`` once it is being torn down. Ingress steps come before the
lifecycle steps, so a route is removed before its environment is marked Deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from imprun.domain.decide import decide_environment
from imprun.domain.environment import Environment
from imprun.domain.gateway import Bundle
from imprun.domain.observations import EnvironmentObservation
from imprun.domain.phases import DesiredState, Phase
from imprun.domain.steps import DeleteApp, DeployApp, EnvironmentStep
from imprun.drivers.cluster import AppSpec, ClusterDriver
from imprun.drivers.ingress import EnvironmentRoute, IngressDriver
from imprun.errors import NotFound
from imprun.lifecycle.gateways import failure_reason
from imprun.lifecycle.reconciler import Reconciler
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository, environment_key

ROUTE_REMOVED: Mapping[str, Any] = {"removed": True}
"""``appliedRoute`` once the route was deleted from the ingress (teardown is then done)."""


def app_spec(environment: Environment, bundle: Bundle) -> AppSpec:
    return AppSpec(
        gateway_id=environment.gateway_id,
        environment=environment.name,
        min_replicas=bundle.min_replicas,
        max_replicas=bundle.max_replicas,
        cpu=bundle.cpu,
        memory_mb=bundle.memory_mb,
        resources=bundle.resources,
    )


def ingress_route(environment: Environment, upstream: tuple[str, int]) -> EnvironmentRoute:
    return EnvironmentRoute(
        gateway_id=environment.gateway_id,
        environment=environment.name,
        auth_type=environment.auth_type.value,
        rate_limit=environment.rate_limit,
        upstream_host=upstream[0],
        upstream_port=upstream[1],
    )


def route_record(environment: Environment, route: EnvironmentRoute) -> dict[str, Any]:
    """What ``appliedRoute`` holds: the route, and which start it was applied for (None unless Started)."""
    started = environment.phase_since.isoformat() if environment.phase is Phase.STARTED else None
    limit = route.rate_limit.model_dump() if route.rate_limit is not None else None
    return {**asdict(route), "rate_limit": limit, "startedAt": started}


# --- ingress steps (lifecycle-local: the domain's step types cover the Serve app only) -------------


@dataclass(frozen=True, slots=True)
class ApplyIngressRoute:
    """Give the ingress the environment's route: auth type and rate limit."""


@dataclass(frozen=True, slots=True)
class RemoveIngressRoute:
    """Delete the environment's route from the ingress (a missing one is fine)."""


IngressStep = ApplyIngressRoute | RemoveIngressRoute


def decide_ingress(
    environment: Environment, desired: Mapping[str, Any], applied: Mapping[str, Any] | None
) -> list[IngressStep]:
    """Pure: remove the route while tearing down (until recorded removed), else apply it when it
    differs from what was last applied."""
    tearing_down = environment.state is DesiredState.DELETED or environment.phase in (
        Phase.DELETING,
        Phase.DELETED,
    )
    if tearing_down:
        return [] if applied == ROUTE_REMOVED else [RemoveIngressRoute()]
    return [] if applied == desired else [ApplyIngressRoute()]


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    """The environment reconciler's observation: the Serve app's and the ingress route's."""

    app: EnvironmentObservation
    route_wanted: Mapping[str, Any] | None = None
    """``route_record`` of the route the environment should have; None without an ingress driver."""
    route_applied: Mapping[str, Any] | None = None


class EnvironmentReconciler(
    Reconciler[Environment, EnvironmentState, EnvironmentStep | ApplyIngressRoute | RemoveIngressRoute]
):
    kind = "environment"

    def __init__(
        self,
        environments: EnvironmentRepository,
        gateways: GatewayRepository,
        driver: ClusterDriver,
        *,
        ingress: IngressDriver | None = None,
        upstream: tuple[str, int] = ("127.0.0.1", 8000),
        **kwargs: object,
    ) -> None:
        super().__init__(environments, **kwargs)  # type: ignore[arg-type]
        self.environments = environments
        self.gateways = gateways
        self.driver = driver
        self.ingress = ingress
        self.upstream = upstream

    def key(self, resource: Environment) -> str:
        return environment_key(resource.gateway_id, resource.name)

    def _spec(self, resource: Environment) -> AppSpec:
        gateway = self.gateways.get(resource.gateway_id)
        if gateway is None:
            raise NotFound(f"gateway {resource.gateway_id} of environment {resource.name} is gone")
        return app_spec(resource, gateway.bundle)

    def observe(self, resource: Environment, now: datetime) -> EnvironmentState:
        app = self.driver.observe(resource.gateway_id, resource.name)
        applied = self.environments.bookkeeping(self.key(resource), "appliedSpec")
        up_to_date = True
        if app.status.exists and resource.state.value == "Running":
            up_to_date = applied == asdict(self._spec(resource))
        observation = EnvironmentObservation(
            phase=resource.phase,
            app_status=app.status,
            app_up_to_date=up_to_date,
            app_message=app.message[:500],
            failure_reason=failure_reason(resource),
            stuck=resource.is_stuck(now),
        )
        if self.ingress is None:
            return EnvironmentState(observation)
        return EnvironmentState(
            observation,
            route_wanted=route_record(resource, ingress_route(resource, self.upstream)),
            route_applied=self.environments.bookkeeping(self.key(resource), "appliedRoute"),
        )

    def decide(
        self, resource: Environment, observed: EnvironmentState
    ) -> Sequence[EnvironmentStep | IngressStep]:
        lifecycle = decide_environment(resource.state, observed.app)
        if observed.route_wanted is None:
            return lifecycle
        return [*decide_ingress(resource, observed.route_wanted, observed.route_applied), *lifecycle]

    def apply(
        self, resource: Environment, step: EnvironmentStep | IngressStep, now: datetime
    ) -> Environment | None:
        match step:
            case DeployApp():
                spec = self._spec(resource)
                self.driver.apply(spec)
                self.update_leased(self.key(resource), {"appliedSpec": asdict(spec)})
            case DeleteApp():
                self.driver.delete(resource.gateway_id, resource.name)
            case ApplyIngressRoute() if self.ingress is not None:
                route = ingress_route(resource, self.upstream)
                self.ingress.apply_environment(route)
                self.update_leased(self.key(resource), {"appliedRoute": route_record(resource, route)})
            case RemoveIngressRoute() if self.ingress is not None:
                self.ingress.delete_environment(resource.gateway_id, resource.name)
                self.update_leased(self.key(resource), {"appliedRoute": dict(ROUTE_REMOVED)})
            case _:
                raise TypeError(f"the environment reconciler cannot apply {step!r}")
        return resource
