"""Hot reload without a watcher per replica: one change feed per node and the snapshots it keeps fresh.

Three pieces, none of them Ray-specific (``ray_apps.reload_hub`` hosts them in one actor per node):

- ``ReloadFeed`` follows ONE change stream on ``<sys db>.runtime_generations`` in a thread of its own.
  nx-27017 answers a change-stream ``getMore`` at once instead of waiting for data, so the feed polls
  with ``try_next()`` and backs off from ``min_interval`` after activity to ``max_interval`` when idle;
  ``wake(key)`` (from the Redis reload channel) makes it read that key and poll at once. It keeps the
  resume token; on any stream error it reopens the stream (from the token, else from now) and then
  **resyncs**: re-reads the generation of every watched environment. An **anti-entropy** pass re-reads
  them every ``anti_entropy_interval`` seconds as well, so a lost event or wake-up costs at most that
  long. Events are only hints: the feed always reads the counters themselves (under one lock, so
  reads are ordered) and calls ``on_change(key, generation)`` when one differs from what it delivered.
- ``ReloadChannelListener`` subscribes to ``RELOAD_CHANNEL`` and turns each message into ``wake(key)``.
- ``EnvironmentSnapshots`` is the asyncio side: per ``<gw>/<env>`` the newest ``Snapshot`` and
  long-polls on it. A snapshot is everything a replica serves from: the environment's published
  functions and its ``AccessDocuments`` — the credentials of the whole gateway from ``__consumers``
  (every environment's, so a key granted elsewhere is told apart from an unknown one) and the
  environment's own ``__environments`` document (``authType``, ``rateLimit``). The control plane bumps
  the same generation after a credential or setting change as after a publish, so revocations travel
  the same path with the same guarantees. Documents are read *after* the generation they are labelled
  with, so a write the read missed bumps the generation again and is loaded on the next round: no gap.
  A snapshot may also carry the environment's environment variables, as the sealed documents of
  ``<sys db>.environment_variables`` (``load_variable_documents``): the hub never holds the key that
  opens them, each replica opens them itself (``runtime_actors.variables``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

import redis
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from runtime_actors.protocol import (
    CONSUMERS,
    ENVIRONMENT_SETTINGS,
    GENERATIONS,
    PART_ACCESS,
    PART_FUNCTIONS,
    PART_VARIABLES,
    PUBLISHED_FUNCTIONS,
    RELOAD_CHANNEL,
    RUNTIME_PARTS,
    VARIABLES,
    part_counter,
)

__all__ = [
    "ENVIRONMENT_SETTINGS",
    "AccessDocuments",
    "EnvironmentSnapshots",
    "FeedStats",
    "ReloadChannelListener",
    "ReloadFeed",
    "Snapshot",
    "SnapshotUnavailable",
    "environment_key",
    "load_access_documents",
    "load_published_documents",
    "load_runtime_parts",
    "load_variable_documents",
]

logger = logging.getLogger(__name__)

Document = dict[str, Any]

_RETRY_MAX_S: Final = 5.0

"""Gateway-database collection of per-environment settings ``{_id: <env>, authType, rateLimit}``."""

_CONSUMER_FIELDS: Final = {
    "_id": False,
    "credentialId": True,
    "grantId": True,
    "applicationId": True,
    "environment": True,
    "lookupHash": True,
    "active": True,
    "rateLimit": True,
}
"""What a replica needs of a credential (and nothing else the control plane may store there)."""


class AccessDocuments(TypedDict):
    """Who may call an environment, as read from the gateway database (plain documents, JSON-able)."""

    consumers: list[Document]
    """Every credential of the gateway, all environments."""
    environment: Document | None
    """The environment's ``__environments`` document; None means key-auth without a rate limit."""


def environment_key(gateway_id: str, environment: str) -> str:
    """The ``<gw>/<env>`` key of the generation counters and the reload channel."""
    return f"{gateway_id}/{environment}"


def load_published_documents(client: MongoClient[Document], key: str) -> list[Document]:
    """The published function documents of one environment, without their ``_id``."""
    gateway_id, _, environment = key.partition("/")
    collection = client[f"gatewayid_{gateway_id}"][PUBLISHED_FUNCTIONS]
    return list(collection.find({"environment": environment}, {"_id": False}))


def load_access_documents(client: MongoClient[Document], key: str) -> AccessDocuments:
    """The gateway's credentials and the environment's settings document."""
    gateway_id, _, environment = key.partition("/")
    database = client[f"gatewayid_{gateway_id}"]
    return {
        "consumers": list(database[CONSUMERS].find({}, _CONSUMER_FIELDS)),
        "environment": database[ENVIRONMENT_SETTINGS].find_one({"_id": environment}, {"_id": False}),
    }


_VARIABLE_FIELDS: Final = {
    "_id": False,
    "name": True,
    "secret": True,
    "keyVersion": True,
    "nonce": True,
    "ciphertext": True,
}


def load_variable_documents(client: MongoClient[Document], sys_db_name: str, key: str) -> list[Document]:
    """The environment's sealed variables ``{name, secret, keyVersion, nonce, ciphertext}`` (never opened)."""
    gateway_id, _, environment = key.partition("/")
    query = {"gatewayId": gateway_id, "environment": environment}
    return list(client[sys_db_name][VARIABLES].find(query, _VARIABLE_FIELDS))


def load_runtime_parts(client: MongoClient[Document], sys_db_name: str, key: str) -> dict[str, int] | None:
    """The environment's per-part change counters, or None when they cannot be trusted (some bump did
    not name its part — an older writer — so their sum falls short of the generation: read everything)."""
    doc = client[sys_db_name][GENERATIONS].find_one({"_id": key})
    if doc is None:
        return None
    counters = {part: int(doc.get(part_counter(part)) or 0) for part in RUNTIME_PARTS}
    return counters if sum(counters.values()) == _generation_of(doc) else None


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
                self._delivered[key] = _generation_of(found)
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
                retry = min(max(retry * 2, 0.05), _RETRY_MAX_S)
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
                doc["_id"]: _generation_of(doc)
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


def _generation_of(doc: Mapping[str, Any] | None) -> int:
    return int(doc.get("generation") or 0) if doc else 0


class ReloadChannelListener:
    """Subscribes to the reload channel and calls ``on_message(key)`` per message; reconnects forever."""

    def __init__(
        self,
        connect: Callable[[], redis.Redis],
        on_message: Callable[[str], None],
        *,
        poll_timeout: float = 1.0,
    ) -> None:
        self._connect = connect
        self._on_message = on_message
        self._poll_timeout = poll_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imprun-reload-channel", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        retry = 0.05
        while not self._stop.is_set():
            try:
                self._follow()
                retry = 0.05
            except Exception as exc:  # wake-ups are an optimisation: keep trying, never stop
                self.connected.clear()
                logger.warning("reload channel: %r; reconnecting in %.2f s", exc, retry)
                self._stop.wait(retry)
                retry = min(retry * 2, _RETRY_MAX_S)

    def _follow(self) -> None:
        client = self._connect()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(RELOAD_CHANNEL)
            self.connected.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=self._poll_timeout)
                if message and message.get("type") == "message":
                    data = message["data"]
                    self._on_message(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.close()
                client.close()


class SnapshotUnavailable(Exception):
    """The environment's functions could not be read within the deadline (the database is down?)."""


@dataclass(frozen=True)
class Snapshot:
    generation: int
    documents: tuple[Document, ...]
    """The published functions."""
    access: AccessDocuments | None = None
    """None when the snapshots were built without an access loader."""
    variables: tuple[Document, ...] | None = field(default=None, repr=False)
    """The sealed variable documents; None when the snapshots were built without a variables loader."""
    parts: Mapping[str, int] | None = None
    """The per-part change counters read before the documents (None: unknown, the next read is full)."""


@dataclass(eq=False)
class _Entry:
    target: int | None = None  # newest generation announced (None until the first read)
    current: Snapshot | None = None
    loader: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class EnvironmentSnapshots:
    """The asyncio side of a hub: the newest snapshot per environment, loaded once per generation.

    ``watch(key) -> generation`` starts following a key (``ReloadFeed.watch``); ``load(key)`` reads
    its published documents and ``load_access(key)``, when given, its ``AccessDocuments`` (all after
    the generation, in one worker-thread hop: read side by side they were no faster on nx-27017). All of them block and run in worker threads.
    ``notify_threadsafe`` is the feed's ``on_change``. Each key has at most one loader task, which reloads until the snapshot's generation
    is the newest announced one, retrying with backoff while the database is down (the old snapshot
    stays served meanwhile).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        watch: Callable[[str], int],
        load: Callable[[str], list[Document]],
        load_access: Callable[[str], AccessDocuments] | None = None,
        load_variables: Callable[[str], list[Document]] | None = None,
        load_parts: Callable[[str], Mapping[str, int] | None] | None = None,
    ) -> None:
        self._loop = loop
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

    async def snapshot(self, key: str, timeout_s: float = 10.0) -> Snapshot:
        entry = self._entry(key)
        if entry.current is None:
            try:
                await asyncio.wait_for(entry.ready.wait(), timeout_s)
            except TimeoutError as exc:
                raise SnapshotUnavailable(
                    f"the functions of {key} could not be read in {timeout_s:g} s"
                ) from exc
        assert entry.current is not None
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
                    retry = min(retry * 2, _RETRY_MAX_S)
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
