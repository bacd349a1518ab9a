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

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from imprun.domain.decide import decide_environment
from imprun.domain.environment import Environment
from imprun.domain.gateway import Bundle, Tier
from imprun.domain.observations import AppStatus, EnvironmentObservation
from imprun.domain.phases import DesiredState, Phase
from imprun.domain.steps import DeleteApp, DeployApp, EnvironmentStep
from imprun.drivers.cluster import AppSpec, ClusterDriver, ObservedApp
from imprun.drivers.ingress import EnvironmentRoute, IngressDriver
from imprun.errors import NotFound
from imprun.lifecycle.gateways import failure_reason
from imprun.lifecycle.reconciler import Reconciler
from imprun.store.lifecycle import (
    SHARED_RELEASED_AT,
    EnvironmentRepository,
    GatewayRepository,
    environment_key,
)
from imprun.store.runtime_logins import RuntimeLogins
from runtime_actors.shared.names import NOT_PLACED, PLACED, SHARED_PLACEMENT, SHARED_RUNTIME_APP

ROUTE_REMOVED: Mapping[str, Any] = {"removed": True}
"""``appliedRoute`` once the route was deleted from the ingress (teardown is then done)."""


def app_spec(environment: Environment, bundle: Bundle) -> AppSpec:
    return AppSpec(
        tier=bundle.tier.value,
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
    """Give the ingress the environment's route: auth type, rate limit and upstream."""

    route: EnvironmentRoute


@dataclass(frozen=True, slots=True)
class RemoveIngressRoute:
    """Delete the environment's route from the ingress (a missing one is fine)."""


IngressStep = ApplyIngressRoute | RemoveIngressRoute


# --- tier steps: the hand-over between the shared runtime and a dedicated application ---------------


@dataclass(frozen=True, slots=True)
class RemoveDedicatedApp:
    """Delete the environment's dedicated application: the shared tier serves it now (or it is down)."""


@dataclass(frozen=True, slots=True)
class ClearSharedPlacement:
    """Stop the shared runtime from serving the environment: its dedicated application serves it now
    (or it is down)."""


TierStep = RemoveDedicatedApp | ClearSharedPlacement


def decide_tier(
    tier: Tier,
    running: bool,
    placed: bool,
    dedicated: AppStatus,
    shared: AppStatus,
    dedicated_up_to_date: bool,
) -> list[TierStep]:
    """Pure: hand the environment from one tier to the other only once the new one serves it, so a
    move drops no call; when the environment is down, remove whatever is left of either tier."""
    if tier is Tier.SHARED:
        left_over = dedicated.exists and dedicated is not AppStatus.DELETING
        serving = placed and shared is AppStatus.RUNNING
        return [RemoveDedicatedApp()] if left_over and (serving or not running) else []
    serving = dedicated is AppStatus.RUNNING and dedicated_up_to_date
    return [ClearSharedPlacement()] if placed and (serving or not running) else []


def serving_tier(
    tier: Tier, placed: bool, shared: AppStatus, dedicated: AppStatus, dedicated_up_to_date: bool
) -> Tier:
    """Pure: the tier the ingress should send the environment's calls to — the wanted one once it
    serves, until then the other one if it still serves (a move switches the route only when the new
    tier answers, and ``decide_tier`` lets the old one go only then)."""
    shared_serves = placed and shared is AppStatus.RUNNING
    dedicated_serves = dedicated is AppStatus.RUNNING and dedicated_up_to_date
    if tier is Tier.SHARED:
        return Tier.DEDICATED if dedicated_serves and not shared_serves else Tier.SHARED
    return Tier.SHARED if shared_serves and not dedicated_serves else Tier.DEDICATED


Upstream = Callable[[str, str, str], tuple[str, int]]
"""``(gateway id, environment, tier) -> (host, port)`` of the Serve ingress serving that tier."""


def decide_ingress(
    environment: Environment, route: EnvironmentRoute, applied: Mapping[str, Any] | None
) -> list[IngressStep]:
    """Pure: remove the route while tearing down (until recorded removed), else apply ``route`` when
    its record differs from what was last applied."""
    tearing_down = environment.state is DesiredState.DELETED or environment.phase in (
        Phase.DELETING,
        Phase.DELETED,
    )
    if tearing_down:
        return [] if applied == ROUTE_REMOVED else [RemoveIngressRoute()]
    return [] if applied == route_record(environment, route) else [ApplyIngressRoute(route)]


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    """The environment reconciler's observation: the Serve app's (the dedicated application, or the
    shared runtime while the environment is placed there), the tiers' and the ingress route's."""

    app: EnvironmentObservation
    tier_steps: tuple[TierStep, ...] = ()
    route: EnvironmentRoute | None = None
    """The route the environment should have (to the tier serving it); None without an ingress."""
    route_applied: Mapping[str, Any] | None = None


_SHARED_STATUS_TTL_S = 1.0
"""How long one reading of the shared runtime's status (and of the list of applications) serves every
environment's observation."""


class EnvironmentReconciler(
    Reconciler[Environment, EnvironmentState, EnvironmentStep | IngressStep | TierStep]
):
    kind = "environment"

    def __init__(
        self,
        environments: EnvironmentRepository,
        gateways: GatewayRepository,
        driver: ClusterDriver,
        *,
        ingress: IngressDriver | None = None,
        upstream: tuple[str, int] | Upstream = ("127.0.0.1", 8000),
        logins: RuntimeLogins | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(environments, **kwargs)  # type: ignore[arg-type]
        self.environments = environments
        self.gateways = gateways
        self.driver = driver
        self.ingress = ingress
        self.logins = logins
        if callable(upstream):
            self.upstream: Upstream = upstream
        else:
            address = upstream  # one Serve ingress for every environment and tier (local Ray)
            self.upstream = lambda gateway_id, environment, tier: address
        self._shared_status: tuple[float, AppStatus, str] | None = None
        self._apps: tuple[float, frozenset[str]] | None = None

    def key(self, resource: Environment) -> str:
        return environment_key(resource.gateway_id, resource.name)

    def _spec(self, resource: Environment) -> AppSpec:
        gateway = self.gateways.get(resource.gateway_id)
        if gateway is None:
            raise NotFound(f"gateway {resource.gateway_id} of environment {resource.name} is gone")
        return app_spec(resource, gateway.bundle)

    def _tier(self, resource: Environment) -> Tier:
        gateway = self.gateways.get(resource.gateway_id)
        return gateway.bundle.tier if gateway is not None else Tier.DEDICATED

    def _shared(self) -> tuple[AppStatus, str]:
        """The shared runtime's status (read at most once a second for all environments)."""
        now = time.monotonic()
        if self._shared_status is None or now - self._shared_status[0] > _SHARED_STATUS_TTL_S:
            observed = self.driver.observe_platform_app(SHARED_RUNTIME_APP)
            self._shared_status = (now, observed.status, observed.message)
        return self._shared_status[1], self._shared_status[2]

    def _has_app(self, resource: Environment) -> bool:
        """Whether the environment has a dedicated application (the list read at most once a second
        for all environments: a shared one only looks for a leftover of a move)."""
        now = time.monotonic()
        if self._apps is None or now - self._apps[0] > _SHARED_STATUS_TTL_S:
            self._apps = (now, frozenset(self.driver.list_apps()))
        return resource.serve_app_name in self._apps[1]

    def observe(self, resource: Environment, now: datetime) -> EnvironmentState:
        key = self.key(resource)
        running = resource.state is DesiredState.RUNNING
        tier = self._tier(resource)
        if tier is Tier.DEDICATED or self._has_app(resource):
            dedicated = self.driver.observe(resource.gateway_id, resource.name)
        else:
            dedicated = ObservedApp(AppStatus.MISSING)
        placed = self.environments.bookkeeping(key, SHARED_PLACEMENT) == PLACED
        shared, shared_message = self._shared() if placed or tier is Tier.SHARED else (AppStatus.MISSING, "")
        applied = self.environments.bookkeeping(key, "appliedSpec")
        up_to_date = True
        if running and (dedicated.status.exists or placed):
            up_to_date = applied == asdict(self._spec(resource))
        if tier is Tier.SHARED:
            # the shared runtime is the environment's app once it is placed there; while the platform
            # brings the runtime up, the environment waits for it (Deploying), it is not missing
            missing = shared is AppStatus.MISSING
            status = (AppStatus.DEPLOYING if missing else shared) if placed else AppStatus.MISSING
            message = shared_message
        else:
            status, message = dedicated.status, dedicated.message
        observation = EnvironmentObservation(
            phase=resource.phase,
            app_status=status,
            app_up_to_date=up_to_date,
            app_message=message[:500],
            failure_reason=failure_reason(resource),
            stuck=resource.is_stuck(now),
        )
        tier_steps = tuple(
            decide_tier(
                tier,
                running,
                placed,
                dedicated.status,
                shared,
                applied == asdict(self._spec(resource)) if running else True,
            )
        )
        if self.ingress is None:
            return EnvironmentState(observation, tier_steps)
        serving = serving_tier(tier, placed, shared, dedicated.status, up_to_date)
        upstream = self.upstream(resource.gateway_id, resource.name, serving.value)
        return EnvironmentState(
            observation,
            tier_steps,
            route=ingress_route(resource, upstream),
            route_applied=self.environments.bookkeeping(key, "appliedRoute"),
        )

    def decide(
        self, resource: Environment, observed: EnvironmentState
    ) -> Sequence[EnvironmentStep | IngressStep | TierStep]:
        lifecycle = [*decide_environment(resource.state, observed.app), *observed.tier_steps]
        if observed.route is None:
            return lifecycle
        return [*decide_ingress(resource, observed.route, observed.route_applied), *lifecycle]

    def apply(
        self, resource: Environment, step: EnvironmentStep | IngressStep | TierStep, now: datetime
    ) -> Environment | None:
        match step:
            case DeployApp():
                spec = self._spec(resource)
                if spec.tier == Tier.SHARED.value:  # the shared runtime serves it from now on
                    if self.logins is not None:  # its logins may reach the gateway first
                        self.logins.grant_shared(resource.gateway_id)
                    self.update_leased(
                        self.key(resource), {"appliedSpec": asdict(spec), SHARED_PLACEMENT: PLACED}
                    )
                else:
                    if self.logins is not None:  # the logins its replicas get (made again if lost)
                        self.logins.ensure(resource.gateway_id)
                    self.driver.apply(spec)
                    self.update_leased(self.key(resource), {"appliedSpec": asdict(spec)})
            case DeleteApp():
                if self._tier(resource) is Tier.SHARED:
                    self.update_leased(
                        self.key(resource), {SHARED_PLACEMENT: NOT_PLACED, SHARED_RELEASED_AT: now}
                    )
                else:
                    self.driver.delete(resource.gateway_id, resource.name)
            case RemoveDedicatedApp():
                self.driver.delete(resource.gateway_id, resource.name)
            case ClearSharedPlacement():
                self.update_leased(
                    self.key(resource), {SHARED_PLACEMENT: NOT_PLACED, SHARED_RELEASED_AT: now}
                )
            case ApplyIngressRoute(route=route) if self.ingress is not None:
                self.ingress.apply_environment(route)
                self.update_leased(self.key(resource), {"appliedRoute": route_record(resource, route)})
            case RemoveIngressRoute() if self.ingress is not None:
                self.ingress.delete_environment(resource.gateway_id, resource.name)
                self.update_leased(self.key(resource), {"appliedRoute": dict(ROUTE_REMOVED)})
            case _:
                raise TypeError(f"the environment reconciler cannot apply {step!r}")
        return resource
