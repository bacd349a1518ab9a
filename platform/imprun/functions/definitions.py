"""What tenant code can import, described for editors: ``imp`` and the allow-listed modules.

The console's editor offers completions and hover documentation from this catalogue. It is derived
from the runtime's own definitions — the ``imp`` module the jailed worker installs and the import
allow-list the contract checker enforces — so the editor cannot promise a name the worker lacks.
This module is the only place in the control plane that imports those two runtime modules for that
purpose. The allow-listed modules are pure standard-library modules, imported here only to read
their public names, signatures and first documentation lines.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Literal

from runtime_actors.shared.allowed_modules import ALLOWED_MODULES
from runtime_actors.worker import imp_module

__all__ = ["Definition", "ModuleDefinitions", "importable_definitions"]

Kind = Literal["function", "class", "method", "property", "value", "module"]

_MAX_DOC = 2000
_MAX_MEMBERS = 400
_IMP_RETURN_TYPES = ("Collection", "Database")
"""Classes of ``imp`` outside its ``__all__`` that its functions return (``imp.db().collection(…)``)."""


@dataclass(frozen=True)
class Definition:
    name: str
    kind: Kind
    signature: str
    doc: str
    members: tuple[Definition, ...] = ()


@dataclass(frozen=True)
class ModuleDefinitions:
    module: str
    doc: str
    members: tuple[Definition, ...]


def _doc(obj: object, *, first_paragraph: bool) -> str:
    text = inspect.getdoc(obj) or ""
    if first_paragraph:
        text = text.split("\n\n", 1)[0]
    return text[:_MAX_DOC]


class _Annotation:
    """An annotation kept as the source text (``from __future__ import annotations``), shown unquoted."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _unquoted(annotation: Any) -> Any:
    return _Annotation(annotation) if isinstance(annotation, str) else annotation


def _signature(obj: Any) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    parameters = [p.replace(annotation=_unquoted(p.annotation)) for p in signature.parameters.values()]
    return str(
        signature.replace(parameters=parameters, return_annotation=_unquoted(signature.return_annotation))
    )


def _describe(name: str, obj: Any, *, first_paragraph: bool, with_members: bool) -> Definition:
    doc = _doc(obj, first_paragraph=first_paragraph)
    if inspect.isclass(obj):
        members = _class_members(obj, first_paragraph=first_paragraph) if with_members else ()
        return Definition(name, "class", _signature(obj), doc, members)
    if inspect.ismodule(obj):
        return Definition(name, "module", "", doc)
    if callable(obj):
        return Definition(name, "function", _signature(obj), doc)
    return Definition(name, "value", "", doc if doc != _doc(type(obj), first_paragraph=True) else "")


def _class_members(cls: type, *, first_paragraph: bool) -> tuple[Definition, ...]:
    members: list[Definition] = []
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            members.append(Definition(name, "property", "", _doc(attr, first_paragraph=first_paragraph)))
        elif callable(attr):
            members.append(
                Definition(name, "method", _signature(attr), _doc(attr, first_paragraph=first_paragraph))
            )
        elif not isinstance(attr, str | tuple):
            members.append(Definition(name, "value", "", ""))
    for slot in getattr(cls, "__slots__", ()):
        if not slot.startswith("_") and slot not in vars(cls):
            members.append(Definition(slot, "value", "", ""))
    return tuple(sorted(members, key=lambda d: d.name))


def _public_names(module: ModuleType) -> Iterable[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return sorted(names)


def _module_definitions(
    name: str, module: ModuleType, *, full: bool, extra: Iterable[str] = ()
) -> ModuleDefinitions:
    members = []
    for member in [*_public_names(module), *extra][:_MAX_MEMBERS]:
        obj = getattr(module, member, None)
        if obj is None:
            continue
        members.append(_describe(member, obj, first_paragraph=not full, with_members=full))
    return ModuleDefinitions(name, _doc(module, first_paragraph=True), tuple(members))


@cache
def importable_definitions() -> tuple[ModuleDefinitions, ...]:
    """``imp`` (with its classes' members and full docstrings) first, then each allow-listed module."""
    catalogue = [_module_definitions("imp", imp_module, full=True, extra=_IMP_RETURN_TYPES)]
    for name in sorted(ALLOWED_MODULES - {"imp"}):
        try:
            module = importlib.import_module(name)
        except ImportError:  # e.g. zoneinfo without tzdata: the worker cannot import it either
            continue
        catalogue.append(_module_definitions(name, module, full=False))
    return tuple(catalogue)
