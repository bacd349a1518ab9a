"""Repositories for functions: drafts, their history, deployments, and what is published where.

System database: ``functions`` (one draft per ``{gatewayId, name}``), ``function_history`` (every
version's code, changelog, author, time), ``deployments`` (what version went to which environment, from
where, by whom). Gateway database: ``__published_functions``, one document per ``{name, environment}``
with ``_id = "<environment>:<name>"`` in the shape ``runtime_actors.shared.messages.PublishedFunction`` reads.
Every publish or unpublish is announced through ``imprun.store.runtime_feed`` after the write
(generation bump, then the Redis wake-up). Timestamps are stored as fixed-width ISO-8601 UTC strings
(nx-27017 turns datetimes written by ``$set`` into naive strings; fixed width keeps them sortable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from imprun.domain.functions import Deployment, FunctionDraft, FunctionVersion, PublishedVersion
from imprun.domain.naming import EnvironmentName, gateway_db_name
from imprun.store.mongo import Document, Mongo, iso, mongo_errors, parse_time
from imprun.store.redis import Redis
from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import PART_FUNCTIONS, PUBLISHED_FUNCTIONS


def ensure_function_indexes(sys_db: Database[Document]) -> None:
    """Indexes of the function collections in the system database; idempotent."""
    with mongo_errors():
        sys_db.functions.create_index(
            [("gatewayId", ASCENDING), ("name", ASCENDING)], unique=True, name="gateway_name_unique"
        )
        sys_db.function_history.create_index(
            [("gatewayId", ASCENDING), ("name", ASCENDING), ("version", DESCENDING)],
            unique=True,
            name="gateway_name_version_unique",
        )
        sys_db.deployments.create_index([("gatewayId", ASCENDING), ("at", DESCENDING)], name="gateway_time")


def _draft_key(gateway_id: str, name: str) -> str:
    return f"{gateway_id}/{name}"


class FunctionDrafts:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._drafts = sys_db.functions

    def insert(self, draft: FunctionDraft) -> None:
        message = (
            f"a function named {draft.name!r} already exists; change it with PATCH or choose another name"
        )
        with mongo_errors(message):
            self._drafts.insert_one(_draft_document(draft))

    def get(self, gateway_id: str, name: str) -> FunctionDraft | None:
        with mongo_errors():
            doc = self._drafts.find_one({"_id": _draft_key(gateway_id, name)})
        return None if doc is None else _draft_from(doc)

    def of_gateway(self, gateway_id: str) -> list[FunctionDraft]:
        with mongo_errors():
            docs = list(self._drafts.find({"gatewayId": gateway_id}).sort("name", ASCENDING))
        return [_draft_from(d) for d in docs]

    def replace_if_version(self, draft: FunctionDraft, *, expected_version: int) -> bool:
        """Store ``draft`` if the stored one is still ``expected_version`` (False when another write won)."""
        doc = _draft_document(draft)
        with mongo_errors():
            result = self._drafts.replace_one({"_id": doc["_id"], "version": expected_version}, doc)
        return result.matched_count == 1

    def delete(self, gateway_id: str, name: str) -> bool:
        with mongo_errors():
            return self._drafts.delete_one({"_id": _draft_key(gateway_id, name)}).deleted_count == 1

    def delete_of_gateway(self, gateway_id: str) -> int:
        with mongo_errors():
            return self._drafts.delete_many({"gatewayId": gateway_id}).deleted_count


def _draft_document(draft: FunctionDraft) -> Document:
    return {
        "_id": _draft_key(draft.gateway_id, draft.name),
        "gatewayId": draft.gateway_id,
        "name": draft.name,
        "code": draft.code,
        "hash": draft.hash,
        "description": draft.description,
        "methods": list(draft.methods),
        "timeoutSeconds": draft.timeout_seconds,
        "version": draft.version,
        "inputSchema": draft.input_schema,
        "outputSchema": draft.output_schema,
        "createdAt": iso(draft.created_at),
        "createdBy": draft.created_by,
        "updatedAt": iso(draft.updated_at),
        "updatedBy": draft.updated_by,
    }


def _draft_from(doc: Document) -> FunctionDraft:
    return FunctionDraft(
        gateway_id=doc["gatewayId"],
        name=doc["name"],
        code=doc["code"],
        description=doc.get("description") or "",
        methods=tuple(doc["methods"]),
        timeout_seconds=float(doc["timeoutSeconds"]),
        version=int(doc["version"]),
        input_schema=dict(doc.get("inputSchema") or {}),
        output_schema=doc.get("outputSchema"),
        created_at=parse_time(doc["createdAt"]),
        created_by=doc["createdBy"],
        updated_at=parse_time(doc["updatedAt"]),
        updated_by=doc["updatedBy"],
    )


class FunctionHistory:
    """Every version of each function, the newest ``keep`` of them (older ones are dropped on append)."""

    def __init__(self, sys_db: Database[Document], *, keep: int | None = None) -> None:
        self._history = sys_db.function_history
        self._keep = keep

    def append(self, entry: FunctionVersion) -> None:
        doc = {
            "_id": f"{_draft_key(entry.gateway_id, entry.name)}@{entry.version}",
            "gatewayId": entry.gateway_id,
            "name": entry.name,
            "version": entry.version,
            "code": entry.code,
            "hash": entry.hash,
            "changelog": entry.changelog,
            "author": entry.author,
            "at": iso(entry.at),
        }
        with mongo_errors(f"version {entry.version} of {entry.name!r} was already recorded"):
            self._history.insert_one(doc)
        if self._keep is not None and entry.version > self._keep:
            with mongo_errors():
                self._history.delete_many(
                    {
                        "gatewayId": entry.gateway_id,
                        "name": entry.name,
                        "version": {"$lte": entry.version - self._keep},
                    }
                )

    def of_function(self, gateway_id: str, name: str, *, limit: int = 100) -> list[FunctionVersion]:
        with mongo_errors():
            docs = list(
                self._history.find({"gatewayId": gateway_id, "name": name})
                .sort("version", DESCENDING)
                .limit(limit)
            )
        return [
            FunctionVersion(
                gateway_id=d["gatewayId"],
                name=d["name"],
                version=int(d["version"]),
                code=d["code"],
                changelog=d.get("changelog") or "",
                author=d["author"],
                at=parse_time(d["at"]),
            )
            for d in docs
        ]

    def delete_of_function(self, gateway_id: str, name: str) -> int:
        with mongo_errors():
            return self._history.delete_many({"gatewayId": gateway_id, "name": name}).deleted_count

    def delete_of_gateway(self, gateway_id: str) -> int:
        with mongo_errors():
            return self._history.delete_many({"gatewayId": gateway_id}).deleted_count


class DeploymentLog:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._deployments = sys_db.deployments

    def append(self, deployment: Deployment) -> None:
        doc = {
            "gatewayId": deployment.gateway_id,
            "function": deployment.function,
            "environment": deployment.environment,
            "version": deployment.version,
            "promotedFrom": deployment.promoted_from,
            "by": deployment.by,
            "at": iso(deployment.at),
        }
        with mongo_errors():
            self._deployments.insert_one(doc)

    def of_gateway(
        self, gateway_id: str, *, function: str | None = None, limit: int = 200
    ) -> list[Deployment]:
        query: dict[str, Any] = {"gatewayId": gateway_id}
        if function is not None:
            query["function"] = function
        with mongo_errors():
            # ObjectIds grow within a process, which orders deployments made in the same microsecond.
            docs = list(
                self._deployments.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
            )
        return [
            Deployment(
                gateway_id=d["gatewayId"],
                function=d["function"],
                environment=d["environment"],
                version=int(d["version"]),
                promoted_from=d.get("promotedFrom"),
                by=d["by"],
                at=parse_time(d["at"]),
            )
            for d in docs
        ]

    def delete_of_gateway(self, gateway_id: str) -> int:
        with mongo_errors():
            return self._deployments.delete_many({"gatewayId": gateway_id}).deleted_count


@dataclass(frozen=True)
class Publication:
    """Which version of a function is published in an environment (no code: for listings)."""

    name: str
    environment: EnvironmentName
    version: int
    published_at: datetime
    published_by: str
    promoted_from: EnvironmentName | None


class PublishedFunctions:
    """``gatewayid_<gw>.__published_functions`` plus the generation counter and reload announcement."""

    def __init__(self, client: Mongo, sys_db: Database[Document], redis: Redis) -> None:
        self._client = client
        self._feed = RuntimeFeed(sys_db, redis)

    def _collection(self, gateway_id: str) -> Any:
        return self._client[gateway_db_name(gateway_id)][PUBLISHED_FUNCTIONS]

    def get(self, gateway_id: str, environment: str, name: str) -> PublishedVersion | None:
        with mongo_errors():
            doc = self._collection(gateway_id).find_one({"_id": _published_key(environment, name)})
        return None if doc is None else _published_from(doc)

    def publications(self, gateway_id: str, *, name: str | None = None) -> list[Publication]:
        query = {} if name is None else {"name": name}
        fields = {"code": 0, "inputSchema": 0, "outputSchema": 0}
        with mongo_errors():
            docs = list(self._collection(gateway_id).find(query, fields))
        return [
            Publication(
                name=d["name"],
                environment=d["environment"],
                version=int(d["version"]),
                published_at=parse_time(d["publishedAt"]),
                published_by=d.get("publishedBy") or "",
                promoted_from=d.get("promotedFrom"),
            )
            for d in docs
        ]

    def publish(self, gateway_id: str, published: PublishedVersion, *, now: datetime) -> None:
        doc = _published_document(published)
        self._feed.changing(gateway_id, published.environment, PART_FUNCTIONS, now)
        with mongo_errors():
            # The replacement names its _id: nx-27017 0.8.1 ignores the filter's _id on an upsert.
            self._collection(gateway_id).replace_one({"_id": doc["_id"]}, doc, upsert=True)
        self._feed.changed(gateway_id, published.environment, PART_FUNCTIONS)

    def unpublish(self, gateway_id: str, name: str, *, environments: tuple[str, ...]) -> list[str]:
        """Remove ``name`` from each of ``environments``; returns those it was published in."""
        removed: list[str] = []
        for environment in environments:
            with mongo_errors():
                deleted = self._collection(gateway_id).delete_one({"_id": _published_key(environment, name)})
            if deleted.deleted_count:
                removed.append(environment)
                self._feed.changed(gateway_id, environment, PART_FUNCTIONS)
        return removed

    def generation(self, gateway_id: str, environment: str) -> int:
        return self._feed.generation(gateway_id, environment)


def _published_key(environment: str, name: str) -> str:
    return f"{environment}:{name}"


def _published_document(published: PublishedVersion) -> Document:
    return {
        "_id": _published_key(published.environment, published.name),
        "name": published.name,
        "environment": published.environment,
        "code": published.code,
        "version": published.version,
        "hash": published.hash,
        "methods": list(published.methods),
        "timeoutSeconds": published.timeout_seconds,
        "inputSchema": published.input_schema,
        "outputSchema": published.output_schema,
        "description": published.description,
        "publishedAt": iso(published.published_at),
        "publishedBy": published.published_by,
        "promotedFrom": published.promoted_from,
    }


def _published_from(doc: Mapping[str, Any]) -> PublishedVersion:
    return PublishedVersion(
        name=doc["name"],
        environment=cast(EnvironmentName, doc["environment"]),
        code=doc["code"],
        version=int(doc["version"]),
        methods=tuple(doc.get("methods") or ()),
        timeout_seconds=float(doc["timeoutSeconds"]),
        input_schema=dict(doc.get("inputSchema") or {}),
        output_schema=doc.get("outputSchema"),
        description=doc.get("description") or "",
        published_at=parse_time(doc["publishedAt"]),
        published_by=doc.get("publishedBy") or "",
        promoted_from=doc.get("promotedFrom"),
    )
