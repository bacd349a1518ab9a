"""``LoadedEnvironments``: the environments one shared replica holds, loaded on demand, evicted when idle.

A shared-tier replica (``ray_apps.shared_runtime``) serves many environments, each through its own
``Supervisor`` and jailed workers. This cache decides which of them are loaded: ``use(key)`` loads an
environment on its first call (concurrent first calls share one load; loads of different
environments run side by side) and counts the call while it runs. An environment is evicted when it
has been idle for ``idle_seconds`` (``sweep``), when the replica holds ``max_loaded`` and another must
come in (the least recently used goes first, idle ones before busy ones), when the replica's memory
is over its budget (``over_budget``, checked after each load), or on request (``evict``: the
environment was deleted or moved to the dedicated tier). An evicted environment leaves the table at
once, so the next call loads it afresh (its latest published version), but it is closed only when
its calls in flight have finished: eviction never cuts a running call. Pure asyncio, no Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["LoadedEnvironments"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True, eq=False)  # compared and hashed by identity: one per load
class _Entry(Generic[T]):
    value: T
    last_used: float
    busy: int = 0
    evicted: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class LoadedEnvironments(Generic[T]):
    """Environments loaded on this replica, by key (``<gw>/<env>``); see the module docstring."""

    def __init__(
        self,
        load: Callable[[str], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        *,
        max_loaded: int,
        idle_seconds: float,
        over_budget: Callable[[], bool] = lambda: False,
        on_change: Callable[[list[str]], None] = lambda keys: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_loaded < 1 or idle_seconds <= 0:
            raise ValueError("max_loaded must be >= 1 and idle_seconds > 0")
        self._load = load
        self._close = close
        self._max_loaded = max_loaded
        self._idle_seconds = idle_seconds
        self._over_budget = over_budget
        self._on_change = on_change
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Entry[T]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._draining: set[_Entry[T]] = set()
        self._drained = asyncio.Event()
        self.loads = 0
        self.evictions = 0

    def loaded(self) -> list[str]:
        """Keys of the loaded environments, least recently used first."""
        return list(self._entries)

    def is_loaded(self, key: str) -> bool:
        return key in self._entries

    def peek(self, key: str) -> T | None:
        """The loaded environment ``key`` without using it (no load, no recency), or None."""
        entry = self._entries.get(key)
        return entry.value if entry is not None else None

    @contextlib.asynccontextmanager
    async def use(self, key: str) -> AsyncIterator[T]:
        """The loaded environment ``key`` (loading it first if needed), counted busy while in use.
        Raises whatever loading raised; a failed load is not remembered (the next call tries again)."""
        entry = await self._entry(key)
        entry.busy += 1
        try:
            yield entry.value
        finally:
            entry.busy -= 1
            entry.last_used = self._clock()
            if entry.evicted and entry.busy == 0:
                self._close_later(key, entry)

    async def _entry(self, key: str) -> _Entry[T]:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[key] = pending
            try:
                entry = _Entry(await self._load(key), self._clock())
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning when nobody else waits
                raise
            finally:
                del self._loading[key]
            self.loads += 1
            self._make_room(keep=key)
            self._entries[key] = entry
            pending.set_result(entry)
            while len(self._entries) > 1 and self._over_budget():
                self._evict_one(keep=key)
            self._on_change(self.loaded())
            return entry
        try:
            entry = await asyncio.shield(pending)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return await self._entry(key)  # the call that was loading it was cancelled, not this one
        # evicted and closed before this call had its turn: load it afresh
        return await self._entry(key) if entry.closed.is_set() else entry

    def _make_room(self, keep: str) -> None:
        while len(self._entries) >= self._max_loaded:
            self._evict_one(keep)

    def _evict_one(self, keep: str) -> None:
        """Evict the least recently used environment, an idle one if any is."""
        candidates = [k for k in self._entries if k != keep]
        idle = [k for k in candidates if self._entries[k].busy == 0]
        victim = (idle or candidates)[0]
        self._remove(victim)

    def evict(self, key: str) -> bool:
        """Unload ``key`` (once its calls in flight finish); False when it was not loaded."""
        if key not in self._entries:
            return False
        self._remove(key)
        self._on_change(self.loaded())
        return True

    def sweep(self) -> list[str]:
        """Evict every environment idle for ``idle_seconds``; returns their keys."""
        now = self._clock()
        idle = [
            key
            for key, entry in self._entries.items()
            if entry.busy == 0 and now - entry.last_used >= self._idle_seconds
        ]
        for key in idle:
            self._remove(key)
        if idle:
            self._on_change(self.loaded())
        return idle

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        entry.evicted = True
        self.evictions += 1
        if entry.busy == 0:
            self._close_later(key, entry)
        else:
            self._draining.add(entry)
            self._drained.clear()

    def _close_later(self, key: str, entry: _Entry[T]) -> None:
        if entry.closed.is_set():
            return
        entry.closed.set()
        self._draining.discard(entry)
        if not self._draining:
            self._drained.set()
        task = asyncio.get_running_loop().create_task(self._closed(key, entry.value), name=f"unload {key}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _closed(self, key: str, value: T) -> None:
        try:
            await self._close(value)
        except Exception:
            logger.exception("closing the environment %s failed", key)

    async def close(self, drain_seconds: float = 30.0) -> None:
        """Evict everything and wait for every environment to close, its calls in flight first (for
        at most ``drain_seconds``: calls end within their function's timeout)."""
        for key in list(self._entries):
            self._remove(key)
        if self._draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain_seconds)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
