"""The Python layer's pure parts (load-time source checks, import rules, module views, restricted
builtins), the wire codec's defences against a hostile worker, and the ``imp`` stubs."""

from __future__ import annotations

import ast
import base64
import sys
import textwrap
from typing import Any

import pytest

from runtime_actors.shared.frames import (
    LoadError,
    ProtocolError,
    decode_frame,
    encode_frame,
    result_from_wire,
)
from runtime_actors.shared.source_rules import check_source
from runtime_actors.worker import imp_module, sandbox


def problems(code: str) -> list[tuple[str, int, int]]:
    return check_source(ast.parse(textwrap.dedent(code)))


@pytest.mark.parametrize(
    "code",
    [
        "x = ().__class__",
        "f.__globals__",
        "g.gi_frame",
        "t.tb_frame.f_back",
        "c.cr_frame",
        "type.__subclasses__(object)",
        "obj.__dict__",
        "m.__builtins__",
        "__builtins__",
        "import os",
        "import urllib",
        "from urllib import request",
        "from json import decoder",
        "from . import sibling",
        "import importlib",
    ],
)
def test_refused_constructs(code: str) -> None:
    assert problems(code), code


@pytest.mark.parametrize(
    "code",
    [
        "import json, math, re",
        "import urllib.parse",
        "from urllib.parse import quote",
        "from urllib import parse",
        "from collections import abc, OrderedDict",
        "from __future__ import annotations",
        "import imp",
        "class A:\n    def __init__(self):\n        super().__init__()\n",
        "name = type(x).__name__",
        "self._private = 1",
    ],
)
def test_allowed_constructs(code: str) -> None:
    assert problems(code) == []


def test_problems_carry_line_and_column() -> None:
    assert problems("a = 1\nb = f.__globals__\n") == [
        ("attribute '__globals__' is not available in functions", 2, 5)
    ]


def test_module_views_hide_private_names_and_unlisted_submodules() -> None:
    views = sandbox.ModuleViews(sys.modules)
    random_view = views.view("random")
    assert hasattr(random_view, "randint") and not hasattr(random_view, "_os")
    collections_view = views.view("collections")
    assert hasattr(collections_view, "OrderedDict") and hasattr(collections_view.abc, "Mapping")
    urllib_view = views.view("urllib")
    assert hasattr(urllib_view, "parse") and not hasattr(urllib_view, "request")
    json_view = views.view("json")
    assert hasattr(json_view, "dumps") and not hasattr(json_view, "decoder")


def test_guarded_import_returns_views_and_refuses_the_rest() -> None:
    importer = sandbox.ModuleViews(sys.modules).importer()
    assert importer("urllib.parse").parse.quote("a b") == "a%20b"
    assert importer("urllib.parse", None, None, ("quote",)).quote("a b") == "a%20b"
    for name in ("os", "sys", "importlib", "urllib"):
        with pytest.raises(ImportError):
            importer(name)
    with pytest.raises(ImportError):
        importer("json", None, None, ("decoder",))
    with pytest.raises(ImportError, match="relative"):
        importer("x", None, None, (), 1)


def test_restricted_builtins() -> None:
    names = sandbox.restricted_builtins(sandbox.ModuleViews(sys.modules))
    for removed in ("open", "exec", "eval", "compile", "input", "breakpoint"):
        assert removed not in names
    assert names["len"] is len and "__build_class__" in names
    with pytest.raises(sandbox.SandboxViolation):
        names["getattr"]((), "__class__")
    assert names["getattr"]((), "count")(1) == 0
    assert names["hasattr"](len, "__globals__") is False


# ---- the wire, from the supervisor's side ---------------------------------------------------------


def test_frames_round_trip_and_garbage_is_a_protocol_error() -> None:
    frame = encode_frame({"op": "ping", "id": 3, "text": "é"})
    assert decode_frame(frame[4:]) == {"op": "ping", "id": 3, "text": "é"}
    for payload in (b"not json", b"[1]", b'{"no": "op"}', b"\xff"):
        with pytest.raises(ProtocolError):
            decode_frame(payload)


def result(**fields: Any) -> dict[str, Any]:
    return {"status": 200, "headers": {}, "body": "", "logs": [], **fields}


@pytest.mark.parametrize("status", [99, 600, "200", None, True])
def test_results_with_an_invalid_status_are_refused(status: Any) -> None:
    with pytest.raises(ProtocolError):
        result_from_wire(result(status=status))


def test_result_headers_are_sanitised() -> None:
    parsed = result_from_wire(
        result(
            headers={
                "X-Ok": "fine",
                "x-split": "a\r\nset-cookie: stolen",
                "bad name": "x",
                "x-nul": "a\x00b",
                "x-num": 5,
            }
        )
    )
    assert parsed.headers == {"x-ok": "fine"}


def test_result_logs_and_body_are_bounded_and_typed() -> None:
    logs = [[1.0, "info", "m" * 10_000]] * 2000 + [["not", "a", "log"], "junk"]
    parsed = result_from_wire(result(logs=logs, body=base64.b64encode(b"hi").decode(), error="x" * 100))
    assert len(parsed.logs) == 1000 and len(parsed.logs[0].message) == 8192
    assert parsed.body == b"hi" and parsed.error == "x" * 64
    with pytest.raises(ProtocolError):
        result_from_wire(result(body="not base64!"))


def test_load_errors_say_where() -> None:
    assert (
        str(LoadError("SyntaxError: invalid syntax", 3, 7))
        == "SyntaxError: invalid syntax (line 3, column 7)"
    )
    assert str(LoadError("boom", 2)) == "boom (line 2)"
    assert LoadError.from_wire({"message": "m", "line": "x"}) == LoadError("m")


# ---- imp ------------------------------------------------------------------------------------------


@pytest.fixture
def bridge() -> Any:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake(kind: str, request: dict[str, Any]) -> Any:
        calls.append((kind, request))
        return (
            {"status": 200, "headers": {}, "body": base64.b64encode(b"[1]").decode()}
            if kind == "fetch"
            else 7
        )

    imp_module._bind(fake)
    yield calls
    imp_module._bind(None)


def test_collection_stub_sends_pymongo_shaped_operations(bridge: list[tuple[str, dict[str, Any]]]) -> None:
    users = imp_module.db()["users"]
    assert users.count_documents({"a": 1}) == 7
    users.update_many({"a": 1}, {"$set": {"b": b"\x01"}}, upsert=True)
    users.aggregate([{"$match": {}}])
    assert bridge == [
        ("db", {"collection": "users", "method": "count_documents", "args": [{"a": 1}], "kwargs": {}}),
        (
            "db",
            {
                "collection": "users",
                "method": "update_many",
                "args": [{"a": 1}, {"$set": {"b": {"$binary": "AQ=="}}}],
                "kwargs": {"upsert": True},
            },
        ),
        ("db", {"collection": "users", "method": "aggregate", "args": [[{"$match": {}}]], "kwargs": {}}),
    ]
    with pytest.raises(TypeError, match="JSON values"):
        users.insert_one({"x": object()})


def test_fetch_stub(bridge: list[tuple[str, dict[str, Any]]]) -> None:
    response = imp_module.fetch("https://a.example", body="raw", headers={"X": "1"})
    assert response.json() == [1] and response.ok
    assert bridge[0][1]["body"] == base64.b64encode(b"raw").decode() and bridge[0][1]["headers"] == {"X": "1"}


def test_log_capture_is_bounded() -> None:
    imp_module._begin_capture()
    for i in range(1005):
        imp_module.log.info("line", i)
    logs = imp_module._end_capture()
    assert len(logs) == 1001 and logs[-1][2] == "5 more log lines were dropped"
    assert imp_module._end_capture() == []
