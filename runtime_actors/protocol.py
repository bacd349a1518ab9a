"""The shared vocabulary of the function runtime: published functions, invocations and their results.

These plain, frozen dataclasses cross every boundary of the data plane — the reload hub hands
``PublishedFunction`` documents to replicas, the supervisor sends ``Invocation`` to a jailed worker
and gets an ``InvocationResult`` back (as length-prefixed JSON: never pickle, the worker is untrusted)
— so they hold only builtins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PUBLISHED_FUNCTIONS = "__published_functions"
CONSUMERS = "__consumers"
ENVIRONMENT_SETTINGS = "__environments"
"""Per-environment ``{_id: <env>, authType, rateLimit}`` the ingress publishes for replicas."""
GENERATIONS = "runtime_generations"
"""System-database collection of per-environment generation counters ``{_id: "<gw>/<env>", generation,
functionsGeneration, accessGeneration, variablesGeneration}``; every publish/unpublish, consumer or settings change and
variable change bumps its environment's ``generation`` and the counter of the part it changed, so a
reload reads only what changed."""

PART_FUNCTIONS = "functions"
"""``__published_functions``."""
PART_ACCESS = "access"
"""``__consumers`` and ``__environments``."""
PART_VARIABLES = "variables"
"""The environment's sealed variables."""
RUNTIME_PARTS = (PART_FUNCTIONS, PART_ACCESS, PART_VARIABLES)


def part_counter(part: str) -> str:
    """The top-level field counting ``part``'s changes (not ``parts.<part>``: nx-27017 0.8.1 stores a
    dotted ``$inc`` of an upsert's insert as one literal field)."""
    return f"{part}Generation"


VARIABLES = "environment_variables"
"""System-database collection of sealed environment variables ``{_id: "<gw>/<env>/<name>", gatewayId,
environment, name, secret, keyVersion, nonce, ciphertext, …}`` (see ``runtime_actors.variables``)."""

RELOAD_CHANNEL = "imprun:reload"
"""Redis pub/sub channel the control plane publishes ``<gw>/<env>`` on after a bump (a wake-up only:
the generation counters stay the lossless source)."""

LOG_STREAM_PREFIX = "imprun:logs:"
"""Redis stream per environment: ``imprun:logs:<gw>/<env>``."""


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
