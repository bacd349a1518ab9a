"""Function drafts over the real API: create, list, get, patch, history, delete; code and input checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.platform.functions.conftest import Headers, register

HELLO = "def main(req):\n    return {'hello': 'world'}\n"
TAX = '''def main(income: float, deductions: float = 0, country: str | None = None) -> dict:
    """Compute the income tax.

    Args:
        income: Gross yearly income.
        deductions: What may be deducted.
    """
    return {"tax": (income - deductions) * 0.3}
'''


def functions_url(gw: str, *parts: str) -> str:
    return "/".join([f"/v1/api-gateways/{gw}/functions", *parts])


def test_draft_lifecycle(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    client, name = functions_client, unique_function("hello")
    created = client.post(
        functions_url(gateway), json={"name": name, "code": HELLO, "description": "Says hello"}, headers=owner
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == name and body["version"] == 1 and body["code"] == HELLO
    assert body["methods"] == ["GET", "POST"] and body["timeoutSeconds"] == 10
    assert body["description"] == "Says hello" and body["published"] == {}
    assert body["inputSchema"] == {"type": "object", "additionalProperties": True}
    assert len(body["hash"]) == 64

    listed = client.get(functions_url(gateway), headers=owner).json()
    mine = [f for f in listed if f["name"] == name]
    assert len(mine) == 1 and mine[0]["version"] == 1 and "code" not in mine[0]

    new_code = HELLO.replace("world", "imprun")
    patched = client.patch(
        functions_url(gateway, name),
        json={
            "code": new_code,
            "methods": ["post", "get", "PUT"],
            "timeoutSeconds": 2.5,
            "changelog": "greet us",
        },
        headers=owner,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert patched.json()["methods"] == ["GET", "POST", "PUT"] and patched.json()["timeoutSeconds"] == 2.5

    got = client.get(functions_url(gateway, name), headers=owner).json()
    assert got["code"] == new_code and got["version"] == 2 and got["description"] == "Says hello"

    unchanged = client.patch(functions_url(gateway, name), json={"code": new_code}, headers=owner)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 2

    client.patch(functions_url(gateway, name), json={"description": "Greets"}, headers=owner)
    history = client.get(functions_url(gateway, name, "history"), headers=owner).json()
    assert [h["version"] for h in history] == [3, 2, 1]
    assert [h["changelog"] for h in history] == ["changed description", "greet us", "created"]
    assert all(h["author"].startswith("dev-") and h["at"] and "code" not in h for h in history)
    with_code = client.get(
        functions_url(gateway, name, "history"), params={"includeCode": True}, headers=owner
    )
    assert [h["code"] for h in with_code.json()] == [new_code, new_code, HELLO]

    deleted = client.delete(functions_url(gateway, name), headers=owner)
    assert deleted.status_code == 200 and deleted.json() == {
        "name": name,
        "deleted": True,
        "unpublishedFrom": [],
    }
    assert client.get(functions_url(gateway, name), headers=owner).status_code == 404
    assert client.get(functions_url(gateway, name, "history"), headers=owner).status_code == 404
    assert client.delete(functions_url(gateway, name), headers=owner).status_code == 404
    plane = client.app.state.plane  # type: ignore[attr-defined]
    sys_db = plane.mongo[plane.settings.sys_db_name]
    assert sys_db.function_history.count_documents({"gatewayId": gateway, "name": name}) == 0


def test_typed_signature_becomes_the_input_schema(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    name = unique_function("tax")
    created = functions_client.post(functions_url(gateway), json={"name": name, "code": TAX}, headers=owner)
    assert created.status_code == 201, created.text
    got = functions_client.get(functions_url(gateway, name), headers=owner).json()
    assert got["description"] == "Compute the income tax."  # from the docstring when not given
    assert got["inputSchema"] == {
        "type": "object",
        "properties": {
            "income": {"type": "number", "description": "Gross yearly income."},
            "deductions": {"type": "number", "description": "What may be deducted.", "default": 0},
            "country": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["income"],
        "additionalProperties": False,
    }
    assert got["outputSchema"] == {"type": "object"}

    retyped = functions_client.patch(
        functions_url(gateway, name), json={"code": "def main(n: int):\n    return n\n"}, headers=owner
    )
    assert retyped.json()["inputSchema"]["properties"] == {"n": {"type": "integer"}}


@pytest.mark.parametrize(
    ("code", "line", "column", "fragment"),
    [
        ("def main(req)\n    return 1\n", 1, 14, "expected ':'"),
        ("def handler(req):\n    return 1\n", 1, 1, "no main function"),
        ("import os\ndef main(req):\n    return 1\n", 1, 1, "module 'os' is not allowed"),
        (
            "import json\nimport ctypes\ndef main(req):\n    return 1\n",
            2,
            1,
            "module 'ctypes' is not allowed",
        ),
        ("def main(req):\n    from subprocess import run\n", 2, 5, "module 'subprocess' is not allowed"),
        ('def main(req):\n    return __import__("os")\n', 2, 12, "__import__ is not available"),
    ],
)
def test_code_that_breaks_the_contract_is_a_400_with_its_position(
    functions_client: TestClient,
    owner: Headers,
    gateway: str,
    unique_function: Callable[[str], str],
    code: str,
    line: int,
    column: int,
    fragment: str,
) -> None:
    name = unique_function("bad")
    response = functions_client.post(functions_url(gateway), json={"name": name, "code": code}, headers=owner)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["details"][0]["line"] == line and error["details"][0]["column"] == column
    assert fragment in error["details"][0]["message"]
    assert f"line {line}, column {column}" in error["message"]
    assert functions_client.get(functions_url(gateway, name), headers=owner).status_code == 404


def test_a_bad_patch_keeps_the_draft(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    name = unique_function("keep")
    functions_client.post(functions_url(gateway), json={"name": name, "code": HELLO}, headers=owner)
    bad = functions_client.patch(
        functions_url(gateway, name), json={"code": "import socket\ndef main(req): pass\n"}, headers=owner
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["line"] == 1
    got = functions_client.get(functions_url(gateway, name), headers=owner).json()
    assert got["version"] == 1 and got["code"] == HELLO


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "code": HELLO}, "name"),
        ({"name": "/lead", "code": HELLO}, "name"),
        ({"name": "trail/", "code": HELLO}, "name"),
        ({"name": "a//b", "code": HELLO}, "name"),
        ({"name": "dots.not.allowed", "code": HELLO}, "name"),
        ({"name": "x" * 129, "code": HELLO}, "name"),
        ({"name": "_health", "code": HELLO}, "name"),
        ({"name": "reports/history", "code": HELLO}, "name"),
        ({"name": "ok", "code": ""}, "code"),
        ({"name": "ok", "code": HELLO, "methods": ["FETCH"]}, "methods"),
        ({"name": "ok", "code": HELLO, "methods": []}, "methods"),
        ({"name": "ok", "code": HELLO, "timeoutSeconds": 0.01}, "timeoutSeconds"),
        ({"name": "ok", "code": HELLO, "timeoutSeconds": 301}, "timeoutSeconds"),
        ({"name": "ok", "code": HELLO, "surprise": 1}, "surprise"),
    ],
)
def test_invalid_fields_are_422(
    functions_client: TestClient, owner: Headers, gateway: str, body: dict[str, object], field: str
) -> None:
    response = functions_client.post(functions_url(gateway), json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert any(d["loc"][:2] == ["body", field] for d in response.json()["error"]["details"])


def test_duplicate_names_conflict(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    name = unique_function("twice")
    assert (
        functions_client.post(
            functions_url(gateway), json={"name": name, "code": HELLO}, headers=owner
        ).status_code
        == 201
    )
    again = functions_client.post(functions_url(gateway), json={"name": name, "code": HELLO}, headers=owner)
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]


def test_nested_names_reach_every_route(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    name = f"reports/{unique_function('daily')}/v2"
    assert (
        functions_client.post(
            functions_url(gateway), json={"name": name, "code": HELLO}, headers=owner
        ).status_code
        == 201
    )
    assert functions_client.get(functions_url(gateway, name), headers=owner).json()["name"] == name
    patched = functions_client.patch(
        functions_url(gateway, name), json={"description": "nested"}, headers=owner
    )
    assert patched.json()["version"] == 2
    assert len(functions_client.get(functions_url(gateway, name, "history"), headers=owner).json()) == 2
    published = functions_client.post(
        functions_url(gateway, name, "publish"), json={"environment": "dev"}, headers=owner
    )
    assert published.status_code == 200 and published.json()["name"] == name
    assert functions_client.delete(functions_url(gateway, name), headers=owner).json()["unpublishedFrom"] == [
        "dev"
    ]


def test_another_users_gateway_is_not_found(
    functions_client: TestClient, owner: Headers, gateway: str, unique_function: Callable[[str], str]
) -> None:
    name = unique_function("private")
    functions_client.post(functions_url(gateway), json={"name": name, "code": HELLO}, headers=owner)
    stranger = register(functions_client)
    attempts = [
        functions_client.get(functions_url(gateway), headers=stranger),
        functions_client.get(functions_url(gateway, name), headers=stranger),
        functions_client.post(functions_url(gateway), json={"name": "x", "code": HELLO}, headers=stranger),
        functions_client.patch(functions_url(gateway, name), json={"code": HELLO}, headers=stranger),
        functions_client.delete(functions_url(gateway, name), headers=stranger),
        functions_client.post(
            functions_url(gateway, name, "publish"), json={"environment": "dev"}, headers=stranger
        ),
        functions_client.post(
            functions_url(gateway, name, "deploy-to-stage"), json={"targetStage": "staging"}, headers=stranger
        ),
        functions_client.post(functions_url(gateway, name, "debug"), json={}, headers=stranger),
        functions_client.get(f"/v1/api-gateways/{gateway}/deployments", headers=stranger),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    assert all(a.json()["error"]["code"] == "not_found" for a in attempts)
    assert functions_client.get(functions_url(gateway, name), headers=owner).json()["version"] == 1
    assert functions_client.get(functions_url(gateway), headers={}).status_code == 401
