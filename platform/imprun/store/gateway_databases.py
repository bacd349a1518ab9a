"""Gateway databases ``gatewayid_<gw>``: creating them with their platform collections, dropping them.

``__published_functions`` (what runs, unique per ``{name, environment}``) and ``__consumers`` (the
credential lookup hashes the ingress checks) are created with their indexes up front, so the
runtime can watch them from the first moment. Both operations are idempotent.

Each database records the incarnation of the gateway that created it (``__gateway``), so a gateway
re-created under a deleted one's id never adopts a database the deletion left behind (a crash between
steps, a late write of a replica that was going away): ``belongs_to`` tells them apart.
"""

from __future__ import annotations

from pymongo import ASCENDING

from imprun.domain.naming import gateway_db_name
from imprun.store.mongo import Mongo, mongo_errors
from runtime_actors.shared.names import CONSUMERS, PUBLISHED_FUNCTIONS

_OWNER = "__gateway"
_OWNER_ID = "owner"


class GatewayDatabases:
    def __init__(self, client: Mongo) -> None:
        self._client = client

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

    def exists(self, gateway_id: str) -> bool:
        with mongo_errors():
            return gateway_db_name(gateway_id) in self._client.list_database_names()

    def belongs_to(self, gateway_id: str, incarnation: str) -> bool:
        """Whether the gateway's database exists and was created by this incarnation of it."""
        with mongo_errors():
            if gateway_db_name(gateway_id) not in self._client.list_database_names():
                return False
            owner = self._client[gateway_db_name(gateway_id)][_OWNER].find_one({"_id": _OWNER_ID})
        return owner is not None and owner.get("incarnation") == incarnation

    def drop(self, gateway_id: str) -> None:
        with mongo_errors():
            self._client.drop_database(gateway_db_name(gateway_id))
