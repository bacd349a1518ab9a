"""Which tools one API key sees: published functions and registry entries turned into MCP tools.

Pure functions, no I/O (``imprun.ai.catalog`` reads the inputs). Every function published in an
environment the key is granted becomes a tool named after the function (``/`` of nested names → ``.``),
described by its docstring, with the input schema derived from its signature and an output schema when
its return annotation gives one. Entries of the ``/v1/ai-gateway/mcp-tools`` registry override that:
an entry names a tool, may replace its description and input schema, and pins the function to the
entry's environment (the function's default tools from the gateway's other environments disappear).
Names are valid MCP tool names (``[A-Za-z0-9_.-]``, at most 64 characters) and unique in the key's
view: when two tools would share a name, the default ones among them become ``<gw>.<env>.<fn>``.
The list is sorted by name, so pages are deterministic.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

__all__ = [
    "MAX_TOOL_NAME_LENGTH",
    "PERMISSIVE_SCHEMA",
    "PublishedTool",
    "RegistryEntry",
    "Tool",
    "build_catalog",
    "default_tool_name",
    "tool_name_problem",
]

MAX_TOOL_NAME_LENGTH: Final = 64
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_INVALID_CHARACTERS: Final = re.compile(r"[^A-Za-z0-9_.-]")
_HASH_LENGTH: Final = 8

PERMISSIVE_SCHEMA: Final[Mapping[str, Any]] = {"type": "object", "additionalProperties": True}
"""The input schema of ``main(req)``: any JSON object (it becomes the request body)."""


@dataclass(frozen=True, slots=True)
class PublishedTool:
    """A function published in one environment, as the catalog needs it (no code)."""

    gateway_id: str
    environment: str
    function: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    output_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One ``/v1/ai-gateway/mcp-tools`` entry; ``None`` fields fall back to the function's own."""

    name: str
    gateway_id: str
    environment: str
    function: str
    description: str | None = None
    input_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool in one key's view and the function it calls."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    gateway_id: str
    environment: str
    function: str
    output_schema: Mapping[str, Any] | None = None
    from_registry: bool = False


def tool_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid MCP tool name, or None."""
    if not 1 <= len(name) <= MAX_TOOL_NAME_LENGTH:
        return f"it must be 1 to {MAX_TOOL_NAME_LENGTH} characters long, not {len(name)}"
    if not _TOOL_NAME.fullmatch(name):
        return "it may contain only letters, digits, '_', '.' and '-'"
    return None


def default_tool_name(*parts: str) -> str:
    """``parts`` joined with ``.`` as a valid tool name; too long → shortened with a stable hash."""
    name = _INVALID_CHARACTERS.sub("_", ".".join(part.replace("/", ".") for part in parts))
    if len(name) <= MAX_TOOL_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{name[: MAX_TOOL_NAME_LENGTH - _HASH_LENGTH - 1]}-{digest}"


def build_catalog(published: Iterable[PublishedTool], registry: Iterable[RegistryEntry]) -> list[Tool]:
    """The tools of one key's view: ``published`` functions of its environments and the ``registry``
    entries of those environments (entries whose function is not published there are left out)."""
    by_location = {(p.gateway_id, p.environment, p.function): p for p in published}
    explicit: list[Tool] = []
    pinned: set[tuple[str, str]] = set()
    for entry in sorted(registry, key=lambda e: e.name):
        target = by_location.get((entry.gateway_id, entry.environment, entry.function))
        if target is None:
            continue
        pinned.add((entry.gateway_id, entry.function))
        explicit.append(_registry_tool(entry, target))
    defaults = [
        _default_tool(p) for _, p in sorted(by_location.items()) if (p.gateway_id, p.function) not in pinned
    ]
    return sorted(_unique(explicit, defaults), key=lambda t: (t.name, t.gateway_id, t.environment))


def _registry_tool(entry: RegistryEntry, target: PublishedTool) -> Tool:
    return Tool(
        name=entry.name,
        description=entry.description if entry.description is not None else _description(target),
        input_schema=entry.input_schema if entry.input_schema is not None else _input_schema(target),
        gateway_id=target.gateway_id,
        environment=target.environment,
        function=target.function,
        output_schema=target.output_schema,
        from_registry=True,
    )


def _default_tool(target: PublishedTool) -> Tool:
    return Tool(
        name=default_tool_name(target.function),
        description=_description(target),
        input_schema=_input_schema(target),
        gateway_id=target.gateway_id,
        environment=target.environment,
        function=target.function,
        output_schema=target.output_schema,
    )


def _unique(explicit: Sequence[Tool], defaults: Sequence[Tool]) -> list[Tool]:
    """Registry names win; default tools whose name is not unique get ``<gw>.<env>.<fn>``."""
    taken = {tool.name for tool in explicit}
    counts = Counter(tool.name for tool in defaults)
    tools = list(explicit)
    for tool in defaults:
        if counts[tool.name] > 1 or tool.name in taken:
            name = default_tool_name(tool.gateway_id, tool.environment, tool.function)
            tool = replace(tool, name=name)
        tools.append(tool)
    return tools


def _description(target: PublishedTool) -> str:
    return target.description.strip() or (
        f"Calls the function {target.function} of gateway {target.gateway_id} ({target.environment})."
    )


def _input_schema(target: PublishedTool) -> Mapping[str, Any]:
    return target.input_schema or PERMISSIVE_SCHEMA
