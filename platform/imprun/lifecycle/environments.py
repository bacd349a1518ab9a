"""The environment reconciler: keeps each environment's Serve app deployed, updated, or gone.

The app spec comes from the owning gateway's bundle; the spec last deployed is remembered next to
the record (store bookkeeping), so a changed bundle is noticed and rolled out as an in-place update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from imprun.domain.decide import decide_environment
from imprun.domain.environment import Environment
from imprun.domain.gateway import Bundle
from imprun.domain.observations import EnvironmentObservation
from imprun.domain.steps import DeleteApp, DeployApp, EnvironmentStep
from imprun.drivers.cluster import AppSpec, ClusterDriver
from imprun.errors import NotFound
from imprun.lifecycle.gateways import failure_reason
from imprun.lifecycle.reconciler import Reconciler
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository, environment_key


def app_spec(environment: Environment, bundle: Bundle) -> AppSpec:
    return AppSpec(
        gateway_id=environment.gateway_id,
        environment=environment.name,
        min_replicas=bundle.min_replicas,
        max_replicas=bundle.max_replicas,
        cpu=bundle.cpu,
        memory_mb=bundle.memory_mb,
    )


class EnvironmentReconciler(Reconciler[Environment, EnvironmentObservation, EnvironmentStep]):
    kind = "environment"

    def __init__(
        self,
        environments: EnvironmentRepository,
        gateways: GatewayRepository,
        driver: ClusterDriver,
        **kwargs: object,
    ) -> None:
        super().__init__(environments, **kwargs)  # type: ignore[arg-type]
        self.environments = environments
        self.gateways = gateways
        self.driver = driver

    def key(self, resource: Environment) -> str:
        return environment_key(resource.gateway_id, resource.name)

    def _spec(self, resource: Environment) -> AppSpec:
        gateway = self.gateways.get(resource.gateway_id)
        if gateway is None:
            raise NotFound(f"gateway {resource.gateway_id} of environment {resource.name} is gone")
        return app_spec(resource, gateway.bundle)

    def observe(self, resource: Environment, now: datetime) -> EnvironmentObservation:
        app = self.driver.observe(resource.gateway_id, resource.name)
        applied = self.environments.bookkeeping(self.key(resource), "appliedSpec")
        up_to_date = True
        if app.status.exists and resource.state.value == "Running":
            up_to_date = applied == asdict(self._spec(resource))
        return EnvironmentObservation(
            phase=resource.phase,
            app_status=app.status,
            app_up_to_date=up_to_date,
            app_message=app.message[:500],
            failure_reason=failure_reason(resource),
            stuck=resource.is_stuck(now),
        )

    def decide(self, resource: Environment, observed: EnvironmentObservation) -> Sequence[EnvironmentStep]:
        return decide_environment(resource.state, observed)

    def apply(self, resource: Environment, step: EnvironmentStep, now: datetime) -> Environment | None:
        match step:
            case DeployApp():
                spec = self._spec(resource)
                self.driver.apply(spec)
                self.environments.update(self.key(resource), {"appliedSpec": asdict(spec)})
            case DeleteApp():
                self.driver.delete(resource.gateway_id, resource.name)
            case _:
                raise TypeError(f"the environment reconciler cannot apply {step!r}")
        return resource
