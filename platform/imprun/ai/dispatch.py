"""Calling a tool: check its arguments, run its function through the runtime, shape the outcome.

``ToolInvoker`` is the seam to the function runtime: the Serve implementation
(``ray_apps.ai_gateway``) hands the call to a replica of the function's environment, which runs it
in that environment's jailed workers with the same limits, timeout and logs as an HTTP call. The
``Caller`` (the presented API key and the client's address) travels with it, so the replica's key
gate counts the call against the same rate limit as the key's HTTP calls (a refusal — 429 over the
limit, 401 for a key the environment no longer knows — is a tool error like any other). Here
the arguments are validated against the tool's input schema first — in a worker thread, within a
time bound, its regular expressions matched in linear time (``imprun.ai.schema_patterns``) — and a
violation is a tool error with the validation detail (the function never runs); the function's
answer becomes a ``ToolOutcome``: an error when the status is not 2xx (the function raised, timed
out, rejected its input…).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from imprun.ai.schema_patterns import linear_validator
from imprun.ai.tools import Tool
from runtime_actors.shared.errors import error_body

__all__ = [
    "VALIDATION_TIMEOUT_SECONDS",
    "Caller",
    "ToolInvoker",
    "ToolOutcome",
    "call_tool",
    "schema_violation",
]

VALIDATION_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for a tool call: the API key they presented and their address, as the ingress saw it."""

    api_key: str = field(repr=False)
    client: str = ""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The result of one tool call: ``body`` is the function's JSON (or text) answer."""

    status: int
    body: Any
    duration_ms: float
    error: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None or not 200 <= self.status < 300

    def as_text(self) -> str:
        """The result as text for a model or an MCP content block."""
        if isinstance(self.body, str):
            return self.body
        return json.dumps(self.body, ensure_ascii=False, default=str)


class ToolInvoker(Protocol):
    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        """Run ``tool``'s function with ``arguments`` (its JSON body) in its environment's sandbox,
        admitted (key, rate limit) as ``caller``."""
        ...


def schema_violation(schema: Mapping[str, Any], arguments: Any) -> str | None:
    """Why ``arguments`` do not satisfy ``schema`` (the best-matching error, with its path), or None."""
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        return f"the tool's input schema is invalid: {exc.message}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    return None if error is None else _describe(error)


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    """A checked validator per distinct schema (checking a schema costs more than most validations)."""
    return linear_validator(json.loads(schema_json))


def _describe(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


async def call_tool(
    invoker: ToolInvoker,
    tool: Tool,
    arguments: Any,
    request_id: str,
    caller: Caller,
    *,
    timeout_seconds: float,
    validation_timeout_seconds: float = VALIDATION_TIMEOUT_SECONDS,
) -> ToolOutcome:
    """Validate ``arguments`` (off the event loop, within ``validation_timeout_seconds``) and invoke
    ``tool``'s function within ``timeout_seconds``."""
    started = time.perf_counter()
    if not isinstance(arguments, Mapping):
        return _refused(started, "the arguments must be a JSON object")
    try:
        problem = await asyncio.wait_for(
            asyncio.to_thread(schema_violation, tool.input_schema, dict(arguments)),
            validation_timeout_seconds,
        )
    except TimeoutError:
        problem = f"checking them against the tool's input schema took over {validation_timeout_seconds:g} s"
    if problem is not None:
        return _refused(started, f"invalid arguments: {problem}")
    try:
        return await asyncio.wait_for(
            invoker.invoke(tool, arguments, request_id, caller),
            timeout_seconds,
        )
    except TimeoutError:
        message = f"The tool did not answer within {timeout_seconds:g} s."
        return ToolOutcome(504, error_body("timeout", message), _elapsed_ms(started), error="timeout")


def _refused(started: float, message: str) -> ToolOutcome:
    return ToolOutcome(422, error_body("invalid", message), _elapsed_ms(started), "invalid")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
