"""Keeping the shared runtime's logins in step with the gateways the shared tier may serve.

One more member of the reconcile loop. Every ``interval`` seconds it works out which gateways the
shared runtime may need to reach — those on the shared tier, those with an environment placed there,
and those a shared replica still has loaded (a move to the dedicated tier lets calls in flight
finish) — and has ``RuntimeLogins.sync_shared`` grant what is missing and revoke the rest. A gateway
deleted, or moved to the dedicated tier with nothing left on the shared one, loses the grant here
and nowhere else; the environment reconciler only grants (before a placement), so the order of
grants and revocations never depends on which control plane ran which step. After an upgrade, or
a Redis that lost its users, the first pass puts the grants back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imprun.domain.gateway import Tier
from imprun.domain.phases import DesiredState
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository
from imprun.store.runtime_logins import RuntimeLogins
from imprun.store.shared_loads import SharedLoads
from runtime_actors.shared.names import PLACED, SHARED_PLACEMENT

__all__ = ["SharedAccessSync"]


class SharedAccessSync:
    kind = "shared-access"

    def __init__(
        self,
        logins: RuntimeLogins,
        gateways: GatewayRepository,
        environments: EnvironmentRepository,
        loads: SharedLoads,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logins = logins
        self.gateways = gateways
        self.environments = environments
        self.loads = loads
        self.interval = interval
        self.clock = clock
        self._due = float("-inf")

    def wanted(self) -> set[str]:
        """The gateways the shared runtime may need to reach now."""
        on_tier = {
            g.gateway_id
            for g in self.gateways.find({})
            if g.bundle.tier is Tier.SHARED and g.state is not DesiredState.DELETED
        }
        placed = {e.gateway_id for e in self.environments.find({SHARED_PLACEMENT: PLACED})}
        return on_tier | placed | self.loads.gateways()

    def reconcile_one(self) -> bool:
        """One pass when due; never "worked" (the loop must not spin on it)."""
        now = self.clock()
        if now < self._due:
            return False
        self._due = now + self.interval
        self.logins.sync_shared(self.wanted())
        return False
