"""The runtime feed: how a change to what replicas follow is announced, once for every writer.

Replicas follow a gateway environment through documents in ``gatewayid_<gw>`` (published functions,
consumers, environment settings). After every such write the writer calls ``RuntimeFeed.changed``:
it bumps the environment's counter in ``<sys db>.runtime_generations`` (``{_id: "<gw>/<env>",
generation, functionsGeneration, accessGeneration, variablesGeneration}``, upserted: the part
counters say which kind of document changed, so a reload reads only those) — the lossless signal replicas compare against — and then publishes
``<gw>/<env>`` on Redis's ``imprun:reload`` channel, best effort: a lost announcement only delays a
replica until its next generation check. The counters only ever grow, even when a gateway is deleted,
so a replica that remembers a higher number never ignores a re-created gateway of the same id.

A write and its bump are two databases (the gateway's and the system one), so no transaction covers
both: a publisher first records ``pendingSince`` (``changing``), writes, then bumps and clears it
(``changed``). ``repair_one``, run by the control plane's reconcile loop, bumps any environment left
pending past a grace period by a writer that died in between.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pymongo.database import Database
from redis.exceptions import RedisError

from imprun.store.mongo import Document, mongo_errors
from imprun.store.redis import Redis
from runtime_actors.shared.names import GENERATIONS, RELOAD_CHANNEL, RUNTIME_PARTS, part_counter

log = logging.getLogger(__name__)


_PENDING = {"pendingSince": "", "pendingPart": ""}


def _check_part(part: str) -> None:
    if part not in RUNTIME_PARTS:
        raise ValueError(f"unknown runtime part {part!r}; expected one of {RUNTIME_PARTS}")


def feed_key(gateway_id: str, environment: str) -> str:
    return f"{gateway_id}/{environment}"


class RuntimeFeed:
    def __init__(self, sys_db: Database[Document], redis: Redis) -> None:
        self._generations = sys_db[GENERATIONS]
        self._redis = redis

    def changing(self, gateway_id: str, environment: str, part: str, now: datetime) -> None:
        """Record that a write to ``part`` is about to happen (call it before the write, ``changed``
        after): if the writer dies in between, ``repair_one`` bumps the counters in its place."""
        _check_part(part)
        with mongo_errors():
            self._generations.update_one(
                {"_id": feed_key(gateway_id, environment)},
                {"$set": {"pendingSince": now, "pendingPart": part}},
                upsert=True,
            )

    def changed(self, gateway_id: str, environment: str, part: str) -> None:
        """Bump the environment's generation and ``part``'s counter (call it after the write: ``part`` is
        one of ``runtime_actors.shared.names.RUNTIME_PARTS``), then wake the replicas."""
        _check_part(part)
        key = feed_key(gateway_id, environment)
        with mongo_errors():
            self._generations.update_one(
                {"_id": key},
                {"$inc": {"generation": 1, part_counter(part): 1}, "$unset": _PENDING},
                upsert=True,
            )
        self._announce(key)

    def repair_one(self, *, older_than: datetime) -> str | None:
        """Bump one environment whose writer announced a change before ``older_than`` and never
        finished it (it died between the write and ``changed``); its key, or None if there is none.
        An extra bump only makes replicas read again, so a repair is always safe."""
        with mongo_errors():
            doc = self._generations.find_one({"pendingSince": {"$lt": older_than}})
            if doc is None:
                return None
            part = str(doc.get("pendingPart") or "")
            counters = {"generation": 1, **({part_counter(part): 1} if part in RUNTIME_PARTS else {})}
            repaired = self._generations.update_one(
                {"_id": doc["_id"], "pendingSince": doc["pendingSince"]},
                {"$inc": counters, "$unset": _PENDING},
            )
        if repaired.modified_count:
            log.warning("runtime feed: %s was written without its generation bump; bumped it now", doc["_id"])
            self._announce(str(doc["_id"]))
        return str(doc["_id"])

    def _announce(self, key: str) -> None:
        try:
            self._redis.publish(RELOAD_CHANNEL, key)
        except RedisError as exc:
            log.warning("reload announcement for %s failed (replicas catch up by generation): %s", key, exc)

    def generation(self, gateway_id: str, environment: str) -> int:
        with mongo_errors():
            doc = self._generations.find_one({"_id": feed_key(gateway_id, environment)})
        return 0 if doc is None else int(doc.get("generation") or 0)
