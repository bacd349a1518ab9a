"""The editor's catalogue of importable names is the runtime's own: ``imp`` and the allow-list."""

from __future__ import annotations

from imprun.functions.definitions import importable_definitions
from runtime_actors.shared.allowed_modules import ALLOWED_MODULES
from runtime_actors.worker import imp_module


def test_imp_comes_first_with_exactly_its_public_names_and_the_classes_its_functions_return() -> None:
    imp = importable_definitions()[0]
    assert imp.module == "imp"
    names = {d.name for d in imp.members}
    assert set(imp_module.__all__) <= names
    assert names - set(imp_module.__all__) == {"Collection", "Database"}


def test_signatures_and_docs_come_from_the_runtime_definitions() -> None:
    members = {d.name: d for d in importable_definitions()[0].members}
    fetch = members["fetch"]
    assert fetch.kind == "function"
    assert fetch.signature.startswith("(url: str, *, method: str = 'GET'")  # annotations unquoted
    assert "egress policy" in fetch.doc
    request = members["Request"]
    assert request.kind == "class"
    request_members = {m.name: m.kind for m in request.members}
    assert request_members["json"] == "method" and request_members["text"] == "property"
    assert request_members["query"] == "value"  # a slot
    collection = {m.name for m in members["Collection"].members}
    assert {"find", "find_one", "insert_one", "update_one", "aggregate"} <= collection


def test_every_module_is_on_the_allow_list_and_stdlib_modules_list_their_members() -> None:
    catalogue = {m.module: m for m in importable_definitions()}
    assert set(catalogue) <= ALLOWED_MODULES
    assert set(catalogue) >= ALLOWED_MODULES - {"zoneinfo"}
    json_members = {d.name: d for d in catalogue["json"].members}
    assert json_members["dumps"].kind == "function" and "obj" in json_members["dumps"].signature
    assert "Serialize" in json_members["dumps"].doc
