"""The runtime feed: how a change to what replicas follow is announced, once for every writer.

Replicas follow a gateway environment through documents in ``gatewayid_<gw>`` (published functions,
consumers, environment settings). After every such write the writer calls ``RuntimeFeed.changed``:
it bumps the environment's counter in ``<sys db>.runtime_generations`` (``{_id: "<gw>/<env>",
generation, functionsGeneration, accessGeneration, variablesGeneration}``, upserted: the part
counters say which kind of document changed, so a reload reads only those) — the lossless signal replicas compare against — and then publishes
``<gw>/<env>`` on Redis's ``imprun:reload`` channel, best effort: a lost announcement only delays a
replica until its next generation check. The counters only ever grow, even when a gateway is deleted,
so a replica that remembers a higher number never ignores a re-created gateway of the same id.
"""

from __future__ import annotations

import logging

from pymongo.database import Database
from redis.exceptions import RedisError

from imprun.store.mongo import Document, mongo_errors
from imprun.store.redis import Redis
from runtime_actors.shared.names import GENERATIONS, RELOAD_CHANNEL, RUNTIME_PARTS, part_counter

log = logging.getLogger(__name__)


def feed_key(gateway_id: str, environment: str) -> str:
    return f"{gateway_id}/{environment}"


class RuntimeFeed:
    def __init__(self, sys_db: Database[Document], redis: Redis) -> None:
        self._generations = sys_db[GENERATIONS]
        self._redis = redis

    def changed(self, gateway_id: str, environment: str, part: str) -> None:
        """Bump the environment's generation and ``part``'s counter (call it after the write: ``part`` is
        one of ``runtime_actors.shared.names.RUNTIME_PARTS``), then wake the replicas."""
        if part not in RUNTIME_PARTS:
            raise ValueError(f"unknown runtime part {part!r}; expected one of {RUNTIME_PARTS}")
        key = feed_key(gateway_id, environment)
        with mongo_errors():
            self._generations.update_one(
                {"_id": key}, {"$inc": {"generation": 1, part_counter(part): 1}}, upsert=True
            )
        try:
            self._redis.publish(RELOAD_CHANNEL, key)
        except RedisError as exc:
            log.warning("reload announcement for %s failed (replicas catch up by generation): %s", key, exc)

    def generation(self, gateway_id: str, environment: str) -> int:
        with mongo_errors():
            doc = self._generations.find_one({"_id": feed_key(gateway_id, environment)})
        return 0 if doc is None else int(doc["generation"])
