"""The SDK's models read only what the control plane's OpenAPI says its routes answer.

For each SDK route whose server route declares its response type, the fields the SDK model reads (by
their wire names) must be properties of the route's response schema, and the fields the SDK requires
must be required there — so a renamed or dropped response field fails here, not in a user's program.
The (method, path) pairs come from the SDK's own route specs, so they are checked too. No services
needed: ``create_app(...).openapi()`` builds the schema without opening the control plane.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from imprun.api.app import create_app
from imprun.sdk import routes
from imprun.sdk._http import Spec
from imprun.sdk.models import Invite, IssuedInvite, LoginResult, User
from imprun.settings import Settings

# (what the SDK sends, what it reads from the answer: a model, or the keys its parser reads)
CHECKED: list[tuple[Spec[Any], type[BaseModel] | set[str]]] = [
    (routes.register("ada", "secret", "code"), User),
    (routes.login("ada", "secret"), LoginResult),
    (routes.me(), User),
    (routes.create_invite(), IssuedInvite),
    (routes.list_invites(), Invite),
    (routes.registration_mode(), {"mode"}),
    (routes.end_sessions(), {"ended"}),
    (routes.change_password("old", "new"), {"ended"}),
]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operation(openapi: dict[str, Any], spec: Spec[Any]) -> dict[str, Any]:
    for template, operations in openapi["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), spec.path):
            found = operations.get(spec.method.lower())
            if found is not None:
                return dict(found)
    raise AssertionError(f"the API has no route {spec.method} {spec.path}")


def response_object(openapi: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The JSON object schema of the operation's success answer (a list's item schema for a list)."""
    success = next(answer for code, answer in op["responses"].items() if code.startswith("2"))
    schema = success["content"]["application/json"]["schema"]
    if schema.get("type") == "array":
        schema = schema["items"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    return dict(openapi["components"]["schemas"][name])


def wire_fields(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """(every field the model reads, the ones it requires), by their names on the wire."""
    names = {name: info.alias or name for name, info in model.model_fields.items()}
    required = {names[name] for name, info in model.model_fields.items() if info.is_required()}
    return set(names.values()), required


@pytest.mark.parametrize(("spec", "reads"), CHECKED, ids=[f"{s.method} {s.path}" for s, _ in CHECKED])
def test_the_sdk_reads_only_what_the_route_answers(
    openapi: dict[str, Any], spec: Spec[Any], reads: type[BaseModel] | set[str]
) -> None:
    schema = response_object(openapi, operation(openapi, spec))
    properties = set(schema.get("properties", {}))
    read, required = (reads, reads) if isinstance(reads, set) else wire_fields(reads)
    assert read <= properties, f"the SDK reads {sorted(read - properties)}, which the route never answers"
    assert required <= set(schema.get("required", [])), "the SDK requires fields the route may leave out"
