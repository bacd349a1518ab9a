"""The shared vocabulary of the function runtime: snapshots, published functions, invocations, results.

These plain, frozen dataclasses cross every boundary of the data plane — the reload hub hands a
``Snapshot`` (published function documents, ``AccessDocuments``, sealed variables) to replicas, the
supervisor sends ``Invocation`` to a jailed worker and gets an ``InvocationResult`` back (as
length-prefixed JSON: never pickle, the worker is untrusted) — so they hold only builtins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

Document = dict[str, Any]


class AccessDocuments(TypedDict):
    """Who may call an environment, as read from the gateway database (plain documents, JSON-able)."""

    consumers: list[Document]
    """Every credential of the gateway, all environments."""
    environment: Document | None
    """The environment's ``__environments`` document; None means key-auth without a rate limit."""


@dataclass(frozen=True)
class Snapshot:
    """Everything a replica serves from, read after one generation of the environment's counters."""

    generation: int
    documents: tuple[Document, ...]
    """The published function documents."""
    access: AccessDocuments | None = None
    """None when the snapshot was read without an access loader (the gate keeps what it has)."""
    variables: tuple[Document, ...] | None = field(default=None, repr=False)
    """The sealed variable documents; None when read without a variables loader."""
    parts: Mapping[str, int] | None = None
    """The per-part change counters read before the documents (None: unknown, the next read is full)."""


@dataclass(frozen=True)
class PublishedFunction:
    """One row of ``gatewayid_<gw>.__published_functions``."""

    name: str
    environment: str
    code: str
    version: int
    hash: str
    methods: tuple[str, ...] | None = None  # None = any method
    timeout_seconds: float = 10.0
    input_schema: dict[str, Any] = field(default_factory=dict)
    published_at: str = ""

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> PublishedFunction:
        methods = doc.get("methods")
        return cls(
            name=doc["name"],
            environment=doc["environment"],
            code=doc["code"],
            version=int(doc["version"]),
            hash=doc["hash"],
            methods=tuple(methods) if methods else None,
            timeout_seconds=float(doc.get("timeoutSeconds") or 10.0),
            input_schema=dict(doc.get("inputSchema") or {}),
            published_at=str(doc.get("publishedAt") or ""),
        )


@dataclass(frozen=True)
class Invocation:
    """An HTTP request as the worker sees it (``req`` inside ``main(req)``)."""

    method: str
    path: str  # the path below the function, e.g. "" or "/sub/path"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names; platform credentials (apikey) removed
    body: bytes
    request_id: str
    function: str


@dataclass(frozen=True)
class LogEntry:
    time: float
    level: str
    message: str


@dataclass(frozen=True)
class InvocationResult:
    status: int
    headers: dict[str, str]
    body: bytes
    logs: tuple[LogEntry, ...] = ()
    duration_ms: float = 0.0
    error: str | None = None
    """None on success; else a code of the API error shape (``invalid``, ``timeout``, ``internal``…)."""
