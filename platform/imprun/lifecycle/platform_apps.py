"""``PlatformAppReconciler``: keeps the platform-wide applications (the AI gateway) deployed.

There is one of each per cluster and no user drives them, so there is no phase to walk: every
``interval`` seconds the reconciler observes each desired ``PlatformAppSpec`` through the cluster
driver and applies it when it is missing, failed, or differs from what this control plane last
applied (its settings changed across a restart). Applying is idempotent — the driver pins the
deployment version to the spec's digest, so an unchanged spec restarts nothing — which is what makes
two control planes safe here without a lease. The latest observation is kept for
``GET /v1/ai-gateway``; failures are logged, counted and retried on the next interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from imprun.domain.observations import AppStatus
from imprun.drivers.cluster import ClusterDriver, ObservedApp, PlatformAppSpec
from imprun.errors import ImprunError
from imprun.observability.metrics import Metrics

__all__ = ["PlatformAppReconciler", "PlatformAppState"]

log = logging.getLogger(__name__)

_REDEPLOY: frozenset[AppStatus] = frozenset({AppStatus.MISSING, AppStatus.DEPLOY_FAILED})


@dataclass(frozen=True, slots=True)
class PlatformAppState:
    status: str
    message: str = ""


class PlatformAppReconciler:
    kind = "platform-app"

    def __init__(
        self,
        specs: Sequence[PlatformAppSpec],
        driver: ClusterDriver,
        *,
        metrics: Metrics | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._specs = list(specs)
        self._driver = driver
        self._metrics = metrics
        self._interval = interval
        self._clock = clock
        self._due = 0.0
        self._applied: dict[str, str] = {}
        self.states: dict[str, PlatformAppState] = {s.name: PlatformAppState("Pending") for s in specs}

    def reconcile_one(self) -> bool:
        """Check every platform application when due; never asks the loop for an immediate re-tick."""
        now = self._clock()
        if now < self._due:
            return False
        self._due = now + self._interval
        for spec in self._specs:
            self._reconcile(spec)
        return False

    def _reconcile(self, spec: PlatformAppSpec) -> None:
        try:
            observed = self._driver.observe_platform_app(spec.name)
            if observed.status in _REDEPLOY or self._applied.get(spec.name) != spec.digest():
                log.info("deploying the platform application %s (was %s)", spec.name, observed.status.value)
                self._driver.apply_platform_app(spec)
                self._applied[spec.name] = spec.digest()
                observed = ObservedApp(AppStatus.DEPLOYING, "applied; waiting for replicas")
                self._count("applied")
            self.states[spec.name] = PlatformAppState(observed.status.value, observed.message)
        except ImprunError as exc:
            log.warning("platform application %s: %s", spec.name, exc.message)
            self.states[spec.name] = PlatformAppState("Failed", exc.message)
            self._count("failed")

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.reconcile_steps.labels(kind=self.kind, outcome=outcome).inc()
