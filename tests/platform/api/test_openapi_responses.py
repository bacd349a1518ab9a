"""Every ``/v1`` route's success answer has a named schema in the app's OpenAPI document.

A route answering a hand-built dict shows up as ``{"type": "object", "additionalProperties": true}``
(or nothing at all), which tells a client, the SDK and its test nothing. A 204 has no body, so it
needs none. No services needed: ``create_app(...).openapi()`` builds the schema without opening
the control plane.
"""

from __future__ import annotations

from typing import Any

import pytest

from imprun.api.app import create_app
from imprun.settings import Settings


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def untyped_answers(openapi: dict[str, Any]) -> list[str]:
    """``METHOD path status`` of each /v1 success answer without a named object schema."""
    components = openapi["components"]["schemas"]
    untyped = []
    for path, operations in openapi["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                item = schema.get("items", {}) if schema.get("type") == "array" else schema
                name = item.get("$ref", "").rsplit("/", 1)[-1]
                if not components.get(name, {}).get("properties"):
                    untyped.append(f"{method.upper()} {path} {status}")
    return untyped


def test_every_v1_answer_names_its_fields(openapi: dict[str, Any]) -> None:
    untyped = untyped_answers(openapi)
    assert not untyped, f"{len(untyped)} /v1 answers have no response model: {untyped}"


def test_a_hand_built_dict_is_caught() -> None:
    """The check itself: a route answering ``dict[str, Any]`` is reported."""
    document = {
        "paths": {
            "/v1/things": {
                "get": {
                    "responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}
                },
                "delete": {"responses": {"204": {"description": "gone"}}},
            },
            "/v1/typed": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Thing"},
                                    }
                                }
                            }
                        }
                    }
                }
            },
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    }
    assert untyped_answers(document) == ["GET /v1/things 200"]
