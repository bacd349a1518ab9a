"""The static rules of the function contract: which modules, names and attributes tenant source may use.

``check_source`` rejects, with line and column, imports outside ``ALLOWED_MODULES``, relative imports,
``__builtins__``, frame/generator/traceback internals (``gi_frame``, ``f_back``, ``tb_frame``…) and
every dunder attribute but a few harmless ones. The control plane runs it when code is saved or
published (``contract.analyze``) and the jailed worker again when it loads a module, where
``import_refusal`` and ``is_blocked_attribute`` also guard ``__import__`` and ``getattr`` at run time.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from typing import Final

from runtime_actors.shared.allowed_modules import ALLOWED_MODULES

__all__ = ["INTERNAL_ATTRIBUTES", "SAFE_DUNDERS", "check_source", "import_refusal", "is_blocked_attribute"]

SAFE_DUNDERS: Final = frozenset(
    {
        "__init__", "__name__", "__qualname__", "__doc__", "__module__", "__post_init__", "__version__",
        "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__", "__next__", "__len__",
        "__contains__", "__getitem__", "__setitem__", "__delitem__", "__eq__", "__ne__", "__lt__",
        "__le__", "__gt__", "__ge__", "__hash__", "__repr__", "__str__", "__bool__", "__call__",
    }
)  # fmt: skip
INTERNAL_ATTRIBUTES: Final = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "cr_origin",
        "ag_frame", "ag_code", "ag_await", "tb_frame", "tb_next", "f_back", "f_globals", "f_locals",
        "f_builtins", "f_code", "f_trace", "co_code", "co_consts", "co_names",
    }
)  # fmt: skip


def is_blocked_attribute(name: str) -> bool:
    if name in INTERNAL_ATTRIBUTES:
        return True
    return name.startswith("__") and name.endswith("__") and name not in SAFE_DUNDERS


def _allowed_parent(name: str) -> bool:
    """``urllib`` for ``urllib.parse``: importable only as the way to an allowed sub-module."""
    return any(m.startswith(name + ".") for m in ALLOWED_MODULES)


def import_refusal(name: str, fromlist: Sequence[str] | None, level: int) -> str | None:
    """Why ``import``/``from … import`` of ``name`` is refused, or None when it is allowed.

    ``from json import decoder`` is refused too: Python would fall back to ``sys.modules["json.decoder"]``,
    the real module, when the view has no such attribute.
    """
    if level:
        return "relative imports are not available in functions"
    for item in fromlist or ():
        child = f"{name}.{item}"
        if child in ALLOWED_MODULES:
            continue
        if name not in ALLOWED_MODULES or child in sys.modules:
            return f"module '{child}' is not available in functions"
    if name in ALLOWED_MODULES or (_allowed_parent(name) and fromlist):
        return None
    return f"module '{name}' is not available in functions (allowed: {', '.join(sorted(ALLOWED_MODULES))})"


def check_source(tree: ast.AST) -> list[tuple[str, int, int]]:
    """Every refused construct in a tenant module: ``(message, line, column)`` (1-based)."""
    problems: list[tuple[str, int, int]] = []

    def refuse(node: ast.expr | ast.stmt, message: str) -> None:
        problems.append((message, node.lineno, node.col_offset + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_blocked_attribute(node.attr):
            refuse(node, f"attribute '{node.attr}' is not available in functions")
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
            refuse(node, f"'{node.id}' is not available in functions")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                refusal = import_refusal(alias.name, None, 0)
                if refusal is not None:
                    refuse(node, refusal)
        elif isinstance(node, ast.ImportFrom):
            refusal = import_refusal(node.module or "", [a.name for a in node.names], node.level)
            if refusal is not None:
                refuse(node, refusal)
    return sorted(problems, key=lambda p: (p[1], p[2]))
