"""The reload hub: one detached Ray actor per node that keeps every local replica's functions fresh.

Replicas never watch MongoDB. The first replica of a node to start creates the hub (named
``imprun-reload-hub-<node id>-<config digest>`` in namespace ``imprun``, pinned to the node with a
hard ``NodeAffinitySchedulingStrategy``, ``num_cpus=0``; later replicas get the same actor through
``get_if_exists``). The hub holds one small ``MongoClient`` with one ``ReloadFeed`` (so one change
stream per node, whatever the number of environments and replicas), one Redis pub/sub connection
that turns ``imprun:reload`` messages into wake-ups, and the per-environment ``EnvironmentSnapshots``.
Replicas call ``snapshot`` once and then long-poll ``wait_changed``: an idle replica costs one pending
actor call and no CPU. Both answer a ``runtime_actors.shared.messages.Snapshot``: the published
functions, ``AccessDocuments`` (the gateway's credentials and the environment's settings) and the
environment's sealed variable documents, all read after the same generation (the hub cannot open the
variables: only replicas hold that key). The logic lives in ``runtime_actors.hub``; this module is
the Ray wiring.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
from typing import Any, Final

import ray
import redis
from pymongo import MongoClient
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runtime_actors.hub.feed import ReloadFeed
from runtime_actors.hub.reads import (
    environment_key,
    load_access_documents,
    load_generation,
    load_published_documents,
    load_runtime_parts,
    load_variable_documents,
)
from runtime_actors.hub.snapshots import EnvironmentSnapshots
from runtime_actors.hub.wakeups import ReloadChannelListener
from runtime_actors.shared.messages import Snapshot
from runtime_actors.shared.names import GENERATIONS

__all__ = [
    "HUB_NAMESPACE",
    "ReloadHub",
    "hub_name",
    "reload_hub_for_this_node",
]

HUB_NAMESPACE: Final = "imprun"
_MONGO_POOL_SIZE: Final = 8
_HUB_MAX_CONCURRENCY: Final = 10_000  # pending long-polls: one per local replica
_HUB_PROTOCOL: Final = 6
"""Part of the hub's name; changed whenever the hub's methods or answers change, so a replica never
asks a detached hub left by other code a question it cannot answer."""


class ReloadHub:
    """The actor body (plain class, so tests can run it in-process): snapshots and long-polls."""

    def __init__(
        self, mongo_url: str, redis_url: str | None, sys_db_name: str, anti_entropy_interval: float = 5.0
    ) -> None:
        self._mongo_url = mongo_url
        self._redis_url = redis_url
        self._sys_db_name = sys_db_name
        self._anti_entropy_interval = anti_entropy_interval
        self._client: MongoClient[dict[str, Any]] | None = None
        self._feed: ReloadFeed | None = None
        self._listener: ReloadChannelListener | None = None
        self._snapshots: EnvironmentSnapshots | None = None

    async def snapshot(self, gateway_id: str, environment: str, timeout_s: float = 10.0) -> Snapshot:
        """A replica's first snapshot: no older than the generation counter when asked."""
        key = environment_key(gateway_id, environment)
        return await self._started().snapshot(key, timeout_s, fresh=True)

    async def wait_changed(
        self, gateway_id: str, environment: str, known_generation: int, timeout_s: float
    ) -> Snapshot | None:
        key = environment_key(gateway_id, environment)
        return await self._started().wait_changed(key, known_generation, timeout_s)

    async def stats(self) -> dict[str, Any]:
        """Counters of the feed, the watched environments and the hub's pid (for tests and ops)."""
        self._started()
        assert self._feed is not None
        return {"pid": os.getpid(), "feed": vars(self._feed.stats).copy(), "watched": self._feed.watched()}

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._feed is not None:
            self._feed.close()
        if self._client is not None:
            self._client.close()
        self._client = self._feed = self._listener = self._snapshots = None

    def _started(self) -> EnvironmentSnapshots:
        """Start the feed on first use, inside the actor's event loop (Ray runs ``__init__`` elsewhere)."""
        if self._snapshots is not None:
            return self._snapshots
        client: MongoClient[dict[str, Any]] = MongoClient(
            self._mongo_url,
            maxPoolSize=_MONGO_POOL_SIZE,
            serverSelectionTimeoutMS=2_000,
            appname="imprun-reload-hub",
        )
        loop = asyncio.get_running_loop()
        snapshots: EnvironmentSnapshots
        feed = ReloadFeed(
            client[self._sys_db_name][GENERATIONS],
            lambda key, generation: snapshots.notify_threadsafe(key, generation),
            anti_entropy_interval=self._anti_entropy_interval,
        )
        snapshots = EnvironmentSnapshots(
            loop,
            feed.watch,
            lambda key: load_published_documents(client, key),
            lambda key: load_access_documents(client, key),
            lambda key: load_variable_documents(client, self._sys_db_name, key),
            lambda key: load_runtime_parts(client, self._sys_db_name, key),
            lambda key: load_generation(client, self._sys_db_name, key),
        )
        feed.start()
        if self._redis_url is not None:
            redis_url = self._redis_url
            self._listener = ReloadChannelListener(lambda: redis.Redis.from_url(redis_url), feed.wake)
            self._listener.start()
        self._client, self._feed, self._snapshots = client, feed, snapshots
        return snapshots


@functools.cache
def _hub_actor_class() -> Any:
    return ray.remote(ReloadHub)


def hub_name(node_id: str, mongo_url: str, redis_url: str | None, sys_db_name: str) -> str:
    """One hub per node, configuration and hub protocol (a digest, never the URLs: they may carry
    credentials); a detached hub left by older code is never asked a question it cannot answer."""
    identity = f"{mongo_url}\0{redis_url}\0{sys_db_name}\0{_HUB_PROTOCOL}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"imprun-reload-hub-{node_id}-{digest}"


def reload_hub_for_this_node(mongo_url: str, redis_url: str | None, sys_db_name: str) -> Any:
    """The handle of this node's hub, created on first use. Call from inside a Ray worker."""
    node_id = ray.get_runtime_context().get_node_id()
    return (
        _hub_actor_class()
        .options(
            name=hub_name(node_id, mongo_url, redis_url, sys_db_name),
            namespace=HUB_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            max_concurrency=_HUB_MAX_CONCURRENCY,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        )
        .remote(mongo_url, redis_url, sys_db_name)
    )
