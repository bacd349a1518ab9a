"""``runtime_actors.shared.contract.analyze``: problems with exact positions, and schemas from signatures."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from runtime_actors.shared.contract import REQUEST_SCHEMA, Problem, analyze


def _code(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def _schema_of(signature: str, body: str = "    return 1\n") -> dict[str, Any]:
    analysis = analyze(f"def main{signature}:\n{body}")
    assert analysis.ok, analysis.problems
    assert analysis.input_schema is not None
    return analysis.input_schema


# --- problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        ("def main(req)\n    return 1\n", 1, 14, "expected ':'"),
        ("def main(req):\n    return (1,\n", 2, 12, "was never closed"),
        ("def main(req):\nreturn 1\n", 2, 1, "expected an indented block"),
        ("x = 1\nreturn x\n", 2, 1, "'return' outside function"),
        ("def main(req):\n    await thing()\n", 2, 5, "'await' outside async function"),
    ],
)
def test_syntax_errors_have_their_position(source: str, line: int, column: int, fragment: str) -> None:
    analysis = analyze(source)
    assert not analysis.ok
    assert len(analysis.problems) == 1
    problem = analysis.problems[0]
    assert (problem.line, problem.column) == (line, column)
    assert fragment in problem.message
    assert analysis.input_schema is None


def test_null_bytes_are_a_problem_not_a_crash() -> None:
    analysis = analyze("def main(req):\n    return 1\x00\n")
    assert not analysis.ok and analysis.problems[0].line >= 1


def test_missing_main_points_at_line_one() -> None:
    analysis = analyze("def handler(req):\n    return 1\n")
    assert analysis.details() == [
        {"line": 1, "column": 1, "message": analysis.problems[0].message},
    ]
    assert "no main function" in analysis.problems[0].message


def test_main_inside_a_block_points_at_it() -> None:
    analysis = analyze("if True:\n    def main(req):\n        return 1\n")
    assert analysis.problems == (
        Problem(2, 5, "main must be defined at the top level of the module, not inside a block"),
    )


def test_main_that_is_not_a_function_points_at_the_assignment() -> None:
    analysis = analyze("x = 1\nmain = lambda req: 1\n")
    assert [(p.line, p.column) for p in analysis.problems] == [(2, 1)]
    assert "def main" in analysis.problems[0].message


@pytest.mark.parametrize(
    ("source", "line", "column", "module"),
    [
        ("import os\n", 1, 1, "os"),
        ("import json, ctypes\n", 1, 1, "ctypes"),
        ("from subprocess import run\n", 1, 1, "subprocess"),
        ("import os.path\n", 1, 1, "os.path"),
        ("from urllib import request\n", 1, 1, "urllib"),
        ("def helper():\n    import socket\n", 2, 5, "socket"),
    ],
)
def test_forbidden_imports(source: str, line: int, column: int, module: str) -> None:
    analysis = analyze(source + "def main(req):\n    return 1\n")
    assert [(p.line, p.column) for p in analysis.problems] == [(line, column)]
    assert f"module {module!r} is not allowed" in analysis.problems[0].message
    assert "json" in analysis.problems[0].message  # the allow-list is named


@pytest.mark.parametrize(
    "source",
    [
        "import json\nimport collections.abc\nimport urllib.parse\n",
        "from urllib import parse\nfrom collections import abc, Counter\nfrom typing import Any\n",
        "from __future__ import annotations\nimport imp\n",
    ],
)
def test_allowed_imports(source: str) -> None:
    assert analyze(source + "def main(req):\n    return 1\n").ok


@pytest.mark.parametrize(
    ("expression", "column"),
    [('__import__("os")', 5), ("__builtins__.__import__('os')", 5), ("importlib.import_module('os')", 5)],
)
def test_dynamic_imports_by_name(expression: str, column: int) -> None:
    analysis = analyze(f"def main(req):\n    {expression}\n")
    assert [(p.line, p.column) for p in analysis.problems] == [(2, column)]
    assert "not available in functions" in analysis.problems[0].message


def test_relative_import() -> None:
    analysis = analyze("from . import sibling\ndef main(req):\n    return 1\n")
    assert analysis.problems == (
        Problem(1, 1, "relative imports are not available: a function is a single module"),
    )


def test_every_problem_is_reported_in_source_order() -> None:
    source = _code(
        """
        import json
        def helper():
            import os
        from subprocess import run
        """
    )
    analysis = analyze(source)
    assert [(p.line, p.column) for p in analysis.problems] == [(1, 1), (3, 5), (4, 1)]
    assert "no main function" in analysis.problems[0].message


# --- request functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature", ["(req)", "(request)", "(req: dict)", "(incoming: imp.Request)", "(r: 'Request')"]
)
def test_request_signatures_accept_any_object(signature: str) -> None:
    analysis = analyze(f"def main{signature}:\n    return 1\n")
    assert analysis.ok and analysis.takes_request
    assert analysis.input_schema == REQUEST_SCHEMA == {"type": "object", "additionalProperties": True}


def test_async_main_and_last_definition_wins() -> None:
    analysis = analyze("def main(req):\n    return 1\nasync def main(name: str):\n    return name\n")
    assert analysis.ok and analysis.is_async and not analysis.takes_request
    assert analysis.input_schema is not None and list(analysis.input_schema["properties"]) == ["name"]


# --- typed parameters ----------------------------------------------------------------------------


def test_scalars_defaults_and_required() -> None:
    schema = _schema_of(
        "(income: float, deductions: float = 0, years: int = 1, name: str = 'x', ok: bool = True)"
    )
    assert schema == {
        "type": "object",
        "properties": {
            "income": {"type": "number"},
            "deductions": {"type": "number", "default": 0},
            "years": {"type": "integer", "default": 1},
            "name": {"type": "string", "default": "x"},
            "ok": {"type": "boolean", "default": True},
        },
        "required": ["income"],
        "additionalProperties": False,
    }


def test_no_parameters() -> None:
    assert _schema_of("()") == {"type": "object", "properties": {}, "additionalProperties": False}


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("list", {"type": "array"}),
        ("list[int]", {"type": "array", "items": {"type": "integer"}}),
        ("List[str]", {"type": "array", "items": {"type": "string"}}),
        ("typing.Sequence[float]", {"type": "array", "items": {"type": "number"}}),
        ("set[str]", {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        ("tuple[int, ...]", {"type": "array", "items": {"type": "integer"}}),
        (
            "tuple[int, str]",
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        ("dict", {"type": "object"}),
        ("dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}),
        ("Dict[str, Any]", {"type": "object"}),
        ("Optional[int]", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        ("int | None", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        ("Union[int, str, None]", {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        ("Optional[int | str]", {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        ("list[int | None]", {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}),
        ("Literal['a', 'b']", {"enum": ["a", "b"], "type": "string"}),
        ("Literal[1, 'b']", {"enum": [1, "b"]}),
        ("Annotated[float, 'yearly income']", {"type": "number", "description": "yearly income"}),
        ("'list[str]'", {"type": "array", "items": {"type": "string"}}),
        ("Any", {}),
        ("Decimal", {}),
        ("int | Custom", {}),
    ],
)
def test_annotations(annotation: str, expected: dict[str, Any]) -> None:
    schema = _schema_of(f"(value: {annotation})")
    assert schema["properties"]["value"] == expected
    assert schema["required"] == ["value"]


def test_unannotated_parameters_have_no_type_but_keep_defaults() -> None:
    schema = _schema_of("(a, b=3, c=[1, (2, 3)], d=object(), e=float('inf'))")
    assert schema["properties"] == {
        "a": {},
        "b": {"default": 3},
        "c": {"default": [1, [2, 3]]},
        "d": {},
        "e": {},
    }
    assert schema["required"] == ["a"]


def test_optional_without_default_is_required() -> None:
    schema = _schema_of("(note: str | None, limit: int | None = None)")
    assert schema["required"] == ["note"]
    assert schema["properties"]["limit"]["default"] is None


def test_keyword_only_positional_only_and_kwargs() -> None:
    schema = _schema_of("(a: int, /, b: int = 2, *args, c: str, d: bool = False, **extra: float)")
    assert list(schema["properties"]) == ["a", "b", "c", "d"]
    assert schema["required"] == ["a", "c"]
    assert schema["properties"]["d"] == {"type": "boolean", "default": False}
    assert schema["additionalProperties"] == {"type": "number"}
    assert _schema_of("(a: int, **rest)")["additionalProperties"] is True


# --- docstrings and output -----------------------------------------------------------------------


def test_google_docstring() -> None:
    analysis = analyze(
        _code(
            '''
            def main(income: float, deductions: float = 0) -> dict:
                """Compute the income tax
                for one year.

                Args:
                    income (float): Gross yearly income,
                        in euros.
                    deductions: What may be deducted.

                Returns:
                    The tax due.
                """
                return {}
            '''
        )
    )
    assert analysis.description == "Compute the income tax for one year."
    assert analysis.input_schema is not None
    properties = analysis.input_schema["properties"]
    assert properties["income"]["description"] == "Gross yearly income, in euros."
    assert properties["deductions"]["description"] == "What may be deducted."
    assert analysis.output_schema == {"type": "object"}


def test_numpy_docstring() -> None:
    analysis = analyze(
        _code(
            '''
            def main(a: int, b: int):
                """Add two numbers.

                Parameters
                ----------
                a : int
                    The first.
                b : int
                    The second,
                    on two lines.

                Returns
                -------
                int
                """
                return a + b
            '''
        )
    )
    assert analysis.description == "Add two numbers."
    assert analysis.input_schema is not None
    properties = analysis.input_schema["properties"]
    assert properties["a"]["description"] == "The first."
    assert properties["b"]["description"] == "The second, on two lines."


def test_rest_docstring() -> None:
    analysis = analyze(
        _code(
            '''
            def main(city: str, days: int = 3):
                """Forecast the weather.

                :param city: Where.
                :param int days: How many days
                    ahead.
                :returns: a forecast
                """
                return {}
            '''
        )
    )
    assert analysis.description == "Forecast the weather."
    assert analysis.input_schema is not None
    properties = analysis.input_schema["properties"]
    assert properties["city"] == {"type": "string", "description": "Where."}
    assert properties["days"] == {"type": "integer", "description": "How many days ahead.", "default": 3}


def test_docstring_without_summary_and_no_docstring() -> None:
    only_args = analyze('def main(a: int):\n    """Args:\n        a: the value\n    """\n')
    assert only_args.description is None
    assert only_args.input_schema is not None
    assert only_args.input_schema["properties"]["a"]["description"] == "the value"
    assert analyze("def main(a: int):\n    return a\n").description is None


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ("dict", {"type": "object"}),
        ("list[dict]", {"type": "array", "items": {"type": "object"}}),
        ("str", {"type": "string"}),
        ("imp.Response", None),
        (None, None),
    ],
)
def test_output_schema(returns: str | None, expected: dict[str, Any] | None) -> None:
    arrow = f" -> {returns}" if returns else ""
    assert analyze(f"def main(req){arrow}:\n    return 1\n").output_schema == expected


def test_analysis_never_runs_the_code(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    analysis = analyze(f"open({str(marker)!r}, 'w').write('x')\ndef main(req):\n    return 1\n")
    assert analysis.ok
    assert not marker.exists()


def test_compiler_warnings_are_collected_not_printed(recwarn: pytest.WarningsRecorder) -> None:
    analysis = analyze('def main(req):\n    pattern = "\\d+"\n    return req is 1\n')
    assert analysis.ok
    assert [w.line for w in analysis.warnings] == [2, 3]
    assert analysis.warnings[1].message.startswith("SyntaxWarning:")  # escapes warn by version
    assert "invalid escape sequence" in analysis.warnings[0].message
    assert len(recwarn) == 0
