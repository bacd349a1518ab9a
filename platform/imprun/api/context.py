"""The control plane's collaborators, built once at start and handed to routers through ``deps``.

``ControlPlane.open(settings)`` is the composition root: it connects to MongoDB and Redis, loads the
master key and wires the repositories. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from imprun.observability.metrics import Metrics
from imprun.security.master_key import MasterKey, load_master_key
from imprun.settings import Settings
from imprun.store.mongo import Mongo, connect_mongo, ensure_system_indexes, ping_mongo
from imprun.store.redis import Redis, connect_redis, ping_redis
from imprun.store.sessions import SessionStore
from imprun.store.throttle import FailureCounter
from imprun.store.users import UserRepository

ReadinessCheck = Callable[[], None]


@dataclass
class ControlPlane:
    settings: Settings
    mongo: Mongo
    redis: Redis
    master_key: MasterKey
    metrics: Metrics
    users: UserRepository
    sessions: SessionStore
    login_failures_by_user: FailureCounter
    login_failures_by_ip: FailureCounter
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    prepared: bool = False

    @classmethod
    def open(cls, settings: Settings) -> ControlPlane:
        if settings.mongo_url is None or settings.redis_url is None:
            raise ValueError("the control plane needs mongo_url and redis_url (imprun up fills them in)")
        mongo = connect_mongo(settings.mongo_url, timeout=settings.dependency_timeout_seconds)
        redis = connect_redis(settings.redis_url, timeout=settings.dependency_timeout_seconds)
        sys_db = mongo[settings.sys_db_name]
        plane = cls(
            settings=settings,
            mongo=mongo,
            redis=redis,
            master_key=load_master_key(settings),
            metrics=Metrics(),
            users=UserRepository(sys_db),
            sessions=SessionStore(redis, settings.session_ttl_seconds),
            login_failures_by_user=FailureCounter(
                redis,
                prefix="imprun:login-fail:user:",
                limit=settings.login_max_failures,
                window_seconds=settings.login_window_seconds,
            ),
            login_failures_by_ip=FailureCounter(
                redis,
                prefix="imprun:login-fail:ip:",
                limit=settings.login_max_failures * 5,
                window_seconds=settings.login_window_seconds,
            ),
        )
        plane.readiness["mongo"] = plane._check_mongo
        plane.readiness["redis"] = lambda: ping_redis(redis)
        return plane

    def prepare(self) -> None:
        """Start-up work that needs the database (indexes); retried by ``/readyz`` until it succeeds."""
        ensure_system_indexes(self.mongo[self.settings.sys_db_name])
        self.prepared = True

    def _check_mongo(self) -> None:
        ping_mongo(self.mongo)
        if not self.prepared:
            self.prepare()

    def close(self) -> None:
        self.mongo.close()
        self.redis.close()
