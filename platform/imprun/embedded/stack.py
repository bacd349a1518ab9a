"""The embedded stack: nx-27017, redis-server and a Ray head for every service without a configured URL.

``EmbeddedStack(settings).start()`` starts (or reuses, when one already answers on its port) each
service whose URL is unset and returns the *effective* settings with the URLs filled in; progress
is reported through a callback so the CLI can draw it. ``stop()`` stops only what that stack started,
newest first. ``stop_embedded`` and ``embedded_status`` work from the pid files under
``<data_dir>/run`` instead, so ``imprun down`` and ``imprun status`` can act on services another
process started. ``with_ray=False`` leaves Ray out: the control plane then runs without a data plane.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from imprun.embedded.mongo import embedded_mongo_url, mongo_service
from imprun.embedded.process import ServiceProcess, port_open
from imprun.embedded.ray_head import ray_head_running, start_ray_head, stop_ray_head
from imprun.embedded.redis import embedded_redis_url, redis_service
from imprun.settings import Settings
from imprun.store.mongo import mongo_reachable
from imprun.store.redis import redis_reachable

log = logging.getLogger(__name__)

# The names ``mongo_service`` / ``redis_service`` give their processes (and so their pid files).
MONGO = "nx-27017"
REDIS = "redis-server"
RAY = "ray-head"


class StepState(StrEnum):
    STARTING = "starting"
    STARTED = "started"
    REUSED = "reused"  # an instance was already answering on the port; we adopt it, we never stop it
    CONFIGURED = "configured"  # an external URL is set; nothing to start
    DISABLED = "disabled"  # Ray left out (``with_ray=False``)
    STOPPING = "stopping"
    STOPPED = "stopped"
    KEPT = "kept"  # started by this stack but deliberately left running by ``stop(keep_ray=True)``


@dataclass(frozen=True)
class StackEvent:
    service: str
    state: StepState
    url: str | None = None


ProgressCallback = Callable[[StackEvent], None]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str | None
    running: bool
    pid: int | None
    external: bool = False  # configured by URL rather than started from this data dir


def redact_url(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def embedded_ray_address(settings: Settings) -> str:
    """Where the embedded Ray head's GCS listens (``start_ray_head`` binds it to loopback)."""
    return f"127.0.0.1:{settings.embedded_ray_port}"


class EmbeddedStack:
    """Starts the missing services in dependency order; ``stop()`` undoes exactly what it started."""

    def __init__(
        self, settings: Settings, *, with_ray: bool = True, on_progress: ProgressCallback | None = None
    ) -> None:
        self.settings = settings
        self.with_ray = with_ray
        self.ray_dashboard_url: str | None = None
        self.reused: list[str] = []
        self._notify: ProgressCallback = on_progress or (lambda event: None)
        self._started: list[tuple[str, Callable[[], object]]] = []

    @property
    def started(self) -> list[str]:
        return [name for name, _ in self._started]

    def start(self) -> Settings:
        """Start or reuse every unconfigured service; on any failure stop what was started and re-raise."""
        base = self.settings
        # Build the process descriptions first: a missing binary fails before anything starts.
        mongo = mongo_service(base) if base.mongo_url is None else None
        redis = redis_service(base) if base.redis_url is None else None
        update: dict[str, str] = {}
        try:
            if mongo is not None:
                update["mongo_url"] = self._start_process(mongo, embedded_mongo_url(base))
            else:
                self._configured(MONGO, base.mongo_url)
            if redis is not None:
                update["redis_url"] = self._start_process(redis, embedded_redis_url(base))
            else:
                self._configured(REDIS, base.redis_url)
            if base.ray_address is not None:
                self._configured(RAY, base.ray_address)
            elif self.with_ray:
                update["ray_address"] = self._start_ray()
            else:
                self._notify(StackEvent(RAY, StepState.DISABLED))
        except BaseException:
            self.stop()
            raise
        return base.model_copy(update=update)

    def stop(self, *, keep_ray: bool = False) -> list[str]:
        """Stop what ``start`` started, newest first; returns the names stopped."""
        stopped = []
        while self._started:
            name, stop = self._started.pop()
            if name == RAY and keep_ray:
                self._notify(StackEvent(name, StepState.KEPT, embedded_ray_address(self.settings)))
                continue
            self._notify(StackEvent(name, StepState.STOPPING))
            try:
                stop()
            except Exception:  # keep going: one stuck service must not leave the others running
                log.exception("stopping %s failed", name)
                continue
            stopped.append(name)
            self._notify(StackEvent(name, StepState.STOPPED))
        return stopped

    def _configured(self, name: str, url: str | None) -> None:
        self._notify(StackEvent(name, StepState.CONFIGURED, redact_url(url) if url else None))

    def _start_process(self, service: ServiceProcess, url: str) -> str:
        self._notify(StackEvent(service.name, StepState.STARTING))
        service.start(timeout=self.settings.startup_timeout_seconds)
        if service.reused:
            self.reused.append(service.name)
            self._notify(StackEvent(service.name, StepState.REUSED, url))
        else:
            self._started.append((service.name, service.stop))
            self._notify(StackEvent(service.name, StepState.STARTED, url))
        return url

    def _start_ray(self) -> str:
        settings = self.settings
        self._notify(StackEvent(RAY, StepState.STARTING))
        head = start_ray_head(settings)
        self.ray_dashboard_url = head.dashboard_url
        if head.reused:
            self.reused.append(RAY)
            self._notify(StackEvent(RAY, StepState.REUSED, head.address))
        else:
            self._started.append((RAY, lambda: stop_ray_head(settings)))
            self._notify(StackEvent(RAY, StepState.STARTED, head.address))
        return head.address


def _recorded_services(settings: Settings) -> list[ServiceProcess]:
    """Handles on the embedded services' pid files (nothing is started or created)."""
    return [mongo_service(settings), redis_service(settings)]


def stop_embedded(settings: Settings, *, timeout: float = 10.0) -> list[str]:
    """Stop every embedded service recorded under the data dir, Ray head first; idempotent.

    A configured ``ray_address`` is someone else's cluster and is never stopped.
    """
    stopped = []
    if settings.ray_address is None and stop_ray_head(settings):
        stopped.append(RAY)
    for service in reversed(_recorded_services(settings)):
        if service.stop(timeout=timeout):
            stopped.append(service.name)
        else:  # a pid file naming a process that is gone
            with contextlib.suppress(FileNotFoundError):
                service.pid_file.unlink()
    return stopped


def _ray_address_reachable(address: str) -> bool:
    target = urlsplit(address if "://" in address else f"//{address}")
    return target.hostname is not None and target.port is not None and port_open(target.hostname, target.port)


def embedded_status(settings: Settings, *, timeout: float = 0.5) -> list[ServiceStatus]:
    """One row per service: configured services are probed, embedded ones also report their pid."""
    mongo_probe, redis_probe = _recorded_services(settings)
    rows = []
    for probe, configured, url, reachable in (
        (mongo_probe, settings.mongo_url, embedded_mongo_url(settings), mongo_reachable),
        (redis_probe, settings.redis_url, embedded_redis_url(settings), redis_reachable),
    ):
        if configured is not None:
            running = reachable(configured, timeout=timeout)
            rows.append(ServiceStatus(probe.name, redact_url(configured), running, None, external=True))
            continue
        # A closed port answers at once; only probe the protocol when something listens.
        running = port_open(settings.host, probe.port, timeout) and reachable(url, timeout=timeout)
        rows.append(ServiceStatus(probe.name, url, running, probe.recorded_pid()))
    if settings.ray_address is not None:
        address = settings.ray_address
        rows.append(ServiceStatus(RAY, address, _ray_address_reachable(address), None, external=True))
    else:
        running = ray_head_running(settings)
        rows.append(ServiceStatus(RAY, embedded_ray_address(settings), running, None))
    return rows
