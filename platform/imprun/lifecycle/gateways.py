"""The gateway reconciler: provisions a gateway's database and environments, starts, stops, deletes.

It observes the gateway database, the environment records and (while tearing down) the Serve apps
still present, lets ``decide_gateway`` choose, and applies the steps through the store and the
cluster driver. Environments do the per-app work themselves; this reconciler only points them at a
desired state and waits for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from imprun.domain.conditions import ConditionType, find_condition
from imprun.domain.decide import decide_gateway
from imprun.domain.environment import Environment
from imprun.domain.gateway import Gateway
from imprun.domain.naming import ENVIRONMENT_NAMES, serve_app_name
from imprun.domain.observations import GatewayObservation, ObservedEnvironment
from imprun.domain.phases import Phase
from imprun.domain.steps import (
    CreateDatabase,
    CreateEnvironments,
    DeleteApps,
    DeleteEnvironmentRecords,
    DeleteGatewayRecord,
    DropDatabase,
    GatewayStep,
    SetEnvironmentsDesired,
)
from imprun.drivers.cluster import ClusterDriver
from imprun.drivers.k8s_scope import GatewayScopedDriver
from imprun.errors import Conflict
from imprun.lifecycle.reconciler import Reconciler
from imprun.store.gateway_databases import GatewayDatabases
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository
from imprun.store.runtime_logins import RuntimeLogins


def failure_reason(resource: Gateway | Environment) -> str | None:
    failed = find_condition(resource.conditions, ConditionType.FAILED)
    return failed.reason if failed is not None and failed.status else None


def _incarnation(gateway: Gateway) -> str:
    """Tells a gateway from an earlier one of the same id (ids are reused once deleted)."""
    return gateway.created_at.isoformat()


class GatewayReconciler(Reconciler[Gateway, GatewayObservation, GatewayStep]):
    kind = "gateway"

    def __init__(
        self,
        gateways: GatewayRepository,
        environments: EnvironmentRepository,
        databases: GatewayDatabases,
        driver: ClusterDriver,
        *,
        forget_functions: Callable[[str], None] = lambda gateway_id: None,
        forget_previous_incarnation: Callable[[str, datetime], None] = lambda gateway_id, before: None,
        logins: RuntimeLogins | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(gateways, **kwargs)  # type: ignore[arg-type]
        self.forget_functions = forget_functions
        self.forget_previous_incarnation = forget_previous_incarnation
        self.gateways = gateways
        self.environments = environments
        self.databases = databases
        self.driver = driver
        self.logins = logins

    def key(self, resource: Gateway) -> str:
        return resource.gateway_id

    def observe(self, resource: Gateway, now: datetime) -> GatewayObservation:
        gw = resource.gateway_id
        records = self.environments.of_gateway(gw)
        apps_present: tuple[str, ...] = ()
        if resource.phase in (Phase.DELETING, Phase.DELETED):
            live = set(self.driver.list_apps())
            apps_present = tuple(env for env in ENVIRONMENT_NAMES if serve_app_name(gw, env) in live)
        return GatewayObservation(
            phase=resource.phase,
            # While it is created, only a database of this incarnation counts: one a deleted
            # namesake left behind is dropped and made anew (CreateDatabase), never adopted.
            database_exists=(
                self.databases.belongs_to(gw, _incarnation(resource))
                if resource.phase is Phase.CREATING
                else self.databases.exists(gw)
            ),
            environments=tuple(
                ObservedEnvironment(
                    name=e.name,
                    state=e.state,
                    phase=e.phase,
                    failed=e.failed,
                    failure_reason=failure_reason(e),
                )
                for e in records
            ),
            apps_present=apps_present,  # type: ignore[arg-type]
            failure_reason=failure_reason(resource),
            stuck=resource.is_stuck(now),
        )

    def decide(self, resource: Gateway, observed: GatewayObservation) -> Sequence[GatewayStep]:
        return decide_gateway(resource.state, observed)

    def apply(self, resource: Gateway, step: GatewayStep, now: datetime) -> Gateway | None:
        gw = resource.gateway_id
        match step:
            case CreateDatabase():
                self.databases.drop(gw)  # one a deleted gateway of the same id left behind
                if self.logins is not None:  # its own users first: a crash leaves no database without them
                    self.logins.ensure(gw)
                self.databases.create(gw, _incarnation(resource))
                self.forget_previous_incarnation(gw, resource.created_at)
            case CreateEnvironments(names=names, state=state):
                for name in names:
                    try:
                        self.environments.insert(
                            Environment.new(gateway_id=gw, name=name, state=state, now=now),
                            conflict_message="environment exists",
                        )
                    except Conflict:
                        pass  # created by an earlier, interrupted tick
            case SetEnvironmentsDesired(state=state):
                self.environments.set_desired_of_gateway(gw, state)
            case DeleteApps(names=names):
                for name in names:
                    self.driver.delete(gw, name)
            case DropDatabase():  # what hangs off the database first: the step repeats until it is gone
                if isinstance(self.driver, GatewayScopedDriver):  # e.g. the gateway's namespace
                    self.driver.release_gateway(gw)
                if self.logins is not None:
                    self.logins.drop(gw)
                self.databases.drop(gw)
            case DeleteEnvironmentRecords():
                self.forget_functions(gw)  # drafts, history, deployments: nothing may outlive the gateway
                self.environments.delete_of_gateway(gw)
            case DeleteGatewayRecord():
                self.gateways.delete(gw)
                return None
            case _:
                raise TypeError(f"the gateway reconciler cannot apply {step!r}")
        return resource
