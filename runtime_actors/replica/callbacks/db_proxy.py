"""``imp.db()`` on the trusted side: run a jailed worker's database operation on its gateway's database.

The worker's stub sends ``{"collection", "method", "args", "kwargs"}``; ``DbProxy.execute`` answers
``{"result": …}`` or ``{"error": {"code", "message"}}`` (which the stub raises in tenant code). The
access rules, checked before anything reaches MongoDB:

- only the database ``gatewayid_<gw>`` of the replica's gateway, through an allow-listed method
  (find, find_one, insert_one, insert_many, update_one, update_many, delete_one, delete_many,
  count_documents, aggregate) with allow-listed options;
- never a collection named ``__…`` (platform data such as ``__published_functions``) or ``system.…``;
- no server-side JavaScript (``$where``, ``$function``, ``$accumulator``) anywhere in a filter, update
  or pipeline;
- aggregation stages from an allow-list: no ``$out``/``$merge`` (writes elsewhere) nor admin stages
  (``$currentOp``, ``$collStats``, …); ``$lookup``, ``$graphLookup`` and ``$unionWith`` may read
  another collection only of the same database and under the same name rules, and their
  sub-pipelines (like ``$facet``'s) are checked the same way.

Results are made JSON-able (ObjectId → str, datetime → ISO 8601 UTC, bytes → base64, Decimal128 →
str) and bounded (arguments arrive as the worker's JSON: ``{"$date": iso}`` and ``{"$binary": base64}``
become datetimes and bytes again): more than ``max_documents`` documents or ``max_result_bytes`` is an error asking for
a ``limit``, never a silent truncation. Documents inserted without ``_id`` get a string ``_id``, so ids
round-trip through JSON.

The database has a size quota (``max_database_bytes``, data plus indexes as ``collStats`` reports them,
re-read at most every ``size_check_seconds``, and after a delete, the only way it shrinks): past it,
inserts and updates answer ``quota_exceeded`` with the limit and the size; reads and deletes still
work, so the tenant can make room.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pymongo
from bson import Decimal128, ObjectId
from bson.errors import BSONError
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from runtime_actors.shared.errors import error_body
from runtime_actors.shared.names import gateway_database_name

__all__ = ["DbAccessError", "DbProxy", "to_json_able"]

Document = dict[str, Any]

log = logging.getLogger(__name__)

_COLLECTION_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}")
_JAVASCRIPT_OPERATORS: Final = frozenset({"$where", "$function", "$accumulator"})
_READ_STAGES: Final = frozenset(
    {
        "$match", "$project", "$addFields", "$set", "$unset", "$group", "$sort", "$limit", "$skip",
        "$count", "$unwind", "$facet", "$bucket", "$bucketAuto", "$sortByCount", "$replaceRoot",
        "$replaceWith", "$sample", "$densify", "$fill", "$redact", "$setWindowFields", "$documents",
        "$lookup", "$graphLookup", "$unionWith",
    }
)  # fmt: skip


@dataclass(frozen=True)
class _Signature:
    positional: tuple[str, ...]
    keywords: frozenset[str]


_METHODS: Final = {
    "find": _Signature(("filter", "projection"), frozenset({"sort", "skip", "limit"})),
    "find_one": _Signature(("filter", "projection"), frozenset({"sort", "skip"})),
    "count_documents": _Signature(("filter",), frozenset({"skip", "limit"})),
    "aggregate": _Signature(("pipeline",), frozenset()),
    "insert_one": _Signature(("document",), frozenset()),
    "insert_many": _Signature(("documents",), frozenset({"ordered"})),
    "update_one": _Signature(("filter", "update"), frozenset({"upsert", "array_filters"})),
    "update_many": _Signature(("filter", "update"), frozenset({"upsert", "array_filters"})),
    "delete_one": _Signature(("filter",), frozenset()),
    "delete_many": _Signature(("filter",), frozenset()),
}


class DbAccessError(Exception):
    """A refused or failed operation; ``code`` is an error code of API.md's shape."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


_WRITES: Final = frozenset({"insert_one", "insert_many", "update_one", "update_many"})
"""The methods that can grow the database (deletes never do)."""


class DbProxy:
    """Executes checked operations on one gateway database; ``execute`` is the pool's ``db_executor``.

    The ``MongoClient`` is created on the first operation (a replica whose functions never touch the
    database opens no connection) with a small pool.
    """

    def __init__(
        self,
        database: Callable[[], Database[Document]],
        *,
        max_documents: int = 5_000,
        max_result_bytes: int = 8 * 1024 * 1024,
        max_time_ms: int = 10_000,
        max_database_bytes: int | None = None,
        size_check_seconds: float = 5.0,
    ) -> None:
        self._database_factory = database
        self._database: Database[Document] | None = None
        self._lock = threading.Lock()
        self.max_documents = max_documents
        self.max_result_bytes = max_result_bytes
        self.max_time_ms = max_time_ms
        self.max_database_bytes = max_database_bytes
        self.size_check_seconds = size_check_seconds
        self._size: tuple[float, int] | None = None  # (when read, bytes)

    @classmethod
    def for_gateway(
        cls,
        mongo_url: str,
        gateway_id: str,
        *,
        pool_size: int = 4,
        max_database_bytes: int | None = None,
        **limits: int,
    ) -> DbProxy:
        def connect() -> Database[Document]:
            client: MongoClient[Document] = MongoClient(
                mongo_url, maxPoolSize=pool_size, serverSelectionTimeoutMS=5_000, appname="imprun-db-proxy"
            )
            return client[gateway_database_name(gateway_id)]

        return cls(connect, max_database_bytes=max_database_bytes, **limits)

    def close(self) -> None:
        with self._lock:
            if self._database is not None:
                self._database.client.close()
                self._database = None

    def execute(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation: ``{"result": …}`` or ``{"error": {"code", "message"}}``; never raises."""
        try:
            with pymongo.timeout(self.max_time_ms / 1000):  # every operation, writes included
                return {"result": self._execute(request)}
        except DbAccessError as exc:
            return error_body(exc.code, exc.message, details=exc.details)
        except DuplicateKeyError as exc:
            return error_body("conflict", f"duplicate key: {_first_line(exc)}")
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
            # The driver's message names internal hosts: it goes to this replica's log, not to tenant code.
            log.warning("imp.db() %s failed: %s", request.get("method"), _first_line(exc))
            if exc.timeout and not isinstance(exc, ServerSelectionTimeoutError):
                message = f"the database did not answer within {self.max_time_ms / 1000:g} s"
                return error_body("timeout", message)
            return error_body("unavailable", "the database is unavailable; retry shortly")
        except OperationFailure as exc:
            return error_body("invalid", _first_line(exc))
        except (PyMongoError, BSONError, TypeError, ValueError) as exc:
            return error_body("invalid", f"{type(exc).__name__}: {_first_line(exc)}")

    def _execute(self, request: Mapping[str, Any]) -> Any:
        method = request.get("method")
        signature = _METHODS.get(method) if isinstance(method, str) else None
        if signature is None:
            raise DbAccessError(
                "forbidden", f"imp.db() has no method {method!r}; use one of {', '.join(sorted(_METHODS))}."
            )
        assert isinstance(method, str)
        name = check_collection_name(request.get("collection"))
        params = _bind(
            method, signature, from_wire(request.get("args") or []), from_wire(request.get("kwargs") or {})
        )
        check_no_javascript(params)
        if method in _WRITES:
            self._check_size()
        collection = self._db()[name]
        return getattr(self, f"_{method}")(collection, params)

    def _database_bytes(self) -> int:
        """Data plus index bytes, summed over the collections (``dbStats``' ``dataSize`` of the embedded
        nx-27017 counts pages that deletes do not give back)."""
        db = self._db()
        total = 0
        for name in db.list_collection_names():
            stats = db.command("collStats", name)
            total += int(stats.get("size", 0)) + int(stats.get("totalIndexSize", 0))
        return total

    def _check_size(self) -> None:
        limit = self.max_database_bytes
        if limit is None:
            return
        now = time.monotonic()
        if self._size is None or now - self._size[0] >= self.size_check_seconds:
            self._size = (now, self._database_bytes())
        size = self._size[1]
        if size >= limit:
            raise DbAccessError(
                "quota_exceeded",
                f"the gateway's database holds {size / 2**20:.1f} MiB, at its quota of {limit / 2**20:g} MiB: "
                "writes are refused until deletes make room.",
                details={"quota": "gateway_db_mb", "limit": limit / 2**20, "used": round(size / 2**20, 1)},
            )

    def _db(self) -> Database[Document]:
        with self._lock:
            if self._database is None:
                self._database = self._database_factory()
            return self._database

    # Reads -------------------------------------------------------------------------------------------

    def _find(self, collection: Any, p: dict[str, Any]) -> list[Any]:
        limit = int(p.get("limit") or 0)
        if limit < 0:
            raise DbAccessError("invalid", "limit must be >= 0")
        if limit > self.max_documents:
            raise DbAccessError("too_large", f"limit is at most {self.max_documents}; page with skip")
        cursor = collection.find(
            _mapping(p.get("filter"), "filter"),
            p.get("projection"),
            skip=int(p.get("skip") or 0),
            limit=limit or self.max_documents + 1,
            sort=_sort(p.get("sort")),
            max_time_ms=self.max_time_ms,
        )
        return self._bounded(cursor)

    def _find_one(self, collection: Any, p: dict[str, Any]) -> Any:
        found = collection.find_one(
            _mapping(p.get("filter"), "filter"),
            p.get("projection"),
            skip=int(p.get("skip") or 0),
            sort=_sort(p.get("sort")),
            max_time_ms=self.max_time_ms,
        )
        return self._bounded([found])[0] if found is not None else None

    def _count_documents(self, collection: Any, p: dict[str, Any]) -> int:
        options = {k: int(p[k]) for k in ("skip", "limit") if p.get(k)}
        return int(
            collection.count_documents(
                _mapping(p.get("filter"), "filter"), maxTimeMS=self.max_time_ms, **options
            )
        )

    def _aggregate(self, collection: Any, p: dict[str, Any]) -> list[Any]:
        pipeline = p.get("pipeline")
        check_pipeline(pipeline)
        assert isinstance(pipeline, list)
        return self._bounded(
            collection.aggregate([*pipeline, {"$limit": self.max_documents + 1}], maxTimeMS=self.max_time_ms)
        )

    # Writes ------------------------------------------------------------------------------------------

    def _insert_one(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        document = _with_id(_mapping(p.get("document"), "document"))
        return {"insertedId": to_json_able(collection.insert_one(document).inserted_id)}

    def _insert_many(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        documents = p.get("documents")
        if not isinstance(documents, list) or not documents:
            raise DbAccessError("invalid", "insert_many needs a non-empty list of documents")
        if len(documents) > self.max_documents:
            raise DbAccessError(
                "too_large", f"insert_many takes at most {self.max_documents} documents per call"
            )
        prepared = [_with_id(_mapping(d, "document")) for d in documents]
        result = collection.insert_many(prepared, ordered=bool(p.get("ordered", True)))
        return {"insertedIds": to_json_able(result.inserted_ids)}

    def _update_one(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        return self._update(collection.update_one, p)

    def _update_many(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        return self._update(collection.update_many, p)

    def _update(self, update: Callable[..., Any], p: dict[str, Any]) -> dict[str, Any]:
        query = _mapping(p.get("filter"), "filter")
        change = p.get("update")
        if isinstance(change, list):
            check_pipeline(change)
        elif not isinstance(change, dict) or not change or not all(str(k).startswith("$") for k in change):
            raise DbAccessError(
                "invalid", "update must be a non-empty document of update operators ($set, $inc, …)"
            )
        upsert = bool(p.get("upsert", False))
        if upsert and isinstance(change, dict) and "_id" not in query:
            on_insert = dict(change.get("$setOnInsert") or {})
            if "_id" not in on_insert and "_id" not in (change.get("$set") or {}):
                change = {**change, "$setOnInsert": {**on_insert, "_id": _new_id()}}
        options: dict[str, Any] = {"upsert": upsert}
        if p.get("array_filters") is not None:
            options["array_filters"] = p["array_filters"]
        result = update(query, change, **options)
        return {
            "matchedCount": result.matched_count,
            "modifiedCount": result.modified_count,
            "upsertedId": to_json_able(result.upserted_id),
        }

    def _delete_one(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        self._size = None  # room may have been made: the next write reads the size again
        return {"deletedCount": collection.delete_one(_mapping(p.get("filter"), "filter")).deleted_count}

    def _delete_many(self, collection: Any, p: dict[str, Any]) -> dict[str, Any]:
        self._size = None
        return {"deletedCount": collection.delete_many(_mapping(p.get("filter"), "filter")).deleted_count}

    def _bounded(self, documents: Any) -> list[Any]:
        """JSON-able documents, refusing more than ``max_documents`` or ``max_result_bytes``."""
        result: list[Any] = []
        size = 0
        for document in documents:
            if len(result) >= self.max_documents:
                raise DbAccessError(
                    "too_large", f"more than {self.max_documents} documents; narrow the query or pass a limit"
                )
            converted = to_json_able(document)
            size += len(json.dumps(converted, separators=(",", ":")))
            if size > self.max_result_bytes:
                raise DbAccessError(
                    "too_large",
                    f"the result is over {self.max_result_bytes} bytes; pass a limit or a projection",
                )
            result.append(converted)
        return result


def check_collection_name(name: object) -> str:
    if not isinstance(name, str) or not _COLLECTION_NAME.fullmatch(name):
        raise DbAccessError(
            "invalid", f"bad collection name {name!r}: letters, digits, '_', '.', '-'; at most 120 characters"
        )
    if name.startswith("__") or name.startswith("system."):
        raise DbAccessError("forbidden", f"collection {name!r} is reserved for the platform")
    return name


def check_no_javascript(value: object) -> None:
    """Refuse server-side JavaScript operators at any depth of a filter, update or pipeline."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if key in _JAVASCRIPT_OPERATORS:
                    raise DbAccessError("forbidden", f"{key} (server-side JavaScript) is not allowed")
                stack.append(inner)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def check_pipeline(pipeline: object) -> None:
    """Refuse stages off the read allow-list and lookups into other databases or platform collections."""
    if not isinstance(pipeline, list):
        raise DbAccessError("invalid", "an aggregation pipeline is a list of stages")
    check_no_javascript(pipeline)
    for stage in pipeline:
        if not isinstance(stage, Mapping) or len(stage) != 1:
            raise DbAccessError("invalid", f"a pipeline stage is a document with one operator, got {stage!r}")
        [(operator, spec)] = stage.items()
        if operator not in _READ_STAGES:
            raise DbAccessError("forbidden", f"aggregation stage {operator} is not allowed")
        if operator == "$facet":
            for sub in _mapping(spec, "$facet").values():
                check_pipeline(sub)
        elif operator in ("$lookup", "$graphLookup"):
            spec = _mapping(spec, operator)
            if "from" in spec or operator == "$graphLookup":
                _check_same_database(operator, spec.get("from"))
            if "pipeline" in spec:
                check_pipeline(spec["pipeline"])
        elif operator == "$unionWith":
            _check_same_database(
                operator, spec if isinstance(spec, str) else _mapping(spec, operator).get("coll")
            )
            if isinstance(spec, Mapping) and "pipeline" in spec:
                check_pipeline(spec["pipeline"])


def from_wire(value: Any) -> Any:
    """Undo the worker's JSON encoding of arguments: ``{"$date": iso}`` → datetime, ``{"$binary": b64}`` → bytes."""
    if isinstance(value, dict):
        if len(value) == 1:
            [(key, inner)] = value.items()
            if key == "$date" and isinstance(inner, str):
                try:
                    return datetime.fromisoformat(inner.replace("Z", "+00:00"))
                except ValueError as exc:
                    raise DbAccessError("invalid", f"bad $date {inner!r}") from exc
            if key == "$binary" and isinstance(inner, str):
                try:
                    return base64.b64decode(inner, validate=True)
                except ValueError as exc:
                    raise DbAccessError("invalid", "bad $binary") from exc
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


def _check_same_database(operator: str, target: object) -> None:
    if not isinstance(target, str):
        raise DbAccessError("forbidden", f"{operator} may only read a collection of this gateway's database")
    check_collection_name(target)


def to_json_able(value: Any) -> Any:
    """A value with only JSON types: ObjectId → str, datetime → ISO 8601 UTC, bytes → base64, …"""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_able(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_able(v) for v in value]
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (ObjectId, Decimal128, uuid.UUID)):
        return str(value)
    return str(value)


def _bind(method: str, signature: _Signature, args: object, kwargs: object) -> dict[str, Any]:
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, Mapping):
        raise DbAccessError("invalid", "args must be a list and kwargs a document")
    if len(args) > len(signature.positional):
        raise DbAccessError(
            "invalid", f"{method} takes at most {len(signature.positional)} positional arguments"
        )
    params = dict(zip(signature.positional, args, strict=False))
    allowed = signature.keywords | set(signature.positional)
    for key, value in kwargs.items():
        if key not in allowed:
            raise DbAccessError(
                "invalid",
                f"{method} does not take {key!r}; it takes {', '.join(sorted(allowed)) or 'nothing else'}",
            )
        if key in params:
            raise DbAccessError("invalid", f"{method} got {key!r} twice")
        params[key] = value
    return params


def _mapping(value: object, what: str) -> dict[str, Any]:
    if value is None and what == "filter":
        return {}
    if not isinstance(value, Mapping):
        raise DbAccessError("invalid", f"{what} must be a document, got {type(value).__name__}")
    return dict(value)


def _sort(value: object) -> list[tuple[str, int]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        pairs: list[Any] = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = (
            [value]
            if len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], (list, tuple))
            else list(value)
        )
    else:
        raise DbAccessError("invalid", "sort is a document {field: 1|-1} or a list of [field, 1|-1] pairs")
    try:
        return [(str(field), int(direction)) for field, direction in pairs]
    except (TypeError, ValueError) as exc:
        raise DbAccessError(
            "invalid", "sort is a document {field: 1|-1} or a list of [field, 1|-1] pairs"
        ) from exc


def _with_id(document: dict[str, Any]) -> dict[str, Any]:
    return document if "_id" in document else {"_id": _new_id(), **document}


def _new_id() -> str:
    return str(ObjectId())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__
