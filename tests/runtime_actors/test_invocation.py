"""The function contract without a worker: how ``main``'s signature binds a request, and how its
return value (or exception) becomes an HTTP response."""

from __future__ import annotations

import asyncio
import datetime
import json
import typing
from collections.abc import Callable
from typing import Any, Literal, Optional

import pytest

from runtime_actors.shared.messages import Invocation
from runtime_actors.worker.imp_module import HTTPError, Request, Response
from runtime_actors.worker.invocation import (
    ContractError,
    ValidationFailed,
    bind,
    contract_of,
    execute,
    respond,
)


def request(
    body: Any = None, query: dict[str, list[str]] | None = None, content_type: str = "application/json"
) -> Request:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    return Request("POST", "/x", query or {}, {"content-type": content_type}, raw)


def bound(main: Callable[..., Any], req: Request) -> dict[str, Any]:
    args, kwargs = bind(contract_of(main), req)
    assert args == []
    return kwargs


def details(main: Callable[..., Any], req: Request) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as failure:
        bind(contract_of(main), req)
    return failure.value.details


# ---- which mode -------------------------------------------------------------------------------------


def test_a_single_req_or_request_parameter_gets_the_request() -> None:
    def by_name(req: Any) -> None: ...
    def by_other_name(request: Any) -> None: ...
    def by_annotation(r: Request) -> None: ...
    def typed(income: float) -> None: ...
    def two(req: Any, x: int) -> None: ...

    assert contract_of(by_name).wants_request
    assert contract_of(by_other_name).wants_request
    assert contract_of(by_annotation).wants_request
    assert not contract_of(typed).wants_request
    assert not contract_of(two).wants_request
    incoming = request({"a": 1})
    assert bind(contract_of(by_name), incoming) == ([incoming], {})


def test_string_annotations_are_resolved_in_the_function_module() -> None:
    namespace: dict[str, Any] = {}
    exec("from __future__ import annotations\ndef main(n: int, tags: list[str]): pass\n", namespace)  # noqa: S102
    assert bound(namespace["main"], request({"n": "3", "tags": ["a"]})) == {"n": 3, "tags": ["a"]}


def test_main_must_be_a_function() -> None:
    # `len`, not `print`: a connected Ray driver may wrap builtins.print in a Python function.
    with pytest.raises(ContractError):
        contract_of(len)


# ---- binding --------------------------------------------------------------------------------------


def test_the_body_wins_over_the_query_and_defaults_fill_the_rest() -> None:
    def main(a: int, b: str = "dflt", c: float = 1.5) -> None: ...

    assert bound(main, request({"a": 1}, {"a": ["2"], "b": ["from-query"]})) == {"a": 1, "b": "from-query"}


def test_query_strings_are_converted_by_annotation() -> None:
    def main(n: int, x: float, on: bool, ids: list[int], name: str) -> None: ...

    got = bound(
        main, request(None, {"n": ["7"], "x": ["0.5"], "on": ["yes"], "ids": ["1", "2"], "name": ["z"]})
    )
    assert got == {"n": 7, "x": 0.5, "on": True, "ids": [1, 2], "name": "z"}


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (int, 3, 3),
        (int, 3.0, 3),
        (int, "42", 42),
        (float, 2, 2.0),
        (bool, False, False),
        (bool, "off", False),
        (bool, 1, True),
        (str, "s", "s"),
        (list[int], [1, "2"], [1, 2]),
        (dict[str, int], {"a": "1"}, {"a": 1}),
        (Optional[int], None, None),  # noqa: UP045 - the spelling tenants use
        (int | None, "5", 5),
        (Literal["a", "b"], "b", "b"),
        (Literal[1, 2], "2", 2),
        (tuple[int, ...], [1, 2], (1, 2)),
        (Any, {"x": [1]}, {"x": [1]}),
        (datetime.date, "2024-01-01", "2024-01-01"),  # other annotations get the JSON value as is
    ],
)
def test_conversions(annotation: Any, value: Any, expected: Any) -> None:
    def main(v):  # type: ignore[no-untyped-def]
        return v

    main.__annotations__ = {"v": annotation}
    assert bound(main, request({"v": value})) == {"v": expected}


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        (int, "x", "expected an integer"),
        (int, True, "expected an integer"),
        (int, 1.5, "expected an integer"),
        (float, "nan-ish", "expected a number"),
        (str, 5, "expected a string"),
        (bool, "maybe", "expected a boolean"),
        (list[int], "1,2", "expected a list"),
        (dict[str, int], [1], "expected an object"),
        (Literal["a", "b"], "c", "expected one of 'a', 'b'"),
        (int | None, "x", "expected int | None"),
    ],
)
def test_wrong_types_are_reported_with_their_location(annotation: Any, value: Any, message: str) -> None:
    def main(v):  # type: ignore[no-untyped-def]
        return v

    main.__annotations__ = {"v": annotation}
    assert details(main, request({"v": value})) == [{"loc": ["v"], "msg": message}]


def test_nested_locations_point_at_the_bad_item() -> None:
    def main(ids: list[int], scores: dict[str, float]) -> None: ...

    assert details(main, request({"ids": [1, "two"], "scores": {"a": "x"}})) == [
        {"loc": ["ids", 1], "msg": "expected an integer"},
        {"loc": ["scores", "a"], "msg": "expected a number"},
    ]


def test_every_missing_parameter_is_reported() -> None:
    def main(a: int, b: str, c: int = 0) -> None: ...

    assert details(main, request({})) == [
        {"loc": ["a"], "msg": "field required"},
        {"loc": ["b"], "msg": "field required"},
    ]


def test_a_body_that_is_not_an_object_is_invalid() -> None:
    def main(a: int) -> None: ...

    assert details(main, request([1, 2])) == [
        {"loc": ["body"], "msg": "expected a JSON object of parameters"}
    ]
    assert details(main, request(b"{nope"))[0]["loc"] == ["body"]


def test_form_bodies_bind_like_json() -> None:
    def main(a: int, b: list[str]) -> None: ...

    req = request(b"a=1&b=x&b=y", content_type="application/x-www-form-urlencoded")
    assert bound(main, req) == {"a": 1, "b": ["x", "y"]}


def test_var_keyword_collects_the_other_fields() -> None:
    def main(a: int, **rest: Any) -> None: ...

    assert bound(main, request({"a": 1, "b": 2}, {"c": ["3"]})) == {"a": 1, "b": 2, "c": "3"}


def test_positional_only_parameters_are_passed_by_position() -> None:
    def main(a: int, /, b: int) -> None: ...

    assert bind(contract_of(main), request({"a": 1, "b": 2})) == ([1], {"b": 2})


# ---- responses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "headers", "body"),
    [
        ({"a": 1}, 200, {"content-type": "application/json"}, b'{"a": 1}'),
        ([1, "é"], 200, {"content-type": "application/json"}, '[1, "é"]'.encode()),
        (3, 200, {"content-type": "application/json"}, b"3"),
        ("hi", 200, {"content-type": "text/plain; charset=utf-8"}, b"hi"),
        (b"\x00", 200, {"content-type": "application/octet-stream"}, b"\x00"),
        (None, 204, {}, b""),
        ({"when": datetime.date(2024, 5, 6)}, 200, {"content-type": "application/json"}, b'{"when": "2024-05-06"}'),
        (Response("made", status=201, headers={"X-A": "b"}), 201, {"content-type": "text/plain; charset=utf-8", "x-a": "b"}, b"made"),
        (Response({"k": 1}, status=202), 202, {"content-type": "application/json"}, b'{"k": 1}'),
        (Response(None, status=304), 304, {}, b""),
        (Response(b"<p>", headers={"content-type": "text/html"}), 200, {"content-type": "text/html"}, b"<p>"),
    ],
)  # fmt: skip
def test_return_values(value: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    parts = respond(value)
    assert (parts.status, parts.headers, parts.body, parts.error) == (status, headers, body, None)


def test_an_unsupported_return_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a response"):
        respond(object())


def invoke(main: Callable[..., Any], body: Any = None) -> dict[str, Any]:
    invocation = Invocation(
        "POST", "", {}, {}, json.dumps(body).encode() if body is not None else b"", "r-9", "fn"
    )
    loop = asyncio.new_event_loop()
    try:
        return execute(main, contract_of(main), invocation, loop)
    finally:
        loop.close()


def test_http_error_becomes_the_error_shape() -> None:
    def main() -> None:
        raise HTTPError(409, "taken", headers={"Retry-After": "3"})

    result = invoke(main)
    assert (result["status"], result["error"], result["headers"]["retry-after"]) == (409, "conflict", "3")
    assert json.loads(result["body"]) == {"error": {"code": "conflict", "message": "taken"}}


def test_http_error_with_structured_detail_keeps_it_as_details() -> None:
    def main() -> None:
        raise HTTPError(400, {"field": "email"}, code="invalid_email")

    result = invoke(main)
    assert json.loads(result["body"]) == {
        "error": {"code": "invalid_email", "message": "Bad Request", "details": {"field": "email"}}
    }


def test_an_exception_is_500_internal_with_the_traceback_in_the_logs() -> None:
    def main() -> None:
        raise KeyError("missing")

    result = invoke(main)
    assert (result["status"], result["error"]) == (500, "internal")
    assert (
        json.loads(result["body"])["error"]["message"]
        == "The function raised KeyError; see the logs of request r-9."
    )
    assert result["logs"][-1][1] == "error" and "KeyError: 'missing'" in result["logs"][-1][2]


def test_system_exit_does_not_stop_the_worker() -> None:
    def main() -> None:
        raise SystemExit(3)

    assert invoke(main)["status"] == 500


def test_async_main_and_validation_errors_through_execute() -> None:
    async def main(n: int) -> dict[str, int]:
        return {"n": n}

    assert json.loads(invoke(main, {"n": "4"})["body"]) == {"n": 4}
    invalid = invoke(main, {"n": "four"})
    assert invalid["status"] == 422 and json.loads(invalid["body"])["error"]["details"] == [
        {"loc": ["n"], "msg": "expected an integer"}
    ]


def test_typing_helpers_are_understood() -> None:
    def main(a: typing.List[int], b: typing.Dict[str, str]) -> None: ...  # noqa: UP006

    assert bound(main, request({"a": ["1"], "b": {"k": "v"}})) == {"a": [1], "b": {"k": "v"}}
