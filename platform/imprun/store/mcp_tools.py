"""The AI gateway's reads and the tool registry: ``mcp_tools`` and published functions as tools.

System database ``mcp_tools``: one document per registry entry, ``{_id, ownerId, name, description,
gatewayId, environment, function, inputSchema, createdAt}`` (names unique per owner; ``description``
and ``inputSchema`` null = the function's own). ``published_tools`` reads a gateway database's
``__published_functions`` without the code: what the catalog needs to describe a tool.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from imprun.domain.naming import gateway_db_name
from imprun.store.mongo import Document, Mongo, iso, mongo_errors, parse_time
from runtime_actors.shared.names import PUBLISHED_FUNCTIONS

__all__ = ["McpToolRecord", "McpToolRepository", "PublishedToolRow", "published_tools"]

_PUBLISHED_FIELDS = {
    "name": 1,
    "environment": 1,
    "description": 1,
    "inputSchema": 1,
    "outputSchema": 1,
    "methods": 1,
}


@dataclass(frozen=True, slots=True)
class McpToolRecord:
    tool_id: str
    owner_id: str
    name: str
    gateway_id: str
    environment: str
    function: str
    description: str | None
    input_schema: Mapping[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PublishedToolRow:
    """A published function of one environment, without its code."""

    gateway_id: str
    environment: str
    function: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None


class McpToolRepository:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._tools = sys_db.mcp_tools

    def insert(
        self,
        *,
        owner_id: str,
        name: str,
        gateway_id: str,
        environment: str,
        function: str,
        description: str | None,
        input_schema: Mapping[str, Any] | None,
        at: datetime,
    ) -> McpToolRecord:
        doc: Document = {
            "_id": uuid.uuid4().hex,
            "ownerId": owner_id,
            "name": name,
            "gatewayId": gateway_id,
            "environment": environment,
            "function": function,
            "description": description,
            "inputSchema": dict(input_schema) if input_schema is not None else None,
            "createdAt": iso(at),
        }
        with mongo_errors(f"A tool named {name!r} already exists; delete it first or choose another name."):
            self._tools.insert_one(doc)
        return _record_from(doc)

    def of_owner(self, owner_id: str) -> list[McpToolRecord]:
        with mongo_errors():
            docs = list(self._tools.find({"ownerId": owner_id}).sort("name", ASCENDING))
        return [_record_from(d) for d in docs]

    def of_gateways(self, gateway_ids: Iterable[str]) -> list[McpToolRecord]:
        ids = sorted(set(gateway_ids))
        if not ids:
            return []
        with mongo_errors():
            docs = list(self._tools.find({"gatewayId": {"$in": ids}}))
        return [_record_from(d) for d in docs]

    def delete(self, owner_id: str, name: str) -> bool:
        with mongo_errors():
            return self._tools.delete_one({"ownerId": owner_id, "name": name}).deleted_count == 1

    def delete_of_gateway(self, gateway_id: str) -> int:
        with mongo_errors():
            return self._tools.delete_many({"gatewayId": gateway_id}).deleted_count


def published_tools(client: Mongo, gateway_id: str, environments: Iterable[str]) -> list[PublishedToolRow]:
    """The functions published in ``environments`` of ``gateway_id`` (nothing if its database is gone)."""
    wanted = sorted(set(environments))
    if not wanted:
        return []
    with mongo_errors():
        docs = list(
            client[gateway_db_name(gateway_id)][PUBLISHED_FUNCTIONS].find(
                {"environment": {"$in": wanted}}, _PUBLISHED_FIELDS
            )
        )
    return [
        PublishedToolRow(
            gateway_id=gateway_id,
            environment=str(d["environment"]),
            function=str(d["name"]),
            description=str(d.get("description") or ""),
            input_schema=dict(d.get("inputSchema") or {}),
            output_schema=dict(d["outputSchema"]) if d.get("outputSchema") else None,
        )
        for d in docs
    ]


def _record_from(doc: Document) -> McpToolRecord:
    schema = doc.get("inputSchema")
    return McpToolRecord(
        tool_id=str(doc["_id"]),
        owner_id=str(doc["ownerId"]),
        name=str(doc["name"]),
        gateway_id=str(doc["gatewayId"]),
        environment=str(doc["environment"]),
        function=str(doc["function"]),
        description=doc.get("description"),
        input_schema=dict(schema) if isinstance(schema, Mapping) else None,
        created_at=parse_time(doc["createdAt"]),
    )
