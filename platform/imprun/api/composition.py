"""The composition root: ``open_control_plane(settings)`` builds the ``ControlPlane`` one concern at a
time.

Each builder below owns one concern and takes only what it needs: the stores (MongoDB, Redis and the
system database's repositories), the secrets derived from the master key, the cluster and ingress
drivers, the services the routers call, the reconcile loop, and the per-user admission limits.
Nothing here runs at import time; the reconcile loop is started by the app's lifespan.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from imprun.access import AccessService
from imprun.access.accounts import AccountService, SignInLimits
from imprun.ai.config import ai_gateway_spec
from imprun.ai.registry import McpToolRegistry
from imprun.api.admission import UserSlots
from imprun.api.context import ControlPlane
from imprun.api.quotas import Quotas
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.drivers.cluster import ClusterDriver, FunctionRuntime
from imprun.drivers.embedded_ingress import EmbeddedIngressDriver
from imprun.drivers.ingress import IngressDriver
from imprun.drivers.kuberay_status import AppChange
from imprun.errors import Invalid
from imprun.functions import FunctionService
from imprun.functions.logs import FunctionLogService
from imprun.functions.variables import VariableService
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.environments import EnvironmentReconciler, Upstream
from imprun.lifecycle.feed_repair import FeedRepair
from imprun.lifecycle.gateways import GatewayReconciler
from imprun.lifecycle.grants import GrantReconciler
from imprun.lifecycle.logins_sync import RuntimeLoginsSync
from imprun.lifecycle.loop import ReconcileLoop
from imprun.lifecycle.platform_apps import PlatformAppReconciler
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
from imprun.store.mongo import Mongo, SystemDatabase, connect_mongo
from imprun.store.mongo_users import GatewayMongoUsers
from imprun.store.redis import Redis, connect_redis, ping_redis
from imprun.store.redis_users import RuntimeRedisUsers
from imprun.store.runtime_feed import RuntimeFeed
from imprun.store.runtime_logins import RuntimeLogins
from imprun.store.sessions import SessionStore
from imprun.store.shared_loads import SharedLoads
from imprun.store.throttle import FailureBackoff, WindowCounter
from imprun.store.users import UserRecord, UserRepository
from imprun.store.variables import VariableRepository
from runtime_actors.shared.names import RUNTIME_PARTS

if TYPE_CHECKING:
    from imprun.drivers.kuberay import ChangeListener


def open_control_plane(
    settings: Settings, *, driver: ClusterDriver | None = None, ingress: IngressDriver | None = None
) -> ControlPlane:
    """Connect, derive the secrets, open the drivers (``driver`` and ``ingress`` share ones already
    open: the caller then keeps closing ``driver``) and wire the services and the reconcile loop."""
    stores = open_stores(settings)
    master_key = load_master_key(settings)
    vault = KeyVault.from_master_key(master_key)
    logins = open_runtime_logins(settings, stores, master_key)
    owns_driver = driver is None
    if driver is None:
        driver = open_cluster_driver(
            settings,
            api_key_pepper(master_key),
            variables_key(master_key),
            logins=logins,
            on_change=app_change_recorder(stores.events),
        )
    if ingress is None:
        ingress = open_ingress_driver(settings, stores)
    waker = LoopWaker()
    services = build_services(settings, stores, master_key, vault, waker.wake)
    metrics = Metrics()
    platform_apps: PlatformAppReconciler | None = None
    loop: ReconcileLoop | None = None
    if driver is not None and settings.reconcile:
        platform_apps = open_platform_apps(settings, driver, master_key, metrics, logins)
        loop = build_reconcile_loop(
            settings, stores, services, driver, ingress, vault, metrics, platform_apps, logins
        )
    waker.loop = loop
    sessions = SessionStore(stores.redis, settings.session_ttl_seconds)
    plane = ControlPlane(
        settings=settings,
        mongo=stores.mongo,
        redis=stores.redis,
        master_key=master_key,
        metrics=metrics,
        users=UserRepository(stores.sys_db),
        sessions=sessions,
        accounts=open_accounts(settings, stores, sessions),
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        debug_runs=UserSlots("debug runs or console calls", settings.debug_runs_per_user, retry_after=5),
        debug_threads=anyio.CapacityLimiter(settings.debug_run_threads),
        log_followers=UserSlots("followed log streams", settings.log_followers_per_user, retry_after=30),
        quotas=Quotas(settings),
        gateway_commands=services.gateway_commands,
        driver=driver,
        loop=loop,
        functions=services.functions,
        function_runtime=open_function_runtime(driver),
        vault=vault,
        ingress=ingress,
        access=services.access,
        variables=services.variables,
        function_logs=services.function_logs,
        mcp_tools=services.mcp_tools,
        shared_loads=SharedLoads(stores.redis),
        platform_apps=platform_apps,
        owns_driver=owns_driver,
    )
    plane.readiness["mongo"] = plane.check_mongo
    plane.readiness["redis"] = lambda: ping_redis(stores.redis)
    if driver is not None:
        plane.readiness["ray"] = driver.ping
    return plane


@dataclass(frozen=True)
class Stores:
    """The connections and the system database's repositories the other builders share."""

    mongo: Mongo
    redis: Redis
    sys_db: SystemDatabase
    gateways: GatewayRepository
    environments: EnvironmentRepository
    events: EventLog
    applications: ApplicationRepository
    grants: GrantRepository

    def runtime_feed(self) -> RuntimeFeed:
        return RuntimeFeed(self.sys_db, self.redis)


def open_stores(settings: Settings) -> Stores:
    if settings.mongo_url is None or settings.redis_url is None:
        raise ValueError("the control plane needs mongo_url and redis_url (imprun up fills them in)")
    mongo = connect_mongo(settings.mongo_url, timeout=settings.dependency_timeout_seconds)
    redis = connect_redis(settings.redis_url, timeout=settings.dependency_timeout_seconds)
    sys_db = mongo[settings.sys_db_name]
    return Stores(
        mongo=mongo,
        redis=redis,
        sys_db=sys_db,
        gateways=GatewayRepository(sys_db),
        environments=EnvironmentRepository(sys_db),
        events=EventLog(sys_db),
        applications=ApplicationRepository(sys_db),
        grants=GrantRepository(sys_db),
    )


def data_plane_upstream(settings: Settings, driver: ClusterDriver) -> tuple[str, int] | Upstream:
    """Where the ingress sends an environment's calls: on KubeRay the Serve Service of the tier that
    serves it (``KubeRayDriver.serve_upstream``); on local Ray the one Serve ingress of the head."""
    if settings.cluster_driver == "kuberay":
        from imprun.drivers.kuberay import KubeRayDriver

        if isinstance(driver, KubeRayDriver):
            return driver.serve_upstream
    return settings.host, settings.serve_port


def open_cluster_driver(
    settings: Settings,
    api_key_pepper: bytes,
    variables_key: bytes = b"",
    *,
    logins: RuntimeLogins | None = None,
    on_change: ChangeListener | None = None,
) -> ClusterDriver | None:
    """``IMPRUN_CLUSTER_DRIVER=kuberay``: KubeRay RayServices (``logins`` give each runtime its own
    MongoDB and Redis URLs, else the platform's; ``on_change`` hears how each RayService write
    changed it); else the local Ray Serve driver when a Ray address is known; None runs without a
    data plane.

    Its replicas get ``api_key_pepper`` to hash presented keys the way ``__consumers`` was written,
    and ``variables_key`` to open the environment variables they serve as ``imp.env``.
    """
    if settings.cluster_driver == "kuberay":  # RayServices on Kubernetes; replicas use their own logins
        from imprun.drivers.kuberay import open_kuberay_driver  # imports kubernetes: only when needed

        platform_mongo = settings.mongo_url or ""
        return open_kuberay_driver(
            settings,
            api_key_pepper=api_key_pepper,
            variables_key=variables_key,
            gateway_mongo_url=logins.gateway_mongo_url if logins else (lambda gateway_id: platform_mongo),
            gateway_redis_url=logins.gateway_redis_url if logins else (lambda gateway_id: None),
            shared_runtime_mongo_url=logins.shared_mongo_url if logins else (lambda: platform_mongo),
            on_change=on_change,
        )
    if settings.ray_address is None:
        return None
    from imprun.drivers.local_ray import LocalRayServeDriver  # imports ray: only when needed

    return LocalRayServeDriver(
        settings.ray_address, settings, api_key_pepper=api_key_pepper, variables_key=variables_key
    )


def open_runtime_logins(settings: Settings, stores: Stores, master_key: MasterKey) -> RuntimeLogins | None:
    """On KubeRay each runtime logs in to MongoDB and Redis as a user of its own (Redis's unless
    ``IMPRUN_REDIS_RUNTIME_USERS=false``); locally they share the platform's URLs."""
    if settings.cluster_driver != "kuberay":
        return None
    assert settings.mongo_url is not None and settings.redis_url is not None
    mongo = GatewayMongoUsers(
        stores.mongo, settings.mongo_url, settings.sys_db_name, derived_password(master_key, "mongo-user")
    )
    redis = None
    if settings.redis_runtime_users:
        redis = RuntimeRedisUsers(
            stores.redis, settings.redis_url, derived_password(master_key, "redis-user")
        )
    return RuntimeLogins(mongo, redis)


def derived_password(master_key: MasterKey, purpose: str) -> Callable[[str], str]:
    """A login's password for each subject (a gateway id), derived from the master key (never stored)."""

    def password(subject: str) -> str:
        return base64.urlsafe_b64encode(master_key.derive(f"{purpose}:{subject}")).decode().rstrip("=")

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


def open_ingress_driver(settings: Settings, stores: Stores) -> IngressDriver:
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
    return EmbeddedIngressDriver(IngressDocuments(stores.mongo, stores.runtime_feed()))


def open_function_runtime(driver: ClusterDriver | None) -> FunctionRuntime | None:
    """Debug-runs go to the dev environment's replicas through Serve; None without a data plane."""
    if driver is None:
        return None
    from imprun.drivers.function_runtime import RayFunctionRuntime  # imports ray: only when needed

    return RayFunctionRuntime(connect=driver.ping)


def open_accounts(settings: Settings, stores: Stores, sessions: SessionStore) -> AccountService:
    """Registration, sign-in and sessions with the throttles and the hashing pool of ``settings``."""
    redis = stores.redis
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
        users=UserRepository(stores.sys_db),
        invites=InviteRepository(stores.sys_db),
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


class LoopWaker:
    """Wakes the reconcile loop once there is one: services that change desired state are built
    before the loop that acts on it."""

    loop: ReconcileLoop | None = None

    def wake(self) -> None:
        if self.loop is not None:
            self.loop.wake()


@dataclass(frozen=True)
class Services:
    """What the routers call: gateways, functions, variables, logs, agents' tools and access."""

    gateway_commands: GatewayCommands
    functions: FunctionService
    variables: VariableService
    log_streams: FunctionLogStreams
    function_logs: FunctionLogService
    mcp_tools: McpToolRegistry
    access: AccessService
    forgetting: GatewayForgetting


def build_services(
    settings: Settings, stores: Stores, master_key: MasterKey, vault: KeyVault, wake: Callable[[], None]
) -> Services:
    assert settings.redis_url is not None  # open_stores checked it
    gateway_commands = GatewayCommands(
        stores.gateways,
        stores.environments,
        stores.events,
        clock=utc_now,
        wake=wake,
        on_delete=stores.grants.wake_of_gateway,
    )
    functions = FunctionService.from_plane_parts(
        mongo=stores.mongo,
        redis=stores.redis,
        settings=settings,
        gateway_commands=gateway_commands,
        clock=utc_now,
    )
    variables = VariableService(
        gateways=gateway_commands,
        variables=VariableRepository(stores.sys_db, stores.runtime_feed()),
        cipher=VariableCipher.from_master_key(master_key),
        clock=utc_now,
        max_variables=settings.quota_variables_per_environment,
    )
    log_streams = FunctionLogStreams(
        stores.redis, settings.redis_url, timeout=settings.dependency_timeout_seconds
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
        McpToolRepository(stores.sys_db),
        check_function,
        utc_now,
        published=lambda gateway_id, environments: published_tools(stores.mongo, gateway_id, environments),
    )
    access = AccessService(
        applications=stores.applications,
        grants=stores.grants,
        gateways=gateway_commands,
        vault=vault,
        clock=utc_now,
        wake=wake,
    )
    forgetting = GatewayForgetting(stores, functions, variables, mcp_tools, log_streams)
    return Services(
        gateway_commands, functions, variables, log_streams, function_logs, mcp_tools, access, forgetting
    )


@dataclass(frozen=True)
class GatewayForgetting:
    """What the control plane drops when a gateway goes, and when a new gateway reuses a deleted one's
    id (it inherits nothing: no logs, no events, no code a replica or reload hub still holds)."""

    stores: Stores
    functions: FunctionService
    variables: VariableService
    mcp_tools: McpToolRegistry
    log_streams: FunctionLogStreams

    def forget_gateway(self, gateway_id: str) -> None:
        self.functions.forget_gateway(gateway_id)
        self.variables.forget_gateway(gateway_id)
        self.mcp_tools.forget_gateway(gateway_id)
        self.log_streams.forget(gateway_id, ENVIRONMENT_NAMES)

    def forget_previous_incarnation(self, gateway_id: str, created_at: datetime) -> None:
        self.log_streams.forget(gateway_id, ENVIRONMENT_NAMES)
        self.stores.events.forget_gateway_before(gateway_id, created_at)
        feed = self.stores.runtime_feed()
        for environment in ENVIRONMENT_NAMES:
            for part in RUNTIME_PARTS:
                feed.changed(gateway_id, environment, part)


def open_platform_apps(
    settings: Settings,
    driver: ClusterDriver,
    master_key: MasterKey,
    metrics: Metrics,
    logins: RuntimeLogins | None = None,
) -> PlatformAppReconciler | None:
    """The platform's Serve applications, those enabled: the shared runtime (the shared tier; with
    ``logins``, logged in to MongoDB and Redis as itself) and the AI gateway."""
    pepper = api_key_pepper(master_key)
    specs = []
    if settings.shared_runtime:
        from imprun.drivers.local_ray import shared_runtime_spec  # imports ray: only with a cluster

        specs.append(
            shared_runtime_spec(
                settings,
                pepper,
                variables_key(master_key),
                mongo_url=logins.shared_mongo_url() if logins is not None else None,
                redis_url=logins.shared_redis_url() if logins is not None else None,
            )
        )
    if settings.ai_gateway:
        specs.append(ai_gateway_spec(settings, pepper))
    return PlatformAppReconciler(specs, driver, metrics=metrics) if specs else None


def build_reconcile_loop(
    settings: Settings,
    stores: Stores,
    services: Services,
    driver: ClusterDriver,
    ingress: IngressDriver,
    vault: KeyVault,
    metrics: Metrics,
    platform_apps: PlatformAppReconciler | None,
    logins: RuntimeLogins | None,
) -> ReconcileLoop:
    """One reconciler per resource kind, all leasing under one holder name, plus the feed's repair
    and (with ``logins``) the shared runtime's grants."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    timing = ReconcileTiming(
        lease=timedelta(seconds=settings.lease_seconds), settled_resync=settings.reconcile_resync_seconds
    )
    faults = FaultInjector.from_env()
    common = {
        "events": stores.events,
        "metrics": metrics,
        "holder": holder,
        "timing": timing,
        "faults": faults,
    }
    return ReconcileLoop(
        [
            *([platform_apps] if platform_apps is not None else []),
            FeedRepair(stores.runtime_feed(), utc_now),
            GatewayReconciler(
                stores.gateways,
                stores.environments,
                GatewayDatabases(stores.mongo),
                driver,
                forget_functions=services.forgetting.forget_gateway,
                forget_previous_incarnation=services.forgetting.forget_previous_incarnation,
                logins=logins,
                **common,
            ),
            EnvironmentReconciler(
                stores.environments,
                stores.gateways,
                driver,
                ingress=ingress,
                upstream=data_plane_upstream(settings, driver),
                logins=logins,
                **common,
            ),
            GrantReconciler(
                stores.grants,
                stores.applications,
                stores.gateways,
                ingress,
                vault,
                events=stores.events,
                metrics=metrics,
                holder=holder,
                timing=timing,
                faults=faults,
            ),
            *(
                [
                    RuntimeLoginsSync(
                        logins,
                        stores.gateways,
                        stores.environments,
                        SharedLoads(stores.redis) if settings.shared_runtime else None,
                        now=utc_now,
                        interval=max(10 * settings.reconcile_interval_seconds, 1.0),
                    )
                ]
                if logins is not None
                else []
            ),
        ],
        interval=settings.reconcile_interval_seconds,
    )
