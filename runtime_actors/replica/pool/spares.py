"""Jailed workers spawned before any environment needs them, for pools that start on a first call.

A shared-tier replica loads an environment when its first call arrives, and spawning that
environment's worker (a fresh interpreter that applies its jail) is about 100 ms of that call on two
cores. ``SpareWorkers`` keeps ``count`` workers spawned ahead of need: a ``WorkerPool`` given it takes
a spare instead of spawning (at start and for each replacement), and the spare is replaced in the
background. A spare has run nothing: its jail holds nothing of any environment (its scratch
directory is its own and goes with it, and code and variables arrive with the pool's first load), so
handing it to one environment shares nothing with another. A spare is handed over only to a pool
whose ``WorkerSpec`` (limits, jail options, interpreter, uid) is the one it was spawned with.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from runtime_actors.replica.pool.launcher import WorkerProcess, WorkerRefused
from runtime_actors.replica.pool.scratch import claim_scratch
from runtime_actors.shared.jail_config import UNPRIVILEGED_UID, WorkerLimits, read_only_paths

__all__ = ["SpareWorkers", "WorkerSpec"]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S: Final = 0.5
_RETRY_MAX_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker is spawned with but its scratch directory."""

    limits: WorkerLimits = field(default_factory=WorkerLimits)
    insecure: bool = False
    min_landlock_abi: int = 1
    python: str = sys.executable
    run_as: int | None = UNPRIVILEGED_UID

    async def spawn(self, scratch_dir: Path) -> WorkerProcess:
        return await WorkerProcess.spawn(
            scratch_dir=scratch_dir,
            read_only_paths=read_only_paths(),
            limits=self.limits,
            insecure=self.insecure,
            min_landlock_abi=self.min_landlock_abi,
            python=self.python,
            run_as=self.run_as,
        )


class SpareWorkers:
    """Up to ``count`` workers of ``spec``, spawned ahead; see the module docstring.

    ``start`` (on the event loop the pools run on) begins filling; ``take`` never waits.
    """

    def __init__(self, count: int, spec: WorkerSpec | None = None) -> None:
        if count < 0:
            raise ValueError("the number of spare workers cannot be negative")
        self.count = count
        self.spec = spec or WorkerSpec()
        self._ready: deque[WorkerProcess] = deque()
        self._wanted = asyncio.Event()
        self._serial = itertools.count()
        self._root: Path | None = None
        self._filler: asyncio.Task[None] | None = None
        self.taken = 0
        """Spares handed to pools so far (the cold starts they shortened)."""

    def start(self) -> None:
        if self.count and self._filler is None:
            self._root = claim_scratch()
            self._filler = asyncio.create_task(self._fill(), name="spare workers")

    @property
    def root(self) -> Path | None:
        """The directory the spares' scratch directories are made in (once started)."""
        return self._root

    @property
    def ready(self) -> int:
        return len(self._ready)

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._ready]

    def take(self, spec: WorkerSpec) -> WorkerProcess | None:
        """A spare spawned with ``spec``, still alive, or None (the caller spawns its own)."""
        if spec != self.spec:
            return None
        while self._ready:
            worker = self._ready.popleft()
            self._wanted.set()
            if worker.alive:
                self.taken += 1
                return worker
            asyncio.create_task(worker.dispose(), name="dead spare worker")  # noqa: RUF006 (it ends by itself)
        return None

    async def close(self) -> None:
        """Stop filling and stop the spares not taken (taken ones belong to their pools now)."""
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
        spares, self._ready = list(self._ready), deque()
        await asyncio.gather(*(worker.dispose() for worker in spares), return_exceptions=True)
        if self._root is not None:
            with contextlib.suppress(OSError):  # empty once the pools that took spares are closed too
                self._root.rmdir()

    async def _fill(self) -> None:
        assert self._root is not None
        retry = _RETRY_FIRST_S
        while True:
            while len(self._ready) < self.count:
                try:
                    worker = await self.spec.spawn(self._root / f"spare-{next(self._serial)}")
                except WorkerRefused as exc:  # pools get the same refusal, and say so to their callers
                    logger.warning("no spare workers: the jail was refused (%s)", exc)
                    return
                except Exception as exc:
                    logger.warning("could not spawn a spare worker (%r); retrying in %.1f s", exc, retry)
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, _RETRY_MAX_S)
                    continue
                retry = _RETRY_FIRST_S
                self._ready.append(worker)
            self._wanted.clear()
            await self._wanted.wait()
