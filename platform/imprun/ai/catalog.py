"""The tool catalog of the AI gateway: which environments a key opens, and the tools it sees there.

A key presented to ``/mcp`` or ``/ai-gateway/chat`` (``apikey`` header or ``Authorization: Bearer``)
is hashed with the platform pepper and looked up among the active grants of the system database; the
grants' ``(gateway, environment)`` pairs are the key's view. The view's tools come from the published
functions of those environments and the registry entries of those gateways (``imprun.ai.tools``).
Both lookups are cached for ``ttl_seconds`` (default half a second), so a burst of MCP requests costs
one read while a revoked key or a new publication shows within a second. The stores are blocking
clients: the async methods run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Final, TypeVar

from imprun.ai.tools import PublishedTool, RegistryEntry, Tool, build_catalog
from imprun.errors import Unauthorized
from imprun.security.api_keys import lookup_hash
from imprun.store.applications import GrantRepository
from imprun.store.mcp_tools import McpToolRepository, PublishedToolRow

__all__ = ["KeyView", "ToolCatalog", "presented_key", "tools_of_environments"]

KEY_HEADER: Final = "apikey"
_MAX_KEY_LENGTH: Final = 256
_KEY: Final = re.compile(r"[!-~]+")
_CACHE_LIMIT: Final = 4096

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyView:
    """What one key opens: its grants' environments (empty when the key has no active grant)."""

    lookup_hash: str
    environments: frozenset[tuple[str, str]]
    application_ids: frozenset[str]

    def grants(self, gateway_id: str, environment: str) -> bool:
        return (gateway_id, environment) in self.environments


def presented_key(headers: Mapping[str, str]) -> str:
    """The API key of a request (``apikey``, else ``Authorization: Bearer``); ``Unauthorized`` if none
    or malformed. ``headers`` has lower-case names."""
    key = headers.get(KEY_HEADER)
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise Unauthorized(
            "An API key is required: send it in the 'apikey' header or as 'Authorization: Bearer <key>'."
        )
    if len(key) > _MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise Unauthorized("The API key is malformed.")
    return key


class _TtlCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[object, tuple[float, object]] = {}

    def fresh(self, key: object) -> tuple[bool, object]:
        """``(True, value)`` when ``key`` holds a value younger than the TTL, else ``(False, None)``."""
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return True, hit[1]
        return False, None

    def get_or(self, key: object, load: Callable[[], T]) -> T:
        found, value = self.fresh(key)
        if found:
            return value  # type: ignore[return-value]
        now = time.monotonic()
        value = load()
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value


class ToolCatalog:
    def __init__(
        self,
        grants: GrantRepository,
        registry: McpToolRepository,
        published: Callable[[str, Iterable[str]], list[PublishedToolRow]],
        pepper: bytes,
        *,
        ttl_seconds: float = 0.5,
    ) -> None:
        self._grants = grants
        self._registry = registry
        self._published = published
        self._pepper = pepper
        self._views = _TtlCache(ttl_seconds)
        self._tools = _TtlCache(ttl_seconds)

    def view_of(self, api_key: str) -> KeyView:
        """The key's view; ``Unauthorized`` when no active grant has this key (blocking)."""
        hashed = self._hash(api_key)
        view = self._views.get_or(hashed, lambda: self._load_view(hashed))
        if view is None:
            raise Unauthorized("Unknown or revoked API key.")
        return view

    def _hash(self, api_key: str) -> str:
        return lookup_hash(self._pepper, api_key) if self._pepper else ""

    def tools_of(self, view: KeyView) -> list[Tool]:
        """The tools of ``view``, sorted by name (blocking)."""
        return self._tools.get_or(view.environments, lambda: self._load_tools(view.environments))

    async def view_of_async(self, api_key: str) -> KeyView:
        """``view_of`` without a thread hop when the answer is cached."""
        found, view = self._views.fresh(self._hash(api_key))
        if found:
            if view is None:
                raise Unauthorized("Unknown or revoked API key.")
            return view  # type: ignore[return-value]
        return await asyncio.to_thread(self.view_of, api_key)

    async def tools_of_async(self, view: KeyView) -> list[Tool]:
        found, tools = self._tools.fresh(view.environments)
        if found:
            return tools  # type: ignore[return-value]
        return await asyncio.to_thread(self.tools_of, view)

    def _load_view(self, hashed: str) -> KeyView | None:
        if not hashed:
            return None
        grants = self._grants.active_by_lookup_hash(hashed)
        if not grants:
            return None
        return KeyView(
            lookup_hash=hashed,
            environments=frozenset((g.gateway_id, g.environment) for g in grants),
            application_ids=frozenset(g.application_id for g in grants),
        )

    def _load_tools(self, environments: frozenset[tuple[str, str]]) -> list[Tool]:
        return tools_of_environments(environments, self._published, self._registry)


def tools_of_environments(
    environments: frozenset[tuple[str, str]],
    published: Callable[[str, Iterable[str]], list[PublishedToolRow]],
    registry: McpToolRepository,
) -> list[Tool]:
    """The tools a key granted exactly ``environments`` sees, sorted by name (blocking)."""
    by_gateway: dict[str, set[str]] = {}
    for gateway_id, environment in environments:
        by_gateway.setdefault(gateway_id, set()).add(environment)
    rows = [
        PublishedTool(**asdict(row))  # the store's row has exactly the catalog's fields
        for gateway_id, envs in sorted(by_gateway.items())
        for row in published(gateway_id, envs)
    ]
    entries = [
        RegistryEntry(
            name=r.name,
            gateway_id=r.gateway_id,
            environment=r.environment,
            function=r.function,
            description=r.description,
            input_schema=r.input_schema,
        )
        for r in registry.of_gateways(by_gateway)
        if (r.gateway_id, r.environment) in environments
    ]
    return build_catalog(rows, entries)
