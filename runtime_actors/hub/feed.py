"""``ReloadFeed``: one change stream per node on ``<sys db>.runtime_generations``, in a thread of its own.

nx-27017 answers a change-stream ``getMore`` at once instead of waiting for data, so the feed polls
with ``try_next()`` and backs off from ``min_interval`` after activity to ``max_interval`` when idle;
``wake(key)`` (from the Redis reload channel) makes it read that key and poll at once. It keeps the
resume token; on any stream error it reopens the stream (from the token, else from now) and then
**resyncs**: re-reads the generation of every watched environment. An **anti-entropy** pass re-reads
them every ``anti_entropy_interval`` seconds as well, so a lost event or wake-up costs at most that
long. Events are only hints: the feed always reads the counters themselves (under one lock, so
reads are ordered) and calls ``on_change(key, generation)`` when one differs from what it delivered.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from runtime_actors.hub import RETRY_MAX_S
from runtime_actors.hub.reads import generation_of
from runtime_actors.shared.messages import Document

__all__ = ["FeedStats", "ReloadFeed"]

logger = logging.getLogger(__name__)


@dataclass
class FeedStats:
    """Counters a test or a metrics endpoint can read (plain ints, updated by the feed thread)."""

    polls: int = 0
    events: int = 0
    deliveries: int = 0
    reconnects: int = 0
    resyncs: int = 0
    anti_entropy_runs: int = 0
    anti_entropy_fixes: int = 0
    errors: int = 0


class ReloadFeed:
    """Follows one change stream on the generation counters and reports changed generations."""

    def __init__(
        self,
        generations: Collection[Document],
        on_change: Callable[[str, int], None],
        *,
        min_interval: float = 0.001,
        max_interval: float = 0.25,
        anti_entropy_interval: float = 5.0,
        name: str = "imprun-reload-feed",
    ) -> None:
        if not 0 < min_interval <= max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        self._generations = generations
        self._on_change = on_change
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._anti_entropy_interval = anti_entropy_interval
        self._lock = threading.Lock()  # orders every read of the counters and guards _delivered
        self._delivered: dict[str, int] = {}
        self._woken: set[str] = set()
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._stream: Any = None
        self._resume_token: Mapping[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.stats = FeedStats()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._drop_stream()

    def watch(self, key: str) -> int:
        """Follow ``key`` from now on and return its current generation (0 when it has none yet)."""
        with self._lock:
            if key not in self._delivered:
                found = self._generations.find_one({"_id": key}, {"generation": True})
                self._delivered[key] = generation_of(found)
            return self._delivered[key]

    def unwatch(self, key: str) -> None:
        with self._lock:
            self._delivered.pop(key, None)

    def watched(self) -> dict[str, int]:
        """The watched keys with the generation last delivered (or read by ``watch``) for each."""
        with self._lock:
            return dict(self._delivered)

    def wake(self, key: str | None = None) -> None:
        """Poll the stream now (and re-read ``key``'s counter): something was just published."""
        if key is not None:
            with self._lock:
                self._woken.add(key)
        self._wakeup.set()

    def _run(self) -> None:
        interval = self._min_interval
        next_poll = next_anti_entropy = time.monotonic()
        retry = self._min_interval
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self._stream is None:
                    self._open_stream()
                    interval = self._min_interval
                woken = self._take_woken()
                if woken is not None:
                    self._refresh(woken)
                    next_poll, interval = now, self._min_interval
                if now >= next_poll:
                    interval = self._min_interval if self._poll() else min(interval * 2, self._max_interval)
                    next_poll = time.monotonic() + interval
                if now >= next_anti_entropy:
                    self._anti_entropy()
                    next_anti_entropy = time.monotonic() + self._anti_entropy_interval
                retry = self._min_interval
            except Exception as exc:  # the feed must never stop: reconnect and resync after anything
                self.stats.errors += 1
                if isinstance(exc, PyMongoError):
                    logger.warning("reload feed: %s; reconnecting and resyncing", exc)
                else:
                    logger.exception("reload feed: unexpected error; reconnecting and resyncing")
                self._drop_stream()
                retry = min(max(retry * 2, 0.05), RETRY_MAX_S)
                next_poll = time.monotonic() + retry
            self._wakeup.wait(max(0.0, min(next_poll, next_anti_entropy) - time.monotonic()))
            self._wakeup.clear()

    def _open_stream(self) -> None:
        """Open the stream (resuming when we can), then resync: nothing before or after it is missed."""
        if self._resume_token is not None:
            self.stats.reconnects += 1
            try:
                self._stream = self._generations.watch(resume_after=self._resume_token)
            except OperationFailure as exc:
                logger.warning("reload feed: cannot resume (%s); following from now", exc)
                self._resume_token = None
        if self._stream is None:
            self._stream = self._generations.watch()
        self._resume_token = self._stream.resume_token
        self.stats.resyncs += 1
        self._refresh(None)

    def _poll(self) -> bool:
        """Drain what the stream has; True if it had anything."""
        touched: set[str] = set()
        everything = False
        change = self._stream.try_next()
        self.stats.polls += 1
        while change is not None:
            self.stats.events += 1
            key = (change.get("documentKey") or {}).get("_id")
            if isinstance(key, str):
                touched.add(key)
            else:  # drop, rename, invalidate…: the collection itself changed
                everything = True
            change = self._stream.try_next()
            self.stats.polls += 1
        if not self._stream.alive:
            self._drop_stream()
            everything = True
        else:
            self._resume_token = self._stream.resume_token
        if everything:
            self._refresh(None)
        elif touched:
            self._refresh(touched)
        return everything or bool(touched)

    def _anti_entropy(self) -> None:
        self.stats.anti_entropy_runs += 1
        self.stats.anti_entropy_fixes += self._refresh(None)

    def _refresh(self, keys: set[str] | None) -> int:
        """Read the counters of ``keys`` (None: every watched key), deliver those that changed."""
        changed: list[tuple[str, int]] = []
        with self._lock:
            wanted = list(self._delivered) if keys is None else [k for k in keys if k in self._delivered]
            if not wanted:
                return 0
            found = {
                doc["_id"]: generation_of(doc)
                for doc in self._generations.find({"_id": {"$in": wanted}}, {"generation": True})
            }
            for key in wanted:
                generation = found.get(key, 0)
                if generation != self._delivered[key]:
                    self._delivered[key] = generation
                    changed.append((key, generation))
        for key, generation in changed:
            self.stats.deliveries += 1
            try:
                self._on_change(key, generation)
            except Exception:
                logger.exception("reload feed: subscriber failed on %s generation %d", key, generation)
        return len(changed)

    def _take_woken(self) -> set[str] | None:
        with self._lock:
            if not self._woken:
                return None
            woken, self._woken = self._woken, set()
            return woken

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(PyMongoError):
                stream.close()
