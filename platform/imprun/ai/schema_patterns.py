"""Regular expressions in tool input schemas, matched in linear time with RE2.

A JSON Schema's ``pattern`` and ``patternProperties`` are regular expressions that ``jsonschema``
runs with Python's backtracking ``re``: ``^(a+)+$`` against 24 ``a``\\ s and a ``!`` takes over a
second and five times longer per two more characters, on the loop that serves every key. Here they
run on RE2 (``google-re2``), whose matching time is linear in the input. ``pattern_problems`` lists
what RE2 cannot take (backreferences, lookaround, patterns too large to compile) — the tool registry
refuses such a schema; ``linear_validator`` builds a validator whose ``pattern``,
``patternProperties`` and ``additionalProperties`` keywords match with RE2, and raises
``SchemaError`` for a schema with a problem. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
from jsonschema.exceptions import SchemaError, ValidationError

__all__ = ["linear_validator", "pattern_problems"]

_NOT_SCHEMAS = frozenset({"const", "enum", "default", "examples"})
"""Keywords whose values are data, not schemas: a ``pattern`` key inside them is not a pattern."""


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def _patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, Mapping):
        for keyword, value in schema.items():
            if keyword == "pattern" and isinstance(value, str):
                yield value
            elif keyword == "patternProperties" and isinstance(value, Mapping):
                yield from (key for key in value if isinstance(key, str))
            if keyword not in _NOT_SCHEMAS:
                yield from _patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns(item)


def _uses(schema: Any, keyword: str) -> bool:
    if isinstance(schema, Mapping):
        return keyword in schema or any(_uses(v, keyword) for k, v in schema.items() if k not in _NOT_SCHEMAS)
    return isinstance(schema, list) and any(_uses(item, keyword) for item in schema)


def pattern_problems(schema: Mapping[str, Any]) -> list[str]:
    """Why the regular expressions of ``schema`` cannot be matched in linear time; [] when they can."""
    problems = []
    for pattern in dict.fromkeys(_patterns(schema)):
        try:
            _compiled(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            problems.append(
                f"the pattern {pattern[:100]!r} cannot be matched in linear time ({reason}); "
                "use RE2 syntax: no backreferences or lookaround"
            )
    if _uses(schema, "patternProperties") and _uses(schema, "unevaluatedProperties"):
        problems.append("patternProperties cannot be combined with unevaluatedProperties")
    return problems


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and _compiled(pattern).search(instance) is None:
        yield ValidationError(f"{instance[:100]!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        matcher = _compiled(pattern)
        for name, value in instance.items():
            if matcher.search(name) is not None:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    matchers = [_compiled(p) for p in schema.get("patternProperties", {})]
    extras = [
        name
        for name in instance
        if name not in declared and not any(m.search(name) is not None for m in matchers)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif additional is False and extras:
        listed = ", ".join(repr(name) for name in sorted(extras)[:10])
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


def linear_validator(schema: Mapping[str, Any]) -> Any:
    """A checked validator of ``schema`` matching its regular expressions with RE2."""
    problems = pattern_problems(schema)
    if problems:
        raise SchemaError("; ".join(problems))
    base = jsonschema.validators.validator_for(schema)
    base.check_schema(schema)
    linear = jsonschema.validators.extend(
        base,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )
    return linear(schema)
