"""The reconcile loop: a background task of the control plane that ticks every reconciler.

Each tick drains what is claimable (bounded per tick), in a worker thread because the store and
drivers are blocking clients. Everything is caught per reconciler and logged: the loop never dies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Reconciles(Protocol):
    kind: str

    def reconcile_one(self) -> bool: ...


class ReconcileLoop:
    def __init__(
        self, reconcilers: Sequence[Reconciles], *, interval: float = 1.0, per_tick: int = 50
    ) -> None:
        self.reconcilers = list(reconcilers)
        self.interval = interval
        self.per_tick = per_tick
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def tick(self) -> int:
        """Run one tick synchronously; returns how many resources were worked on."""
        worked = 0
        for reconciler in self.reconcilers:
            for _ in range(self.per_tick):
                try:
                    if not reconciler.reconcile_one():
                        break
                except Exception:
                    log.exception("%s reconciler tick failed; continuing", reconciler.kind)
                    break
                worked += 1
        return worked

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before the tick: a wake-up arriving during it is not lost
            try:
                worked = await asyncio.to_thread(self.tick)
            except Exception:  # pragma: no cover - tick() already catches; belt and braces
                log.exception("reconcile tick failed")
                worked = 0
            if worked:
                continue  # more may be claimable right away
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    def wake(self) -> None:
        """Tick now instead of at the next interval (after the API recorded a change); thread-safe."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self.run(), name="imprun-reconcile-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
