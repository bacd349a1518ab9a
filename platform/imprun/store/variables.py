"""Sealed environment variables in the system database: ``VariableRepository``.

``<sys db>.environment_variables`` holds one document per variable,
``{_id: "<gw>/<env>/<name>", gatewayId, environment, name, secret, keyVersion, nonce, ciphertext,
updatedAt, updatedBy}`` — the value only as AES-256-GCM ciphertext (sealed by
``imprun.security.variables``). Replicas read the same collection through their node's reload hub
(``runtime_actors.hub.reads.load_variable_documents``), so every write here is followed by
``RuntimeFeed.changed`` for its environment: a new value is live as fast as a publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from imprun.domain.variables import VariableInfo
from imprun.store.mongo import Document, encode_dates, mongo_errors, parse_time
from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import PART_VARIABLES, VARIABLES

__all__ = ["StoredVariable", "VariableRepository", "variable_id"]


def variable_id(gateway_id: str, environment: str, name: str) -> str:
    return f"{gateway_id}/{environment}/{name}"


@dataclass(frozen=True, slots=True)
class StoredVariable:
    info: VariableInfo
    key_version: int
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def _stored(doc: Document) -> StoredVariable:
    info = VariableInfo(
        gateway_id=doc["gatewayId"],
        environment=doc["environment"],
        name=doc["name"],
        secret=bool(doc.get("secret")),
        updated_at=parse_time(doc["updatedAt"]),
        updated_by=str(doc.get("updatedBy") or ""),
    )
    return StoredVariable(info, int(doc["keyVersion"]), bytes(doc["nonce"]), bytes(doc["ciphertext"]))


class VariableRepository:
    def __init__(self, sys_db: Database[Document], feed: RuntimeFeed) -> None:
        self._variables = sys_db[VARIABLES]
        self._feed = feed

    def ensure_indexes(self) -> None:
        with mongo_errors():
            self._variables.create_index(
                [("gatewayId", ASCENDING), ("environment", ASCENDING), ("name", ASCENDING)],
                unique=True,
                name="gateway_env_name_unique",
            )

    def of_environment(self, gateway_id: str, environment: str) -> list[StoredVariable]:
        with mongo_errors():
            docs = self._variables.find({"gatewayId": gateway_id, "environment": environment}).sort("name")
            return [_stored(d) for d in docs]

    def count(self, gateway_id: str, environment: str) -> int:
        with mongo_errors():
            return self._variables.count_documents({"gatewayId": gateway_id, "environment": environment})

    def get(self, gateway_id: str, environment: str, name: str) -> StoredVariable | None:
        with mongo_errors():
            doc = self._variables.find_one({"_id": variable_id(gateway_id, environment, name)})
        return None if doc is None else _stored(doc)

    def put(self, variable: StoredVariable) -> None:
        """Insert or replace the variable, then bump its environment's generation (replicas reload)."""
        info = variable.info
        key = variable_id(info.gateway_id, info.environment, info.name)
        doc: Document = {
            "_id": key,
            "gatewayId": info.gateway_id,
            "environment": info.environment,
            "name": info.name,
            "secret": info.secret,
            "keyVersion": variable.key_version,
            "nonce": variable.nonce,
            "ciphertext": variable.ciphertext,
            "updatedAt": info.updated_at,
            "updatedBy": info.updated_by,
        }
        fields = encode_dates({name: value for name, value in doc.items() if name != "_id"})
        with mongo_errors():
            # $set, not replace_one: nx-27017 0.8.1 fails to replace a document holding bytes (the
            # nonce and ciphertext), and ignores the filter's _id on an upsert, so insert when new.
            if not self._variables.update_one({"_id": key}, {"$set": fields}).matched_count:
                try:
                    self._variables.insert_one(encode_dates(doc))
                except DuplicateKeyError:  # created meanwhile by another writer: set ours over it
                    self._variables.update_one({"_id": key}, {"$set": fields})
        self._feed.changed(info.gateway_id, info.environment, PART_VARIABLES)

    def delete(self, gateway_id: str, environment: str, name: str) -> bool:
        with mongo_errors():
            deleted = self._variables.delete_one({"_id": variable_id(gateway_id, environment, name)})
        if deleted.deleted_count:
            self._feed.changed(gateway_id, environment, PART_VARIABLES)
        return bool(deleted.deleted_count)

    def delete_of_gateway(self, gateway_id: str) -> None:
        """Forget a deleted gateway's variables (its replicas are gone: nothing to announce)."""
        with mongo_errors():
            self._variables.delete_many({"gatewayId": gateway_id})
