"""Keeping the runtimes' own logins in step with the gateways: one more member of the reconcile loop.

Every ``interval`` seconds it

- makes the MongoDB and Redis users of every gateway that lacks them (gateways made by a release
  without runtime users, a Redis restarted without its ACL file): the gateway reconciler makes them
  only with the gateway's database;
- has ``RuntimeLogins.sync_shared`` give the shared runtime exactly the gateways it may need: those
  on the shared tier, those with an environment placed there, and — for calls in flight to finish
  after a move to the dedicated tier — those a shared replica still reports loaded, but only when
  one of their environments left the shared tier within ``DRAIN`` (a report is written by the
  shared runtime itself, so it never adds a gateway on its own word). Deleted gateways are never
  wanted.

The environment reconciler grants a gateway before placing one of its environments; revocation
happens here only, after the grants were read (see ``sync_shared``), so a placement made by another
control plane is never left without its grant. Grants lost to an upgrade or a Redis restart come
back within one pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from imprun.domain.functions import MAX_TIMEOUT_SECONDS
from imprun.domain.gateway import Tier
from imprun.domain.phases import DesiredState
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository
from imprun.store.runtime_logins import RuntimeLogins
from imprun.store.shared_loads import SharedLoads

__all__ = ["DRAIN", "RuntimeLoginsSync"]

DRAIN: Final = timedelta(seconds=MAX_TIMEOUT_SECONDS + 60)
"""How long after leaving the shared tier an environment's calls there may still be running."""


class RuntimeLoginsSync:
    kind = "runtime-logins"

    def __init__(
        self,
        logins: RuntimeLogins,
        gateways: GatewayRepository,
        environments: EnvironmentRepository,
        loads: SharedLoads | None,
        *,
        now: Callable[[], datetime],
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logins = logins
        self.gateways = gateways
        self.environments = environments
        self.loads = loads
        self.now = now
        self.interval = interval
        self.clock = clock
        self._due = float("-inf")

    def _live(self) -> dict[str, Tier]:
        """Every gateway not being deleted, with its tier."""
        return {
            g.gateway_id: g.bundle.tier for g in self.gateways.find({}) if g.state is not DesiredState.DELETED
        }

    def wanted(self, live: dict[str, Tier]) -> set[str]:
        """Of the ``live`` gateways, those the shared runtime may need to reach now."""
        on_tier = {gw for gw, tier in live.items() if tier is Tier.SHARED}
        placed, released = self.environments.shared_gateways(released_since=self.now() - DRAIN)
        draining = released & self.loads.gateways() if self.loads is not None and released else set()
        return (on_tier | placed | draining) & set(live)

    def reconcile_one(self) -> bool:
        """One pass when due; never "worked" (the loop must not spin on it)."""
        now = self.clock()
        if now < self._due:
            return False
        self._due = now + self.interval
        live = self._live()  # read once: placements, read after the grants, cover gateways made since
        self.logins.ensure_missing(live)
        if self.loads is not None:  # the shared tier runs
            self.logins.sync_shared(lambda: self.wanted(live))
        return False
