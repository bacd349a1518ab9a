"""The hub's reads of MongoDB: an environment's published functions, its access documents, its sealed
variables and its per-part change counters.

Each read is one blocking pymongo call that the hub runs in a worker thread. Documents are read
*after* the generation they are labelled with, so a write a read missed bumps the generation again
and is loaded on the next round. The hub never opens the variables: only replicas hold that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pymongo import MongoClient

from runtime_actors.shared.messages import AccessDocuments, Document
from runtime_actors.shared.names import (
    CONSUMERS,
    ENVIRONMENT_SETTINGS,
    GENERATIONS,
    PUBLISHED_FUNCTIONS,
    RUNTIME_PARTS,
    VARIABLES,
    gateway_database_name,
    part_counter,
)

__all__ = [
    "environment_key",
    "generation_of",
    "load_access_documents",
    "load_generation",
    "load_published_documents",
    "load_runtime_parts",
    "load_variable_documents",
]

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


def environment_key(gateway_id: str, environment: str) -> str:
    """The ``<gw>/<env>`` key of the generation counters and the reload channel."""
    return f"{gateway_id}/{environment}"


def load_published_documents(client: MongoClient[Document], key: str) -> list[Document]:
    """The published function documents of one environment, without their ``_id``."""
    gateway_id, _, environment = key.partition("/")
    collection = client[gateway_database_name(gateway_id)][PUBLISHED_FUNCTIONS]
    return list(collection.find({"environment": environment}, {"_id": False}))


def load_access_documents(client: MongoClient[Document], key: str) -> AccessDocuments:
    """The gateway's credentials and the environment's settings document."""
    gateway_id, _, environment = key.partition("/")
    database = client[gateway_database_name(gateway_id)]
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
    """The environment's per-part change counters, or None when they cannot be trusted (their sum
    falls short of the generation: some bump did not name its part, so read everything)."""
    doc = client[sys_db_name][GENERATIONS].find_one({"_id": key})
    if doc is None:
        return None
    counters = {part: int(doc.get(part_counter(part)) or 0) for part in RUNTIME_PARTS}
    return counters if sum(counters.values()) == generation_of(doc) else None


def load_generation(client: MongoClient[Document], sys_db_name: str, key: str) -> int:
    """The environment's generation counter as it is now (0 before its first bump)."""
    return generation_of(client[sys_db_name][GENERATIONS].find_one({"_id": key}, {"generation": True}))


def generation_of(doc: Mapping[str, Any] | None) -> int:
    return int(doc.get("generation") or 0) if doc else 0
