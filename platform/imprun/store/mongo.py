"""MongoDB connection, error translation and the system-database indexes.

``connect_mongo`` builds the one ``MongoClient`` a process uses (pymongo pools connections per
client, so sharing it keeps the connection count flat). ``mongo_errors`` wraps every repository call
and maps pymongo's exceptions onto ``imprun.errors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from imprun.errors import Conflict, Internal, Unavailable

Document = dict[str, Any]
Mongo = MongoClient[Document]
SystemDatabase = Database[Document]


def iso(moment: datetime) -> str:
    """``2025-01-02T03:04:05.000006+00:00``: always UTC, always microseconds, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: imprun stores only timezone-aware times")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(value: Any) -> datetime:
    """A stored time (ISO string, or a BSON date from an insert) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def encode_dates(value: Any) -> Any:
    """Datetimes as ISO-8601 strings with their offset, recursively, for every ``$set``.

    nx-27017 0.8.1 stores a datetime written by ``$set`` as a naive string (an ``insert_one`` keeps
    it a BSON date), so documents that are updated in place keep all their timestamps as ISO
    strings, written the same way on insert and update; they sort correctly and parse back aware.
    """
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: encode_dates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_dates(v) for v in value]
    return value


def epoch_ms(moment: datetime) -> int:
    """Lease timestamps are integers (milliseconds since the epoch): exact comparisons everywhere."""
    return int(moment.timestamp() * 1000)


def connect_mongo(url: str, *, timeout: float = 2.0, app_name: str = "imprun") -> Mongo:
    """A lazily-connecting client with short server-selection timeouts (fail fast, recover by itself)."""
    ms = int(timeout * 1000)
    return MongoClient(
        url,
        appname=app_name,
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=max(ms * 5, 10_000),
        tz_aware=True,
        connect=False,
    )


def mongo_reachable(url: str, *, timeout: float = 1.0) -> bool:
    client = connect_mongo(url, timeout=timeout, app_name="imprun-probe")
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def ping_mongo(client: Mongo) -> None:
    with mongo_errors():
        client.admin.command("ping")


@contextlib.contextmanager
def mongo_errors(conflict_message: str = "that resource already exists") -> Iterator[None]:
    """Translate pymongo exceptions raised inside the block into imprun's exception tree."""
    try:
        yield
    except DuplicateKeyError as exc:
        raise Conflict(conflict_message) from exc
    except ConnectionFailure as exc:
        raise Unavailable("MongoDB is unreachable; retry shortly (see /readyz)") from exc
    except OperationFailure as exc:
        raise Internal(f"MongoDB rejected an operation: {exc.code}") from exc
    except PyMongoError as exc:
        raise Unavailable(f"MongoDB error: {type(exc).__name__}") from exc


def ensure_system_indexes(db: Database[Document]) -> None:
    """Create the indexes the API relies on; idempotent, run at control-plane start."""
    with mongo_errors():
        db.users.create_index([("username", ASCENDING)], unique=True, name="username_unique")
        db.invites.create_index([("codeHash", ASCENDING)], unique=True, name="code_unique")
        db.api_gateways.create_index([("gatewayId", ASCENDING)], unique=True, name="gatewayId_unique")
        db.api_gateways.create_index([("ownerId", ASCENDING)], name="owner")
        db.api_gateways.create_index([("phase", ASCENDING), ("lockedAt", ASCENDING)], name="claim")
        db.environments.create_index(
            [("gatewayId", ASCENDING), ("name", ASCENDING)], unique=True, name="gateway_env_unique"
        )
        db.environments.create_index([("phase", ASCENDING), ("lockedAt", ASCENDING)], name="claim")
        db.events.create_index([("gatewayId", ASCENDING), ("at", DESCENDING)], name="gateway_time")
        # Applications and grants (imprun.store.applications): one active grant per app/gw/env via `slot`.
        db.applications.create_index([("ownerId", ASCENDING)], name="owner")
        db.application_grants.create_index([("slot", ASCENDING)], unique=True, name="one_active_grant")
        db.application_grants.create_index([("applicationId", ASCENDING)], name="application")
        db.application_grants.create_index([("gatewayId", ASCENDING)], name="gateway")
        db.application_grants.create_index([("lockedAt", ASCENDING)], name="claim")
        db.application_grants.create_index([("lookupHash", ASCENDING)], name="lookup_hash")
        # AI-gateway tool registry (imprun.store.mcp_tools): names unique per owner.
        db.mcp_tools.create_index(
            [("ownerId", ASCENDING), ("name", ASCENDING)], unique=True, name="owner_name"
        )
        db.mcp_tools.create_index([("gatewayId", ASCENDING)], name="gateway")


__all__ = [
    "Document",
    "Mongo",
    "SystemDatabase",
    "connect_mongo",
    "encode_dates",
    "ensure_system_indexes",
    "epoch_ms",
    "iso",
    "mongo_errors",
    "mongo_reachable",
    "parse_time",
    "ping_mongo",
]
