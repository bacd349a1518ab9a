"""``EnvironmentSnapshots``: the asyncio side of a hub, the newest ``Snapshot`` per ``<gw>/<env>``.

A snapshot is everything a replica serves from: the environment's published functions, its
``AccessDocuments`` — the credentials of the whole gateway from ``__consumers`` (every environment's,
so a key granted elsewhere is told apart from an unknown one) and the environment's own
``__environments`` document (``authType``, ``rateLimit``) — and its sealed variables. The control
plane bumps the same generation after a credential or setting change as after a publish, so
revocations travel the same path with the same guarantees. Replicas take one snapshot and then
long-poll ``wait_changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from runtime_actors.hub import RETRY_MAX_S
from runtime_actors.shared.messages import AccessDocuments, Document, Snapshot
from runtime_actors.shared.names import PART_ACCESS, PART_FUNCTIONS, PART_VARIABLES

__all__ = ["EnvironmentSnapshots", "SnapshotUnavailable"]

logger = logging.getLogger(__name__)


class SnapshotUnavailable(Exception):
    """The environment's functions could not be read within the deadline (the database is down?)."""


@dataclass(eq=False)
class _Entry:
    target: int | None = None  # newest generation announced (None until the first read)
    current: Snapshot | None = None
    loader: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class EnvironmentSnapshots:
    """The newest snapshot per environment, loaded once per generation.

    ``watch(key) -> generation`` starts following a key (``ReloadFeed.watch``); ``load(key)`` reads
    its published documents, ``load_access``, ``load_variables`` and ``load_parts``, when given, its
    ``AccessDocuments``, sealed variables and per-part counters — all after the generation, in one
    worker-thread hop (read side by side they were no faster on nx-27017), and only the parts whose
    counters changed. ``notify_threadsafe`` is the feed's ``on_change``. Each key has at most one
    loader task, which reloads until the snapshot's generation is the newest announced one, retrying
    with backoff while the database is down (the old snapshot stays served meanwhile).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        watch: Callable[[str], int],
        load: Callable[[str], list[Document]],
        load_access: Callable[[str], AccessDocuments] | None = None,
        load_variables: Callable[[str], list[Document]] | None = None,
        load_parts: Callable[[str], Mapping[str, int] | None] | None = None,
        load_generation: Callable[[str], int] | None = None,
    ) -> None:
        self._loop = loop
        self._load_generation = load_generation
        self._load_parts = load_parts
        self._watch = watch
        self._load = load
        self._load_access = load_access
        self._load_variables = load_variables
        self._entries: dict[str, _Entry] = {}

    def keys(self) -> list[str]:
        return list(self._entries)

    def notify_threadsafe(self, key: str, generation: int) -> None:
        self._loop.call_soon_threadsafe(self._announce, key, generation)

    async def snapshot(self, key: str, timeout_s: float = 10.0, *, fresh: bool = False) -> Snapshot:
        """The newest snapshot; with ``fresh`` (a replica's first, which it serves from at once), one
        at least as new as the generation counter reads now — the feed may not have seen a publish
        made just before (``load_generation`` reads the counter)."""
        entry = self._entry(key)
        deadline = self._loop.time() + timeout_s
        try:
            await asyncio.wait_for(entry.ready.wait(), timeout_s)
        except TimeoutError as exc:
            raise SnapshotUnavailable(f"the functions of {key} could not be read in {timeout_s:g} s") from exc
        assert entry.current is not None
        if fresh and self._load_generation is not None:
            newest = await asyncio.to_thread(self._load_generation, key)
            if newest > entry.current.generation:
                entry.target = max(entry.target or 0, newest)
                self._ensure_loader(key, entry)
            while entry.current.generation < newest and (remaining := deadline - self._loop.time()) > 0:
                with contextlib.suppress(TimeoutError):  # still behind: serve what there is
                    await asyncio.wait_for(entry.changed.wait(), remaining)
        return entry.current

    async def wait_changed(self, key: str, known_generation: int, timeout_s: float) -> Snapshot | None:
        """The snapshot once its generation differs from ``known_generation``; None after ``timeout_s``."""
        deadline = self._loop.time() + timeout_s
        current = await self.snapshot(key, timeout_s)
        entry = self._entries[key]
        while current.generation == known_generation:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(entry.changed.wait(), remaining)
            except TimeoutError:
                return None
            assert entry.current is not None
            current = entry.current
        return current

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            self._ensure_loader(key, entry)
        return entry

    def _announce(self, key: str, generation: int) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.target = generation
            self._ensure_loader(key, entry)

    def _ensure_loader(self, key: str, entry: _Entry) -> None:
        if entry.loader is None:
            entry.loader = self._loop.create_task(self._keep_current(key, entry), name=f"reload {key}")

    async def _keep_current(self, key: str, entry: _Entry) -> None:
        retry = 0.05
        try:
            while True:
                try:
                    if entry.target is None:
                        generation = await asyncio.to_thread(self._watch, key)
                        if entry.target is None:  # a notification may have overtaken the read
                            entry.target = generation
                    if entry.current is not None and entry.current.generation == entry.target:
                        return
                    generation = entry.target
                    snapshot = await asyncio.to_thread(self._read, key, generation, entry.current)
                    self._publish(entry, snapshot)
                    retry = 0.05
                except Exception as exc:
                    logger.warning("reload: cannot load %s (%s); retrying in %.2f s", key, exc, retry)
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, RETRY_MAX_S)
        finally:
            entry.loader = None

    def _read(self, key: str, generation: int, previous: Snapshot | None) -> Snapshot:
        """Read what changed since ``previous`` (everything without it or without trusted counters).

        The counters are read first: a change after that read bumps the generation again, and the
        next read picks it up."""
        parts = self._load_parts(key) if self._load_parts is not None else None

        def changed(part: str) -> bool:
            return (
                previous is None
                or previous.parts is None
                or parts is None
                or previous.parts[part] != parts[part]
            )

        documents = (
            tuple(self._load(key)) if changed(PART_FUNCTIONS) or previous is None else previous.documents
        )
        access = previous.access if previous is not None else None
        if self._load_access is not None and (changed(PART_ACCESS) or access is None):
            access = self._load_access(key)
        variables = previous.variables if previous is not None else None
        if self._load_variables is not None and (changed(PART_VARIABLES) or variables is None):
            variables = tuple(self._load_variables(key))
        return Snapshot(generation, documents, access, variables, parts)

    @staticmethod
    def _publish(entry: _Entry, snapshot: Snapshot) -> None:
        entry.current = snapshot
        entry.ready.set()
        changed, entry.changed = entry.changed, asyncio.Event()
        changed.set()
