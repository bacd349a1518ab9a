"""The control plane's collaborators, built once at start by ``imprun.api.composition`` and handed
to routers through ``deps``; start-up preparation, readiness checks and shutdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from imprun.access import AccessService
from imprun.access.accounts import AccountService
from imprun.ai.config import AI_GATEWAY_APP
from imprun.ai.registry import McpToolRegistry
from imprun.api.admission import UserSlots
from imprun.api.quotas import Quotas
from imprun.drivers.cluster import ClusterDriver, FunctionRuntime
from imprun.drivers.ingress import IngressDriver
from imprun.functions import FunctionService
from imprun.functions.logs import FunctionLogService
from imprun.functions.variables import VariableService
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.loop import ReconcileLoop
from imprun.lifecycle.platform_apps import PlatformAppReconciler, PlatformAppState
from imprun.observability.metrics import Metrics
from imprun.security.api_keys import KeyVault
from imprun.security.client_address import TrustedProxies
from imprun.security.master_key import MasterKey
from imprun.settings import Settings
from imprun.store.mongo import Mongo, ensure_system_indexes, ping_mongo
from imprun.store.redis import Redis
from imprun.store.sessions import SessionStore
from imprun.store.shared_loads import SharedLoads
from imprun.store.users import UserRepository

ReadinessCheck = Callable[[], None]


@dataclass
class ControlPlane:
    """What the routers reach through ``deps``: the stores, the services, the drivers, the admission
    limits and the reconcile loop the app's lifespan starts and stops."""

    settings: Settings
    mongo: Mongo
    redis: Redis
    master_key: MasterKey
    metrics: Metrics
    users: UserRepository
    sessions: SessionStore
    accounts: AccountService
    trusted_proxies: TrustedProxies
    debug_runs: UserSlots
    debug_threads: anyio.CapacityLimiter
    log_followers: UserSlots
    quotas: Quotas
    gateway_commands: GatewayCommands
    driver: ClusterDriver | None
    loop: ReconcileLoop | None
    functions: FunctionService
    function_runtime: FunctionRuntime | None
    vault: KeyVault
    ingress: IngressDriver
    access: AccessService
    variables: VariableService
    function_logs: FunctionLogService
    mcp_tools: McpToolRegistry
    shared_loads: SharedLoads
    platform_apps: PlatformAppReconciler | None = None
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    prepared: bool = False
    owns_driver: bool = True

    def ai_gateway_state(self) -> PlatformAppState:
        """The ai-gateway application's last observed state (``Disabled`` when not deployed here)."""
        if self.platform_apps is None or not self.settings.ai_gateway:
            return PlatformAppState(
                "Disabled", "IMPRUN_AI_GATEWAY is off or this control plane does not reconcile"
            )
        return self.platform_apps.states.get(AI_GATEWAY_APP, PlatformAppState("Pending"))

    def prepare(self) -> None:
        """Start-up work that needs the database (indexes); retried by ``/readyz`` until it succeeds."""
        ensure_system_indexes(self.mongo[self.settings.sys_db_name])
        self.functions.ensure_indexes()
        self.variables.ensure_indexes()
        self.prepared = True

    def check_mongo(self) -> None:
        ping_mongo(self.mongo)
        if not self.prepared:
            self.prepare()

    def close(self) -> None:
        if self.driver is not None and self.owns_driver:
            self.driver.close()
        self.mongo.close()
        self.redis.close()
