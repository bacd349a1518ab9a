"""Tool input schemas whose regular expressions could freeze the AI gateway: refused when RE2 cannot
compile them, matched in linear time otherwise, and checked off the event loop within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from imprun.ai.dispatch import Caller, ToolOutcome, call_tool, schema_violation
from imprun.ai.schema_patterns import pattern_problems
from imprun.ai.tools import Tool

REDOS = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", r"^(?=a)a$", r"(?<!x)y", r"a{1000}{1000}"],
    ids=["backref", "ahead", "behind", "huge"],
)
def test_patterns_re2_cannot_match_in_linear_time_are_problems(pattern: str) -> None:
    nested = {
        "type": "object",
        "properties": {"x": {"type": "array", "items": {"type": "string", "pattern": pattern}}},
    }
    problems = pattern_problems(nested)
    assert len(problems) == 1 and repr(pattern)[:40] in problems[0]
    assert pattern_problems({"type": "object", "patternProperties": {pattern: {}}})


def test_what_looks_like_a_pattern_in_data_or_names_is_not_one() -> None:
    schema = {
        "type": "object",
        "properties": {"pattern": {"type": "string", "pattern": "^[a-z]+$"}},
        "examples": [{"pattern": r"(a)\1"}],
        "default": {"pattern": r"(a)\1"},
    }
    assert pattern_problems(schema) == []


@pytest.mark.timeout(10)
def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    """``^(a+)+$`` against 28 ``a``s and a ``!`` backtracks for about a minute in Python's ``re``."""
    problem = schema_violation(REDOS, {"s": "a" * 28 + "!"})
    assert problem is not None and "does not match" in problem
    assert schema_violation(REDOS, {"s": "a" * 100_000}) is None


def test_pattern_properties_and_additional_properties_match_with_re2() -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^x-[a-z]+$": {"type": "integer"}},
        "properties": {"name": {"type": "string"}},
        "additionalProperties": False,
    }
    assert schema_violation(schema, {"name": "n", "x-count": 3}) is None
    assert "integer" in (schema_violation(schema, {"x-count": "three"}) or "")
    assert "'other' unexpected" in (schema_violation(schema, {"other": 1}) or "")
    typed_extras = {
        "type": "object",
        "patternProperties": {"^x-": {}},
        "additionalProperties": {"type": "string"},
    }
    assert schema_violation(typed_extras, {"x-a": 1, "b": "ok"}) is None
    assert "string" in (schema_violation(typed_extras, {"b": 2}) or "")


def test_a_schema_with_an_unmatchable_pattern_refuses_every_call() -> None:
    problem = schema_violation({"type": "object", "properties": {"s": {"pattern": r"(a)\1"}}}, {"s": "aa"})
    assert problem is not None and "input schema is invalid" in problem and "linear time" in problem


class RecordingInvoker:
    def __init__(self) -> None:
        self.calls = 0

    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        self.calls += 1
        return ToolOutcome(200, {"ok": True}, 1.0)


def test_validation_runs_off_the_loop_within_its_bound() -> None:
    tool = Tool("t", "A tool.", REDOS, "gw", "prod", "t")
    invoker = RecordingInvoker()

    async def scenario() -> tuple[ToolOutcome, ToolOutcome, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        refused = await call_tool(
            invoker,
            tool,
            {"s": "a" * 200_000 + "!"},
            "r1",
            Caller("k"),
            timeout_seconds=5,
            validation_timeout_seconds=0,
        )
        ok = await call_tool(invoker, tool, {"s": "aaa"}, "r2", Caller("k"), timeout_seconds=5)
        ticking.cancel()
        return refused, ok, ticks

    refused, ok, ticks = asyncio.run(scenario())
    assert refused.is_error and refused.status == 422 and "took over 0 s" in refused.body["error"]["message"]
    assert not ok.is_error and invoker.calls == 1
    assert ticks > 0, "the loop kept running while the arguments were checked"
