"""Gateway databases ``gatewayid_<gw>``: creating them with their platform collections, dropping them.

``__published_functions`` (what runs, unique per ``{name, environment}``) and ``__consumers`` (the
credential lookup hashes the ingress checks) are created with their indexes up front, so the
runtime can watch them from the first moment. Both operations are idempotent.

Each database records the incarnation of the gateway that created it (``__gateway``), so a gateway
re-created under a deleted one's id never adopts a database the deletion left behind (a crash between
steps, a late write of a replica that was going away): ``belongs_to`` tells them apart.

Listing the databases costs the server a visit to every database (nx-27017 opens each), so one
listing serves ``exists`` for every gateway for ``listing_ttl_seconds``, but only for the names it
shows: a database it does not show is listed afresh before it is said to be missing (a stale "yes"
skips a creation for a moment; a stale "no" would have a database dropped and made anew). This
process's own ``create`` and ``drop`` update the listing at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymongo import ASCENDING

from imprun.domain.naming import gateway_db_name
from imprun.store.mongo import Mongo, mongo_errors
from runtime_actors.shared.names import CONSUMERS, PUBLISHED_FUNCTIONS

_OWNER = "__gateway"
_OWNER_ID = "owner"


class GatewayDatabases:
    def __init__(
        self, client: Mongo, *, listing_ttl_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = listing_ttl_seconds
        self._clock = clock
        self._listed: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    def _names(self, *, fresh: bool) -> frozenset[str]:
        at, names = self._listed
        if fresh or self._clock() - at > self._ttl:
            with mongo_errors():
                names = frozenset(self._client.list_database_names())
            self._listed = (self._clock(), names)
        return names

    def _has(self, name: str) -> bool:
        return name in self._names(fresh=False) or name in self._names(fresh=True)

    def create(self, gateway_id: str, incarnation: str) -> None:
        db = self._client[gateway_db_name(gateway_id)]
        with mongo_errors():
            db[_OWNER].update_one({"_id": _OWNER_ID}, {"$set": {"incarnation": incarnation}}, upsert=True)
            db[PUBLISHED_FUNCTIONS].create_index(
                [("name", ASCENDING), ("environment", ASCENDING)], unique=True, name="name_env_unique"
            )
            db[CONSUMERS].create_index(
                [("environment", ASCENDING), ("lookupHash", ASCENDING)], unique=True, name="env_hash_unique"
            )
            db[CONSUMERS].create_index([("credentialId", ASCENDING)], unique=True, name="credential_unique")
        at, names = self._listed
        self._listed = (at, names | {db.name})

    def exists(self, gateway_id: str) -> bool:
        return self._has(gateway_db_name(gateway_id))

    def belongs_to(self, gateway_id: str, incarnation: str) -> bool:
        """Whether the gateway's database exists and was created by this incarnation of it."""
        if not self._has(gateway_db_name(gateway_id)):
            return False
        with mongo_errors():
            owner = self._client[gateway_db_name(gateway_id)][_OWNER].find_one({"_id": _OWNER_ID})
        return owner is not None and owner.get("incarnation") == incarnation

    def drop(self, gateway_id: str) -> None:
        name = gateway_db_name(gateway_id)
        with mongo_errors():
            self._client.drop_database(name)
        at, names = self._listed
        self._listed = (at, names - {name})
