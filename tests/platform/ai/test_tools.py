"""The catalog rules: default names, collisions, registry overrides and pins, MCP-valid names."""

from __future__ import annotations

import pytest

from imprun.ai.tools import (
    MAX_TOOL_NAME_LENGTH,
    PERMISSIVE_SCHEMA,
    PublishedTool,
    RegistryEntry,
    build_catalog,
    default_tool_name,
    tool_name_problem,
)

SCHEMA = {"type": "object", "properties": {"income": {"type": "number"}}, "required": ["income"]}


def published(gw: str, env: str, fn: str, **extra: object) -> PublishedTool:
    return PublishedTool(gateway_id=gw, environment=env, function=fn, **extra)  # type: ignore[arg-type]


def test_every_published_function_is_a_tool_with_its_schema_and_docstring() -> None:
    tools = build_catalog(
        [published("hometax", "prod", "calculateTax", description="Flat tax.", input_schema=SCHEMA)], []
    )
    assert [(t.name, t.description, t.input_schema, t.function) for t in tools] == [
        ("calculateTax", "Flat tax.", SCHEMA, "calculateTax")
    ]


def test_raw_request_functions_get_a_permissive_schema_and_a_generated_description() -> None:
    (tool,) = build_catalog([published("gw", "dev", "echo")], [])
    assert tool.input_schema == PERMISSIVE_SCHEMA
    assert "echo" in tool.description and "gw" in tool.description


def test_nested_names_become_dotted_and_valid() -> None:
    (tool,) = build_catalog([published("gw", "dev", "tax/calculate")], [])
    assert tool.name == "tax.calculate" and tool_name_problem(tool.name) is None


def test_collisions_get_gateway_and_environment_prefixes_deterministically() -> None:
    items = [published("a", "prod", "hello"), published("b", "prod", "hello"), published("a", "prod", "solo")]
    names = [t.name for t in build_catalog(items, [])]
    assert names == ["a.prod.hello", "b.prod.hello", "solo"]
    assert names == [t.name for t in build_catalog(list(reversed(items)), [])]


def test_registry_entry_renames_describes_and_pins_to_its_environment() -> None:
    items = [
        published("gw", "dev", "tax", input_schema=SCHEMA),
        published("gw", "prod", "tax", input_schema=SCHEMA),
    ]
    entry = RegistryEntry(
        name="compute_tax", gateway_id="gw", environment="prod", function="tax", description="Tax!"
    )
    tools = build_catalog(items, [entry])
    assert [(t.name, t.environment, t.description, t.from_registry) for t in tools] == [
        ("compute_tax", "prod", "Tax!", True)
    ]
    assert tools[0].input_schema == SCHEMA


def test_registry_entry_of_an_unpublished_function_is_left_out() -> None:
    entry = RegistryEntry(name="ghost", gateway_id="gw", environment="prod", function="missing")
    assert build_catalog([published("gw", "prod", "tax")], [entry])[0].name == "tax"
    assert [t.name for t in build_catalog([], [entry])] == []


def test_a_default_tool_never_shadows_a_registry_name() -> None:
    entry = RegistryEntry(name="hello", gateway_id="a", environment="prod", function="greet")
    tools = build_catalog([published("a", "prod", "greet"), published("b", "prod", "hello")], [entry])
    assert sorted(t.name for t in tools) == ["b.prod.hello", "hello"]


def test_long_names_are_shortened_with_a_stable_hash() -> None:
    long = "x" * 120
    name = default_tool_name("gateway", "prod", long)
    assert len(name) == MAX_TOOL_NAME_LENGTH and tool_name_problem(name) is None
    assert name == default_tool_name("gateway", "prod", long)
    assert name != default_tool_name("gateway", "prod", long + "y")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("calc_tax-1.v2", True),
        ("", False),
        ("a" * 65, False),
        ("has space", False),
        ("ü", False),
        ("calc\n", False),
    ],
)
def test_tool_name_rules(name: str, ok: bool) -> None:
    assert (tool_name_problem(name) is None) is ok
