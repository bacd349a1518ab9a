"""The SDK's models read exactly what the control plane's OpenAPI says its routes answer.

For each SDK call, the request it sends names the route; the model that parses the answer is compared
with that route's response schema, by wire names and both ways: every field the SDK model reads is a
property of the schema, every property is a field of the model, and the fields the SDK requires are
required there. Models nested in a field (``Gateway.environments``, ``Function.published``) are
compared with the schema of that property the same way. So a renamed, dropped or added response
field fails here, not in a user's program. The requests come from the SDK's own ``Client`` methods
(``run`` records the request instead of sending it), so their (method, path) pairs are checked too.
No services needed: ``create_app(...).openapi()`` builds the schema without opening the control plane.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, Union, get_args, get_origin

import pytest
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from imprun.api.app import create_app
from imprun.sdk import Client, routes
from imprun.sdk._http import Spec
from imprun.sdk.models import (
    Application,
    DebugResult,
    Deployment,
    Environment,
    Function,
    FunctionVersion,
    Gateway,
    GatewayEvent,
    Grant,
    Invite,
    IssuedInvite,
    IssuedKey,
    LlmUsage,
    LogEntry,
    LoginResult,
    McpTool,
    PublishResult,
    User,
    Variable,
)
from imprun.settings import Settings

T = TypeVar("T")


class _Sent(Exception):
    def __init__(self, spec: Spec[Any]) -> None:
        self.spec = spec


class _Recorder(Client):
    """A ``Client`` whose one seam records the request spec instead of sending it."""

    def run(self, spec: Spec[T]) -> T:
        raise _Sent(spec)


def sent(call: Callable[[Client], object]) -> Spec[Any]:
    with _Recorder("http://control-plane.invalid", "token") as client:
        try:
            call(client)
        except _Sent as request:
            return request.spec
    raise AssertionError("the call sent no request")


class Check(NamedTuple):
    spec: Spec[Any]
    reads: type[BaseModel] | set[str]
    """The model that parses the answer, or the keys the SDK's parser reads."""
    inside: str | None = None
    """The answer's property that holds a list of what ``reads`` parses (``{"entries": [...]}``)."""


CHECKED: list[Check] = [
    Check(routes.register("ada", "secret", "code"), User),
    Check(routes.login("ada", "secret"), LoginResult),
    Check(routes.me(), User),
    Check(routes.create_invite(), IssuedInvite),
    Check(routes.list_invites(), Invite),
    Check(routes.registration_mode(), {"mode"}),
    Check(routes.end_sessions(), {"ended"}),
    Check(routes.change_password("old", "new"), {"ended"}),
    Check(sent(lambda c: c.create_gateway("Home tax")), Gateway),
    Check(sent(lambda c: c.list_gateways()), Gateway),
    Check(sent(lambda c: c.get_gateway("gw")), Gateway),
    Check(sent(lambda c: c.update_gateway("gw", state="Stopped")), Gateway),
    Check(sent(lambda c: c.delete_gateway("gw")), Gateway),
    Check(sent(lambda c: c.gateway_events("gw")), GatewayEvent),
    Check(sent(lambda c: c.list_environments("gw")), Environment),
    Check(sent(lambda c: c.get_environment("gw", "dev")), Environment),
    Check(sent(lambda c: c.update_environment("gw", "dev", auth_type="none")), Environment),
    Check(sent(lambda c: c.list_variables("gw", "dev")), Variable),
    Check(sent(lambda c: c.get_variable("gw", "dev", "TOKEN")), Variable),
    Check(sent(lambda c: c.set_variable("gw", "dev", "TOKEN", "v")), Variable),
    Check(routes.logs("gw", "dev", function=None, since=None), LogEntry, inside="entries"),
    Check(sent(lambda c: c.create_function("gw", "hello", "def handler(): pass")), Function),
    Check(sent(lambda c: c.list_functions("gw")), Function),
    Check(sent(lambda c: c.get_function("gw", "reports/daily")), Function),
    Check(sent(lambda c: c.update_function("gw", "hello", code="x = 1")), Function),
    Check(sent(lambda c: c.function_history("gw", "hello")), FunctionVersion),
    Check(sent(lambda c: c.publish_function("gw", "hello", "dev")), PublishResult),
    Check(sent(lambda c: c.deploy_to_stage("gw", "hello", "prod")), PublishResult),
    Check(sent(lambda c: c.debug_function("gw", "hello")), DebugResult),
    Check(sent(lambda c: c.list_deployments("gw")), Deployment),
    Check(sent(lambda c: c.create_application("shop")), Application),
    Check(sent(lambda c: c.list_applications()), Application),
    Check(sent(lambda c: c.get_application("app")), Application),
    Check(sent(lambda c: c.update_application("app", name="shop")), Application),
    Check(sent(lambda c: c.llm_usage("app")), LlmUsage),
    Check(sent(lambda c: c.create_grant("app", "gw", "dev")), IssuedKey),
    Check(sent(lambda c: c.list_grants("app")), Grant),
    Check(sent(lambda c: c.regenerate_key("app", "grant")), IssuedKey),
    Check(sent(lambda c: c.revoke_grant("app", "grant")), Grant),
    Check(sent(lambda c: c.create_mcp_tool("t", gateway_id="gw", environment="dev", function="f")), McpTool),
    Check(sent(lambda c: c.list_mcp_tools()), McpTool),
]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operation(openapi: dict[str, Any], spec: Spec[Any]) -> dict[str, Any]:
    for template, operations in openapi["paths"].items():
        pattern = re.sub(
            r"\{[^}]+\}", "[^/]+", template.replace("{fn}", ".+")
        )  # a function name may hold "/"
        if re.fullmatch(pattern, spec.path):
            found = operations.get(spec.method.lower())
            if found is not None:
                return dict(found)
    raise AssertionError(f"the API has no route {spec.method} {spec.path}")


def object_schema(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema ``schema`` stands for: through ``$ref``, nullable ``anyOf``, list items and
    map values; None when it is no object with named properties."""
    while True:
        if "$ref" in schema:
            schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        elif schema.get("type") == "array":
            schema = schema["items"]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return schema if "properties" in schema else None


def response_object(openapi: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The JSON object schema of the operation's success answer (a list's item schema for a list)."""
    success = next(answer for code, answer in op["responses"].items() if code.startswith("2"))
    found = object_schema(openapi, success["content"]["application/json"]["schema"])
    assert found is not None, "the route declares no response model"
    return found


def wire_name(name: str, info: FieldInfo) -> str:
    """The field's name in the answer: the first name it is read by."""
    if isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        return first if isinstance(first, str) else name
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return info.alias or name


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The SDK model inside a field's type (``list[Environment]``, ``RateLimit | None``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, dict, Union, types.UnionType):
        for argument in get_args(annotation):
            found = nested_model(argument)
            if found is not None:
                return found
    return None


def disagreements(
    openapi: dict[str, Any], model: type[BaseModel], schema: dict[str, Any], where: str
) -> list[str]:
    properties = schema.get("properties", {})
    fields = {wire_name(name, info): info for name, info in model.model_fields.items()}
    read, answered = set(fields), set(properties)
    required = {name for name, info in fields.items() if info.is_required()}
    found = []
    if read - answered:
        found.append(f"{where}: the SDK reads {sorted(read - answered)}, which the route never answers")
    if answered - read:
        found.append(
            f"{where}: the route answers {sorted(answered - read)}, which {model.__name__} does not read"
        )
    if required - set(schema.get("required", [])):
        found.append(
            f"{where}: the SDK requires {sorted(required - set(schema.get('required', [])))}, "
            "which the route may leave out"
        )
    for name, info in fields.items():
        inner = nested_model(info.annotation)
        inner_schema = object_schema(openapi, properties[name]) if name in properties else None
        if inner is not None and inner_schema is not None:
            found += disagreements(openapi, inner, inner_schema, f"{where}.{name}")
    return found


@pytest.mark.parametrize("check", CHECKED, ids=[f"{c.spec.method} {c.spec.path}" for c in CHECKED])
def test_the_sdk_reads_what_the_route_answers(openapi: dict[str, Any], check: Check) -> None:
    schema = response_object(openapi, operation(openapi, check.spec))
    if check.inside is not None:
        inner = object_schema(openapi, schema["properties"][check.inside])
        assert inner is not None, f"the answer's {check.inside!r} holds no objects"
        schema = inner
    if isinstance(check.reads, set):
        properties, required = set(schema.get("properties", {})), set(schema.get("required", []))
        assert check.reads <= properties, f"the SDK reads {sorted(check.reads - properties)}, never answered"
        assert check.reads <= required, "the SDK requires fields the route may leave out"
        return
    assert disagreements(openapi, check.reads, schema, check.reads.__name__) == []


def test_a_renamed_field_is_caught(openapi: dict[str, Any]) -> None:
    """The comparison itself: a model reading a field the route never answers, and missing one it
    does answer, is reported both ways."""

    class Renamed(BaseModel):
        gatewayId: str
        title: str

    schema = {
        "properties": {"gatewayId": {"type": "string"}, "name": {"type": "string"}},
        "required": ["gatewayId"],
    }
    found = disagreements(openapi, Renamed, schema, "Renamed")
    assert found == [
        "Renamed: the SDK reads ['title'], which the route never answers",
        "Renamed: the route answers ['name'], which Renamed does not read",
        "Renamed: the SDK requires ['title'], which the route may leave out",
    ]
