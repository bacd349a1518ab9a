"""The function contract, checked statically: can this source load, and what does its ``main`` take?

``analyze(code)`` parses a function's source with ``ast`` and compiles the tree (which never runs it)
— the control plane calls it when code is saved, published or debug-run, and the runtime may call it
again before loading. It reports every problem with a 1-based line and column: syntax errors, a
missing top-level ``main``, imports of modules outside ``ALLOWED_MODULES`` (``from x import y`` and
relative imports included) and dynamic imports through ``__import__``/``importlib``. From ``main``'s
signature and docstring it derives the input JSON Schema (what MCP tools and typed-parameter binding
use): ``main(req)`` takes the raw request and accepts any object; typed parameters become properties
(``int`` → integer, ``list[str]`` → array of strings, ``X | None`` → ``anyOf`` with null, literal
defaults → ``default``), described by a Google, NumPy or reST ``Args`` section. Compiler warnings
are collected into the result instead of being printed. Standard library only.
"""

from __future__ import annotations

import ast
import math
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from runtime_actors.shared.allowed_modules import ALLOWED_MODULES
from runtime_actors.shared.source_rules import check_source

ENTRY_POINT = "main"
REQUEST_PARAMETERS = frozenset({"req", "request"})
"""A lone ``main`` parameter with one of these names (or annotated ``…Request``) gets the raw request."""

Schema = dict[str, Any]
REQUEST_SCHEMA: Schema = {"type": "object", "additionalProperties": True}

_MAX_TYPE_DEPTH = 8
_PLAIN_TYPES: dict[str, Schema] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
    "list": {"type": "array"},
    "List": {"type": "array"},
    "Sequence": {"type": "array"},
    "tuple": {"type": "array"},
    "Tuple": {"type": "array"},
    "set": {"type": "array", "uniqueItems": True},
    "Set": {"type": "array", "uniqueItems": True},
    "frozenset": {"type": "array", "uniqueItems": True},
    "dict": {"type": "object"},
    "Dict": {"type": "object"},
    "Mapping": {"type": "object"},
}
_ARRAYS = frozenset({"list", "List", "Sequence", "MutableSequence", "Iterable", "Collection"})
_SETS = frozenset({"set", "Set", "frozenset", "FrozenSet", "AbstractSet", "MutableSet"})
_TUPLES = frozenset({"tuple", "Tuple"})
_OBJECTS = frozenset({"dict", "Dict", "Mapping", "MutableMapping"})
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class FunctionAnalysis:
    problems: tuple[Problem, ...]
    input_schema: Schema | None = None
    output_schema: Schema | None = None
    description: str | None = None
    is_async: bool = False
    takes_request: bool = False
    warnings: tuple[Problem, ...] = ()
    """What the compiler warned about (``"is" with a literal``…): worth showing, never blocking."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def details(self) -> list[dict[str, Any]]:
        """The problems as ``[{line, column, message}]`` (the ``details`` of a 400 response)."""
        return [problem.as_dict() for problem in self.problems]


def analyze(code: str, *, filename: str = "<function>") -> FunctionAnalysis:
    """Check ``code`` against the function contract and derive ``main``'s schemas. Never executes it."""
    try:
        tree, notes = _compile(code, filename)
    except SyntaxError as exc:
        line, column = exc.lineno or 1, exc.offset or 1
        return FunctionAnalysis(problems=(Problem(line, max(column, 1), exc.msg),))
    except (ValueError, RecursionError, MemoryError) as exc:
        return FunctionAnalysis(problems=(Problem(1, 1, f"the code cannot be parsed: {exc}"),))
    problems = list(_import_problems(tree))
    seen = {(problem.line, problem.column) for problem in problems}
    # Whatever the worker's loader would refuse is refused here too, at save and publish time.
    problems += [
        Problem(line, column, message)
        for message, line, column in check_source(tree)
        if (line, column) not in seen
    ]
    main = _top_level_main(tree)
    if main is None:
        problems.append(_missing_main(tree))
        return FunctionAnalysis(problems=_sorted(problems), warnings=notes)
    docstring = ast.get_docstring(main) or ""
    summary, parameter_docs = _parse_docstring(docstring)
    input_schema, takes_request = _input_schema(main.args, parameter_docs)
    return FunctionAnalysis(
        problems=_sorted(problems),
        input_schema=input_schema,
        output_schema=_type_schema(main.returns) or None,
        description=summary,
        is_async=isinstance(main, ast.AsyncFunctionDef),
        takes_request=takes_request,
        warnings=notes,
    )


_WARNINGS_LOCK = threading.Lock()


def _compile(code: str, filename: str) -> tuple[ast.Module, tuple[Problem, ...]]:
    """Parse and compile (never run); the compiler's warnings are returned, not printed."""
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = ast.parse(code, filename=filename)
        compile(tree, filename, "exec", dont_inherit=True)
    notes = {
        Problem(w.lineno or 1, 1, f"{w.category.__name__}: {w.message}")
        for w in caught
        if w.filename == filename
    }
    return tree, _sorted(list(notes))


def _sorted(problems: list[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.line, p.column)))


def _at(node: ast.stmt | ast.expr, message: str) -> Problem:
    return Problem(node.lineno, node.col_offset + 1, message)


# --- imports ---------------------------------------------------------------------------------------


def _not_allowed(module: str) -> str:
    allowed = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
    return f"module {module!r} is not allowed in functions; allowed modules: {allowed}"


def _import_problems(tree: ast.Module) -> Iterator[Problem]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    yield _at(node, _not_allowed(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield _at(node, "relative imports are not available: a function is a single module")
            elif node.module not in ALLOWED_MODULES and not all(
                f"{node.module}.{alias.name}" in ALLOWED_MODULES for alias in node.names
            ):
                yield _at(node, _not_allowed(str(node.module)))
        elif isinstance(node, ast.Name) and node.id in ("__import__", "importlib"):
            yield _at(node, _dynamic_import(node.id))
        elif isinstance(node, ast.Attribute) and node.attr == "__import__":
            yield _at(node, _dynamic_import(node.attr))


def _dynamic_import(name: str) -> str:
    return f"{name} is not available in functions: use an `import` statement of an allowed module"


# --- main ------------------------------------------------------------------------------------------

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _top_level_main(tree: ast.Module) -> FunctionNode | None:
    found = None
    for node in tree.body:
        if isinstance(node, FunctionNode) and node.name == ENTRY_POINT:
            found = node  # a later definition replaces an earlier one, as at run time
    return found


def _missing_main(tree: ast.Module) -> Problem:
    for node in ast.walk(tree):
        if isinstance(node, FunctionNode) and node.name == ENTRY_POINT:
            return _at(node, "main must be defined at the top level of the module, not inside a block")
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == ENTRY_POINT for t in targets):
            return _at(statement, "main must be a function: define it with `def main(...)`")
    return Problem(1, 1, "no main function: define `def main(req):` or typed `def main(name: str):`")


def _input_schema(args: ast.arguments, docs: dict[str, str]) -> tuple[Schema, bool]:
    positional = [*args.posonlyargs, *args.args]
    if _is_request_signature(positional, args):
        return dict(REQUEST_SCHEMA), True
    defaults: dict[str, ast.expr] = dict(
        zip((a.arg for a in positional[len(positional) - len(args.defaults) :]), args.defaults, strict=True)
    )
    defaults.update(
        (a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
    )
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for parameter in [*positional, *args.kwonlyargs]:
        schema = _type_schema(parameter.annotation)
        if parameter.arg in docs:
            schema["description"] = docs[parameter.arg]
        if parameter.arg in defaults:
            value = _literal(defaults[parameter.arg])
            if value is not _NO_LITERAL:
                schema["default"] = value
        else:
            required.append(parameter.arg)
        properties[parameter.arg] = schema
    result: Schema = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    result["additionalProperties"] = (_type_schema(args.kwarg.annotation) or True) if args.kwarg else False
    return result, False


def _is_request_signature(positional: Sequence[ast.arg], args: ast.arguments) -> bool:
    if len(positional) != 1 or args.kwonlyargs or args.vararg or args.kwarg:
        return False
    parameter, annotation = positional[0], positional[0].annotation
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.Name(annotation.value.rpartition(".")[2])
    return parameter.arg in REQUEST_PARAMETERS or _name_of(annotation).endswith("Request")


_NO_LITERAL = object()


def _literal(node: ast.expr) -> Any:
    """The JSON value of a literal default (tuples become lists), or ``_NO_LITERAL``."""
    try:
        return _as_json(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_LITERAL


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        items = [_as_json(v) for v in value]
        return _NO_LITERAL if any(i is _NO_LITERAL for i in items) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        entries = {k: _as_json(v) for k, v in value.items()}
        return _NO_LITERAL if any(v is _NO_LITERAL for v in entries.values()) else entries
    return _NO_LITERAL


# --- annotations → JSON Schema ----------------------------------------------------------------------


def _name_of(node: ast.expr | None) -> str:
    """``int`` for ``int``, ``Optional`` for ``typing.Optional``; empty for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _type_schema(node: ast.expr | None, depth: int = 0) -> Schema:
    """The JSON Schema of an annotation; ``{}`` (no constraint) for what JSON cannot describe."""
    if node is None or depth > _MAX_TYPE_DEPTH:
        return {}
    if isinstance(node, ast.Constant):
        if node.value is None:
            return {"type": "null"}
        if isinstance(node.value, str):  # a forward reference: "int", "list[str]"
            try:
                return _type_schema(ast.parse(node.value, mode="eval").body, depth + 1)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return {}
        return {}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right], depth)
    if isinstance(node, ast.Subscript):
        arguments = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return _generic_schema(_name_of(node.value), arguments, depth)
    return dict(_PLAIN_TYPES.get(_name_of(node), {}))


def _generic_schema(origin: str, arguments: list[ast.expr], depth: int) -> Schema:
    first = arguments[0] if arguments else None
    if origin == "Optional":
        return _union([*arguments, ast.Constant(None)], depth)
    if origin == "Union":
        return _union(arguments, depth)
    if origin == "Annotated":
        schema = _type_schema(first, depth + 1)
        notes = [a.value for a in arguments[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if origin == "Literal":
        return _literal_schema(arguments)
    if origin in _ARRAYS or origin in _SETS:
        schema = _with_items({"type": "array"}, _type_schema(first, depth + 1))
        return {**schema, "uniqueItems": True} if origin in _SETS else schema
    if origin in _TUPLES:
        if len(arguments) == 2 and isinstance(arguments[1], ast.Constant) and arguments[1].value is ...:
            return _with_items({"type": "array"}, _type_schema(first, depth + 1))
        items = [_type_schema(a, depth + 1) for a in arguments]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin in _OBJECTS:
        values = _type_schema(arguments[1], depth + 1) if len(arguments) == 2 else {}
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    return {}


def _with_items(schema: Schema, items: Schema) -> Schema:
    return {**schema, "items": items} if items else schema


def _union(members: list[ast.expr], depth: int) -> Schema:
    options: list[Schema] = []
    for member in members:
        schema = _type_schema(member, depth + 1)
        if not schema:
            return {}  # one unconstrained member leaves the whole union unconstrained
        for option in schema.get("anyOf", [schema]):
            if option not in options:
                options.append(option)
    return options[0] if len(options) == 1 else {"anyOf": options}


def _literal_schema(arguments: list[ast.expr]) -> Schema:
    values = [_literal(a) for a in arguments]
    if not values or any(v is _NO_LITERAL for v in values):
        return {}
    types = {next((name for kind, name in _JSON_TYPES if isinstance(v, kind)), "") for v in values}
    schema: Schema = {"enum": values}
    if len(types) == 1 and "" not in types:
        schema["type"] = types.pop()
    return schema


# --- docstrings ------------------------------------------------------------------------------------

_GOOGLE_SECTION = re.compile(
    r"^(\s*)(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$"
)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::.*)?$")
_REST_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_SECTIONS = (
    "Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters"
    "|Returns?|Yields?|Raises|Examples?|Notes?|See Also|Warnings?"
)
_SECTION_START = re.compile(rf"^\s*(?:(?:{_SECTIONS}):?\s*$|:\w+)")
_DASHES = re.compile(r"^\s*-{3,}\s*$")


def _parse_docstring(docstring: str) -> tuple[str | None, dict[str, str]]:
    """The summary (first paragraph) and per-parameter descriptions of a cleaned docstring."""
    lines = docstring.splitlines()
    summary: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not line.strip() or _SECTION_START.match(line) or _DASHES.match(following):
            break
        summary.append(line.strip())
    docs = _google_params(lines) or _numpy_params(lines) or _rest_params(lines)
    return (" ".join(summary) or None), docs


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _collect(entries: dict[str, list[str]]) -> dict[str, str]:
    return {name: " ".join(part for part in parts if part) for name, parts in entries.items()}


def _google_params(lines: list[str]) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        header = _GOOGLE_SECTION.match(line)
        if header is None:
            continue
        base, entry_indent, current = len(header.group(1)), -1, ""
        if index == 0:  # cleandoc dedents the lines after the first: the entries may sit at its level
            base = -1
        for body in lines[index + 1 :]:
            if not body.strip():
                continue
            if _indent(body) <= base or _SECTION_START.match(body):
                break
            entry = _GOOGLE_ENTRY.match(body.strip())
            if entry_indent < 0:
                entry_indent = _indent(body)
            if entry is not None and _indent(body) == entry_indent:
                current = entry.group(1)
                entries[current] = [entry.group(2).strip()]
            elif current:
                entries[current].append(body.strip())
    return _collect(entries)


def _numpy_params(lines: list[str]) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    for index in range(len(lines) - 1):
        if lines[index].strip() not in ("Parameters", "Other Parameters") or not _DASHES.match(
            lines[index + 1]
        ):
            continue
        base = _indent(lines[index])
        names: list[str] = []
        body = lines[index + 2 :]
        for position, line in enumerate(body):
            following = body[position + 1] if position + 1 < len(body) else ""
            if _DASHES.match(following):
                break  # the next section's header
            if not line.strip():
                continue
            entry = _NUMPY_ENTRY.match(line.strip())
            if _indent(line) <= base and entry is not None:
                names = [name.strip() for name in entry.group(1).split(",")]
                for name in names:
                    entries[name] = []
            elif _indent(line) > base:
                for name in names:
                    entries[name].append(line.strip())
    return _collect(entries)


def _rest_params(lines: list[str]) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        match = _REST_PARAM.match(line)
        if match is not None:
            current = match.group(1)
            entries[current] = [match.group(2).strip()]
        elif current and line.strip() and _indent(line) > 0 and not line.strip().startswith(":"):
            entries[current].append(line.strip())
        else:
            current = ""
    return _collect(entries)
