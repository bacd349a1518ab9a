"""The tool registry behind ``/v1/ai-gateway/mcp-tools``: named, described, pinned tools.

An entry ``{name, description, gatewayId, environment, function, inputSchema?}`` makes the function
of the caller's gateway a tool under ``name`` for keys granted to ``environment`` (and hides that
function's default tools of the gateway's other environments, see ``imprun.ai.tools``). Names are
valid MCP tool names and unique per owner; the gateway must be the caller's and the function must
exist in it; an ``inputSchema`` given here must be a valid JSON Schema for an object (it is what the
gateway validates arguments against) whose regular expressions RE2 can match in linear time, else
the function's own derived schema is used.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from imprun.ai.catalog import tools_of_environments
from imprun.ai.schema_patterns import pattern_problems
from imprun.ai.tools import Tool, tool_name_problem
from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.errors import Invalid, NotFound
from imprun.store.mcp_tools import McpToolRecord, McpToolRepository, PublishedToolRow
from imprun.store.users import UserRecord

__all__ = ["McpToolRegistry"]

FunctionCheck = Callable[[str, str, UserRecord], None]
"""Raises ``NotFound`` unless the user's gateway has that function (``FunctionService.get``)."""


PublishedReader = Callable[[str, Iterable[str]], list[PublishedToolRow]]
"""``published_tools`` bound to the Mongo client: a gateway's published functions, without code."""


class McpToolRegistry:
    def __init__(
        self,
        tools: McpToolRepository,
        check_function: FunctionCheck,
        clock: Callable[[], datetime],
        published: PublishedReader | None = None,
    ) -> None:
        self._tools = tools
        self._check_function = check_function
        self._clock = clock
        self._published = published

    def effective(self, record: McpToolRecord) -> tuple[McpToolRecord, str]:
        """``record`` with the input schema its tool uses, and where that comes from: the entry's own
        (``registry``) or the one derived from the function published in its environment
        (``function``; None while the function is not published there)."""
        if record.input_schema is not None or self._published is None:
            return record, "registry" if record.input_schema is not None else "function"
        rows = self._published(record.gateway_id, [record.environment])
        schema = next((r.input_schema for r in rows if r.function == record.function), None)
        return replace(record, input_schema=schema), "function"

    def create(
        self,
        user: UserRecord,
        *,
        name: str,
        gateway_id: str,
        environment: str,
        function: str,
        description: str | None,
        input_schema: Mapping[str, Any] | None,
    ) -> McpToolRecord:
        problem = tool_name_problem(name)
        if problem is not None:
            raise Invalid(
                f"Invalid tool name {name!r}: {problem}.", details={"field": "name", "problem": problem}
            )
        if environment not in ENVIRONMENT_NAMES:
            raise Invalid(
                f"Unknown environment {environment!r}: use one of {', '.join(ENVIRONMENT_NAMES)}.",
                details={"field": "environment"},
            )
        if input_schema is not None:
            _check_input_schema(input_schema)
        self._check_function(gateway_id, function, user)
        return self._tools.insert(
            owner_id=user.id,
            name=name,
            gateway_id=gateway_id,
            environment=environment,
            function=function,
            description=description,
            input_schema=input_schema,
            at=self._clock(),
        )

    def list(self, user: UserRecord) -> list[McpToolRecord]:
        return self._tools.of_owner(user.id)

    def delete(self, user: UserRecord, name: str) -> None:
        if not self._tools.delete(user.id, name):
            raise NotFound(
                f"No tool named {name!r} is registered; list them with GET /v1/ai-gateway/mcp-tools."
            )

    def forget_gateway(self, gateway_id: str) -> None:
        self._tools.delete_of_gateway(gateway_id)

    def tools_of_environment(self, gateway_id: str, environment: str) -> builtins.list[Tool]:
        """The tools a key granted to this one environment sees (the console's agents page)."""
        published = self._published or (lambda _gateway_id, _environments: [])
        return tools_of_environments(frozenset({(gateway_id, environment)}), published, self._tools)


def _check_input_schema(schema: Mapping[str, Any]) -> None:
    if schema.get("type") != "object":
        raise Invalid(
            "inputSchema must describe an object ('type': 'object').", details={"field": "inputSchema"}
        )
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise Invalid(
            f"inputSchema is not a valid JSON Schema: {exc.message}.", details={"field": "inputSchema"}
        ) from exc
    problems = pattern_problems(schema)
    if problems:
        raise Invalid(
            f"inputSchema cannot be checked safely: {'; '.join(problems)}.",
            details={"field": "inputSchema", "problems": problems},
        )
