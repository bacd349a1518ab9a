"""Where the shared tier has each environment loaded: the replicas' own reports, read from Redis.

Every shared-runtime replica (``ray_apps.shared_runtime``) writes what it holds to one field of the
hash ``imprun:shared:loaded`` every few seconds: ``{replica, node, environments, at}``. ``SharedLoads``
reads them back for the API: an environment's ``loadedOn`` lists the replicas (and their nodes) whose
report names it, ignoring reports older than ``stale_seconds`` (a replica that died stops reporting).
Redis errors become ``Unavailable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from imprun.store.redis import Redis, redis_errors
from runtime_actors.shared.names import SHARED_LOADED_KEY

__all__ = ["LoadedOn", "SharedLoads"]

_STALE_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class LoadedOn:
    replica: str
    node: str


class SharedLoads:
    def __init__(
        self, redis: Redis, *, stale_seconds: float = _STALE_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._stale_seconds = stale_seconds
        self._clock = clock

    def of_gateway(self, gateway_id: str) -> dict[str, list[LoadedOn]]:
        """``{environment: [where it is loaded]}`` for the gateway's environments loaded anywhere."""
        loaded: dict[str, list[LoadedOn]] = {}
        for gateway, environment, where in self._reports():
            if gateway == gateway_id:
                loaded.setdefault(environment, []).append(where)
        return loaded

    def gateways(self) -> set[str]:
        """The gateways with an environment loaded on some shared replica."""
        return {gateway for gateway, _, _ in self._reports()}

    def _reports(self) -> list[tuple[str, str, LoadedOn]]:
        """``(gateway, environment, where)`` of every fresh report."""
        with redis_errors():
            reports = self._redis.hvals(SHARED_LOADED_KEY)
        now = self._clock()
        found: list[tuple[str, str, LoadedOn]] = []
        for raw in reports:
            try:
                report = json.loads(raw)
                if now - float(report["at"]) > self._stale_seconds:
                    continue
                where = LoadedOn(str(report["replica"]), str(report["node"]))
                for key in report["environments"]:
                    gateway, _, environment = str(key).partition("/")
                    found.append((gateway, environment, where))
            except (ValueError, KeyError, TypeError):
                continue  # a malformed report names nothing
        return found
