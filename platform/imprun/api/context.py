"""The control plane's collaborators, built once at start and handed to routers through ``deps``.

``ControlPlane.open(settings)`` is the composition root: it connects to MongoDB and Redis, loads the
master key (and the API-key vault derived from it), wires the repositories, the cluster and ingress
drivers and the reconcilers. Nothing here runs at import time; the reconcile loop is started by the
app's lifespan.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from imprun.access import AccessService
from imprun.access.accounts import AccountService, SignInLimits
from imprun.ai.config import AI_GATEWAY_APP, ai_gateway_spec
from imprun.ai.registry import McpToolRegistry
from imprun.api.admission import UserSlots
from imprun.api.quotas import Quotas
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.drivers.cluster import ClusterDriver
from imprun.drivers.embedded_ingress import EmbeddedIngressDriver
from imprun.drivers.ingress import IngressDriver
from imprun.drivers.kuberay_status import AppChange
from imprun.errors import Invalid
from imprun.functions import FunctionService
from imprun.functions.logs import FunctionLogService
from imprun.functions.variables import VariableService
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.environments import EnvironmentReconciler
from imprun.lifecycle.feed_repair import FeedRepair
from imprun.lifecycle.gateways import GatewayReconciler
from imprun.lifecycle.grants import GrantReconciler
from imprun.lifecycle.loop import ReconcileLoop
from imprun.lifecycle.platform_apps import PlatformAppReconciler, PlatformAppState
from imprun.lifecycle.reconciler import FaultInjector, ReconcileTiming, utc_now
from imprun.observability.metrics import Metrics
from imprun.security.api_keys import KeyVault, api_key_pepper
from imprun.security.client_address import TrustedProxies
from imprun.security.master_key import MasterKey, load_master_key
from imprun.security.passwords import PasswordHashing
from imprun.security.variables import VariableCipher, variables_key
from imprun.settings import Settings
from imprun.store.applications import ApplicationRepository, GrantRepository
from imprun.store.consumers import IngressDocuments
from imprun.store.events import Event, EventLog
from imprun.store.function_logs import FunctionLogStreams
from imprun.store.gateway_databases import GatewayDatabases
from imprun.store.invites import InviteRepository
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository
from imprun.store.mcp_tools import McpToolRepository, published_tools
from imprun.store.mongo import Mongo, connect_mongo, ensure_system_indexes, ping_mongo
from imprun.store.mongo_users import GatewayMongoUsers
from imprun.store.redis import Redis, connect_redis, ping_redis
from imprun.store.runtime_feed import RuntimeFeed
from imprun.store.sessions import SessionStore
from imprun.store.throttle import FailureBackoff, WindowCounter
from imprun.store.users import UserRecord, UserRepository
from imprun.store.variables import VariableRepository
from runtime_actors.shared.names import RUNTIME_PARTS

if TYPE_CHECKING:
    from imprun.drivers.function_runtime import FunctionRuntime
    from imprun.drivers.kuberay import ChangeListener

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], None]


def open_cluster_driver(
    settings: Settings,
    api_key_pepper: bytes,
    variables_key: bytes = b"",
    *,
    gateway_mongo_url: Callable[[str], str] | None = None,
    on_change: ChangeListener | None = None,
) -> ClusterDriver | None:
    """``IMPRUN_CLUSTER_DRIVER=kuberay``: KubeRay RayServices (``gateway_mongo_url`` gives each
    gateway's MongoDB URL, ``on_change`` hears how each RayService write changed it); else the local
    Ray Serve driver when a Ray address is known; None runs without a data plane.

    Its replicas get ``api_key_pepper`` to hash presented keys the way ``__consumers`` was written,
    and ``variables_key`` to open the environment variables they serve as ``imp.env``.
    """
    if settings.cluster_driver == "kuberay":  # RayServices on Kubernetes; replicas use their gateway's user
        from imprun.drivers.kuberay import open_kuberay_driver  # imports kubernetes: only when needed

        return open_kuberay_driver(
            settings,
            api_key_pepper=api_key_pepper,
            variables_key=variables_key,
            gateway_mongo_url=gateway_mongo_url or (lambda gateway_id: settings.mongo_url or ""),
            on_change=on_change,
        )
    if settings.ray_address is None:
        return None
    from imprun.drivers.local_ray import LocalRayServeDriver  # imports ray: only when needed

    return LocalRayServeDriver(
        settings.ray_address, settings, api_key_pepper=api_key_pepper, variables_key=variables_key
    )


def gateway_mongo_password(master_key: MasterKey) -> Callable[[str], str]:
    """Each gateway's MongoDB password, derived from the master key (never stored)."""

    def password(gateway_id: str) -> str:
        return base64.urlsafe_b64encode(master_key.derive(f"mongo-user:{gateway_id}")).decode().rstrip("=")

    return password


def app_change_recorder(events: EventLog) -> ChangeListener:
    """An event per RayService write of an environment: created, in-place update or cluster upgrade."""

    def record(gateway_id: str | None, app_name: str, change: AppChange) -> None:
        if gateway_id is None:
            return  # platform applications have no gateway to show events on
        environment = app_name.removeprefix(f"{gateway_id}-")
        events.append(
            Event(
                gateway_id=gateway_id,
                kind="environment",
                resource=f"{gateway_id}/{environment}",
                type="Normal",
                reason="RayService",
                message=f"RayService {app_name}: {change.value}",
                at=utc_now(),
                actor="kuberay-driver",
            )
        )

    return record


def open_ingress_driver(settings: Settings, mongo: Mongo, redis: Redis) -> IngressDriver:
    """``IMPRUN_INGRESS=apisix``: APISIX's Admin API; else the embedded ingress, where replicas
    enforce the keys and limits published into the gateway databases."""
    if settings.ingress == "apisix":
        from imprun.drivers.apisix import ApisixDriver

        missing = [
            name
            for name in ("apisix_admin_url", "apisix_admin_key", "apisix_domain", "apisix_redis_host")
            if getattr(settings, name) is None
        ]
        if missing:
            raise Invalid("IMPRUN_INGRESS=apisix needs " + ", ".join(f"IMPRUN_{m.upper()}" for m in missing))
        assert settings.apisix_admin_url and settings.apisix_admin_key and settings.apisix_domain
        assert settings.apisix_redis_host
        return ApisixDriver(
            settings.apisix_admin_url,
            settings.apisix_admin_key,
            settings.apisix_domain,
            settings.apisix_redis_host,
            settings.apisix_redis_port,
            timeout=settings.dependency_timeout_seconds,
            redis_password=settings.apisix_redis_password,
            redis_database=settings.apisix_redis_database,
        )
    feed = RuntimeFeed(mongo[settings.sys_db_name], redis)
    return EmbeddedIngressDriver(IngressDocuments(mongo, feed))


def open_accounts(settings: Settings, mongo: Mongo, redis: Redis, sessions: SessionStore) -> AccountService:
    """Registration, sign-in and sessions with the throttles and the hashing pool of ``settings``."""
    sys_db = mongo[settings.sys_db_name]
    # Registrations and sign-ins hash in pools of their own: a burst of one never queues the other.
    sign_in_slots = max(1, settings.password_hash_concurrency // 2)
    limits = SignInLimits(
        registrations=WindowCounter(
            redis,
            prefix="imprun:register:client:",
            limit=settings.registrations_per_client,
            window_seconds=settings.registration_window_seconds,
        ),
        failures=FailureBackoff(
            redis,
            prefix="imprun:login-fail:pair:",
            free=settings.login_max_failures,
            memory_seconds=settings.login_window_seconds,
            max_lockout_seconds=settings.login_max_lockout_seconds,
        ),
        client_failures=WindowCounter(
            redis,
            prefix="imprun:login-fail:client:",
            limit=settings.login_max_failures * 10,
            window_seconds=settings.login_window_seconds,
        ),
    )
    return AccountService(
        users=UserRepository(sys_db),
        invites=InviteRepository(sys_db),
        sessions=sessions,
        hashing=PasswordHashing(sign_in_slots, settings.password_hash_wait_seconds),
        registration_hashing=PasswordHashing(
            settings.password_hash_concurrency - sign_in_slots, settings.password_hash_wait_seconds
        ),
        limits=limits,
        mode=settings.registration_mode,
        invite_ttl=timedelta(seconds=settings.invite_ttl_seconds),
        clock=utc_now,
    )


def open_function_runtime(driver: ClusterDriver | None) -> FunctionRuntime | None:
    """Debug-runs go to the dev environment's replicas through Serve; None without a data plane."""
    if driver is None:
        return None
    from imprun.drivers.function_runtime import RayFunctionRuntime  # imports ray: only when needed

    return RayFunctionRuntime(connect=driver.ping)


@dataclass
class ControlPlane:
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
    platform_apps: PlatformAppReconciler | None = None
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    prepared: bool = False
    owns_driver: bool = True

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        driver: ClusterDriver | None = None,
        ingress: IngressDriver | None = None,
    ) -> ControlPlane:
        if settings.mongo_url is None or settings.redis_url is None:
            raise ValueError("the control plane needs mongo_url and redis_url (imprun up fills them in)")
        mongo = connect_mongo(settings.mongo_url, timeout=settings.dependency_timeout_seconds)
        redis = connect_redis(settings.redis_url, timeout=settings.dependency_timeout_seconds)
        sys_db = mongo[settings.sys_db_name]
        metrics = Metrics()
        gateways = GatewayRepository(sys_db)
        environments = EnvironmentRepository(sys_db)
        events = EventLog(sys_db)
        master_key = load_master_key(settings)
        vault = KeyVault.from_master_key(master_key)
        ingress = ingress if ingress is not None else open_ingress_driver(settings, mongo, redis)
        applications = ApplicationRepository(sys_db)
        grants = GrantRepository(sys_db)
        owns_driver = driver is None
        mongo_users = (
            GatewayMongoUsers(
                mongo, settings.mongo_url, settings.sys_db_name, gateway_mongo_password(master_key)
            )
            if settings.cluster_driver == "kuberay"
            else None
        )
        driver = (
            driver
            if driver is not None
            else open_cluster_driver(
                settings,
                api_key_pepper(master_key),
                variables_key(master_key),
                gateway_mongo_url=mongo_users.url_for if mongo_users is not None else None,
                on_change=app_change_recorder(events),
            )
        )
        loop: ReconcileLoop | None = None
        platform_apps: PlatformAppReconciler | None = None

        def wake() -> None:
            if loop is not None:
                loop.wake()

        gateway_commands = GatewayCommands(
            gateways, environments, events, clock=utc_now, wake=wake, on_delete=grants.wake_of_gateway
        )
        functions = FunctionService.from_plane_parts(
            mongo=mongo, redis=redis, settings=settings, gateway_commands=gateway_commands, clock=utc_now
        )
        variables = VariableService(
            gateways=gateway_commands,
            variables=VariableRepository(sys_db, RuntimeFeed(sys_db, redis)),
            cipher=VariableCipher.from_master_key(master_key),
            clock=utc_now,
            max_variables=settings.quota_variables_per_environment,
        )
        log_streams = FunctionLogStreams(
            redis, settings.redis_url, timeout=settings.dependency_timeout_seconds
        )
        function_logs = FunctionLogService(
            gateways=gateway_commands,
            streams=log_streams,
            clock=utc_now,
            keepalive_s=settings.log_keepalive_seconds,
            recheck_s=settings.log_recheck_seconds,
        )

        def check_function(gateway_id: str, name: str, user: UserRecord) -> None:
            functions.get(gateway_id, name, user)  # NotFound unless the user's gateway has it

        mcp_tools = McpToolRegistry(
            McpToolRepository(sys_db),
            check_function,
            utc_now,
            published=lambda gateway_id, environments: published_tools(mongo, gateway_id, environments),
        )

        def forget_gateway(gateway_id: str) -> None:
            functions.forget_gateway(gateway_id)
            variables.forget_gateway(gateway_id)
            mcp_tools.forget_gateway(gateway_id)
            log_streams.forget(gateway_id, ENVIRONMENT_NAMES)

        def forget_previous_incarnation(gateway_id: str, created_at: datetime) -> None:
            """A new gateway inherits nothing of a deleted one with its id: no logs, no events, and
            every replica and reload hub that still holds its code re-reads the new, empty database."""
            log_streams.forget(gateway_id, ENVIRONMENT_NAMES)
            events.forget_gateway_before(gateway_id, created_at)
            feed = RuntimeFeed(sys_db, redis)
            for environment in ENVIRONMENT_NAMES:
                for part in RUNTIME_PARTS:
                    feed.changed(gateway_id, environment, part)

        access = AccessService(
            applications=applications,
            grants=grants,
            gateways=gateway_commands,
            vault=vault,
            clock=utc_now,
            wake=wake,
        )
        if driver is not None and settings.reconcile:
            holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
            timing = ReconcileTiming(lease=timedelta(seconds=settings.lease_seconds))
            faults = FaultInjector.from_env()
            common = {
                "events": events,
                "metrics": metrics,
                "holder": holder,
                "timing": timing,
                "faults": faults,
            }
            platform_apps = (
                PlatformAppReconciler(
                    [ai_gateway_spec(settings, api_key_pepper(master_key))], driver, metrics=metrics
                )
                if settings.ai_gateway
                else None
            )
            loop = ReconcileLoop(
                [
                    *([platform_apps] if platform_apps is not None else []),
                    FeedRepair(RuntimeFeed(sys_db, redis), utc_now),
                    GatewayReconciler(
                        gateways,
                        environments,
                        GatewayDatabases(mongo),
                        driver,
                        forget_functions=forget_gateway,
                        forget_previous_incarnation=forget_previous_incarnation,
                        mongo_users=mongo_users,
                        **common,
                    ),
                    EnvironmentReconciler(
                        environments,
                        gateways,
                        driver,
                        ingress=ingress,
                        upstream=(settings.host, settings.serve_port),
                        **common,
                    ),
                    GrantReconciler(
                        grants,
                        applications,
                        gateways,
                        ingress,
                        vault,
                        events=events,
                        metrics=metrics,
                        holder=holder,
                        timing=timing,
                        faults=faults,
                    ),
                ],
                interval=settings.reconcile_interval_seconds,
            )
        sessions = SessionStore(redis, settings.session_ttl_seconds)
        plane = cls(
            settings=settings,
            mongo=mongo,
            redis=redis,
            master_key=master_key,
            metrics=metrics,
            users=UserRepository(sys_db),
            sessions=sessions,
            accounts=open_accounts(settings, mongo, redis, sessions),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            debug_runs=UserSlots("debug runs or console calls", settings.debug_runs_per_user, retry_after=5),
            debug_threads=anyio.CapacityLimiter(settings.debug_run_threads),
            log_followers=UserSlots("followed log streams", settings.log_followers_per_user, retry_after=30),
            quotas=Quotas(settings),
            gateway_commands=gateway_commands,
            driver=driver,
            loop=loop,
            functions=functions,
            function_runtime=open_function_runtime(driver),
            vault=vault,
            ingress=ingress,
            access=access,
            variables=variables,
            function_logs=function_logs,
            mcp_tools=mcp_tools,
            platform_apps=platform_apps,
            owns_driver=owns_driver,
        )
        plane.readiness["mongo"] = plane._check_mongo
        plane.readiness["redis"] = lambda: ping_redis(redis)
        if driver is not None:
            plane.readiness["ray"] = driver.ping
        return plane

    def ai_gateway_state(self) -> PlatformAppState:
        """The ai-gateway application's last observed state (``Disabled`` when not deployed here)."""
        if self.platform_apps is None:
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

    def _check_mongo(self) -> None:
        ping_mongo(self.mongo)
        if not self.prepared:
            self.prepare()

    def close(self) -> None:
        if self.driver is not None and self.owns_driver:
            self.driver.close()
        self.mongo.close()
        self.redis.close()
