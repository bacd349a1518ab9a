"""The function contract, run inside the worker: bind a request to ``main`` and turn its answer into HTTP.

``contract_of(main)`` reads ``main``'s signature once, at load time. If it is exactly one parameter
named ``req``/``request`` (or annotated ``imp.Request``), ``main`` gets the raw request; otherwise its
parameters are bound from the JSON (or form) body object merged over the query string and converted
by annotation (int, float, str, bool, list[…], dict[…], Literal, Optional/unions, defaults; any other
annotation is passed as given). A missing or mistyped parameter answers 422 ``invalid`` with
``details: [{loc, msg}]``. ``main`` may be sync or async. Its return value becomes the response:
dict/list/number → JSON 200, str → text/plain, bytes → octet-stream, None → 204, ``imp.Response`` as
given; ``imp.HTTPError`` → its status in the API error shape; any other exception → 500 ``internal``,
with the traceback (tenant frames only) appended to the invocation's logs, never to the body.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import http
import inspect
import json
import time
import traceback
import types
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

from runtime_actors.shared.errors import error_json
from runtime_actors.shared.messages import Invocation
from runtime_actors.worker import imp_module, sandbox
from runtime_actors.worker.imp_module import HTTPError, Request, Response

__all__ = [
    "TENANT_FILENAME_PREFIX",
    "Contract",
    "ContractError",
    "Parts",
    "bind",
    "contract_of",
    "execute",
    "respond",
]

TENANT_FILENAME_PREFIX: Final = "<function:"
_REQUEST_NAMES: Final = frozenset({"req", "request"})
_MISSING: Final = inspect.Parameter.empty
_CODE_OF_STATUS: Final = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "invalid",
    409: "conflict", 413: "too_large", 422: "invalid", 429: "rate_limited", 503: "unavailable",
    504: "timeout",
}  # fmt: skip


class ContractError(Exception):
    """``main`` cannot be called under the contract (reported as a load error)."""


class ValidationFailed(Exception):
    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__(details)
        self.details = details


class _Invalid(Exception):
    def __init__(self, loc: list[Any], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any
    positional_only: bool


@dataclass(frozen=True)
class Contract:
    wants_request: bool
    params: tuple[Param, ...]
    accepts_extra: bool


@dataclass(frozen=True)
class Parts:
    status: int
    headers: dict[str, str]
    body: bytes
    error: str | None = None

    def payload(self, logs: list[list[Any]], duration_ms: float = 0.0) -> dict[str, Any]:
        """The wire protocol's ``result`` (body still raw bytes)."""
        return {
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
            "logs": logs,
            "error": self.error,
            "duration_ms": duration_ms,
        }


def _resolve(annotation: Any, globals_: Mapping[str, Any]) -> Any:
    if isinstance(annotation, str):
        try:
            return eval(annotation, dict(globals_))  # noqa: S307 - tenant annotation, evaluated in its jail
        except Exception as exc:
            raise ContractError(f"cannot evaluate the annotation {annotation!r}: {exc}") from exc
    return annotation


def contract_of(main: Callable[..., Any]) -> Contract:
    if not inspect.isfunction(main):
        raise ContractError("'main' must be a function (def or async def)")
    signature = inspect.signature(main)
    globals_: Mapping[str, Any] = main.__globals__
    params: list[Param] = []
    accepts_extra = False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            accepts_extra = True
        elif p.kind is not p.VAR_POSITIONAL:
            annotation = _resolve(p.annotation, globals_)
            params.append(Param(p.name, annotation, p.default, p.kind is p.POSITIONAL_ONLY))
    wants_request = len(signature.parameters) == 1 and bool(params)
    wants_request = wants_request and (params[0].name in _REQUEST_NAMES or params[0].annotation is Request)
    return Contract(wants_request, tuple(params), accepts_extra)


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def _scalar(value: Any, annotation: type, loc: list[Any]) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _Invalid(loc, "expected a boolean")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _Invalid(loc, "expected an integer")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _Invalid(loc, "expected a number")
    if isinstance(value, str):  # annotation is str
        return value
    raise _Invalid(loc, "expected a string")


def convert(value: Any, annotation: Any, loc: list[Any]) -> Any:
    """``value`` (JSON, or query strings) as ``annotation`` asks, or ``_Invalid``."""
    if annotation is _MISSING or annotation is Any or annotation is object:
        return value
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise _Invalid(loc, "expected null")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for alternative in (a for a in args if a is not type(None)):
            try:
                return convert(value, alternative, loc)
            except _Invalid:
                continue
        raise _Invalid(loc, f"expected {_describe(annotation)}")
    if origin is typing.Literal:
        for option in args:
            if value == option or (
                isinstance(value, str) and not isinstance(option, str) and value == str(option)
            ):
                return option
        raise _Invalid(loc, f"expected one of {', '.join(repr(a) for a in args)}")
    if annotation in (bool, int, float, str):
        return _scalar(value, annotation, loc)
    container = origin or annotation
    if container in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            raise _Invalid(loc, "expected a list")
        item = args[0] if args and container is not tuple else Any
        if container is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
        return container(convert(v, item, [*loc, i]) for i, v in enumerate(value))
    if container is dict:
        if not isinstance(value, dict):
            raise _Invalid(loc, "expected an object")
        item = args[1] if len(args) == 2 else Any
        return {k: convert(v, item, [*loc, k]) for k, v in value.items()}
    return value


def _wants_list(annotation: Any) -> bool:
    container = typing.get_origin(annotation) or annotation
    if container is typing.Union or container is types.UnionType:
        return any(_wants_list(a) for a in typing.get_args(annotation))
    return container in (list, tuple, set, frozenset)


def _body_fields(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(request.text, keep_blank_values=True)
        return {k: v if len(v) > 1 else v[0] for k, v in form.items()}
    try:
        parsed = json.loads(request.body)
    except ValueError as exc:
        raise ValidationFailed([{"loc": ["body"], "msg": f"invalid JSON: {exc}"}]) from exc
    if not isinstance(parsed, dict):
        raise ValidationFailed([{"loc": ["body"], "msg": "expected a JSON object of parameters"}])
    return parsed


def bind(contract: Contract, request: Request) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``main``, or ``ValidationFailed`` with every problem."""
    if contract.wants_request:
        return [request], {}
    fields: dict[str, Any] = {}
    for name, values in request.query_lists.items():
        fields[name] = values
    body = _body_fields(request)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    details: list[dict[str, Any]] = []
    for param in contract.params:
        if param.name in body:
            raw = body[param.name]
        elif param.name in fields:
            values = fields[param.name]
            raw = values if _wants_list(param.annotation) else values[0]
        elif param.default is not _MISSING:
            continue
        else:
            details.append({"loc": [param.name], "msg": "field required"})
            continue
        try:
            value = convert(raw, param.annotation, [param.name])
        except _Invalid as exc:
            details.append({"loc": exc.loc, "msg": exc.msg})
            continue
        if param.positional_only:
            args.append(value)
        else:
            kwargs[param.name] = value
    if details:
        raise ValidationFailed(details)
    if contract.accepts_extra:
        known = {p.name for p in contract.params}
        extra = {**{k: v[0] for k, v in fields.items()}, **body}
        kwargs.update({k: v for k, v in extra.items() if k not in known})
    return args, kwargs


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _json_parts(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Parts:
    body = json.dumps(value, ensure_ascii=False, default=_json_default).encode()
    merged = {"content-type": "application/json", **{k.lower(): str(v) for k, v in (headers or {}).items()}}
    return Parts(status, merged, body)


def error_parts(status: int, code: str, message: str, details: Any = None) -> Parts:
    body = error_json(code, message, details=details)
    return Parts(status, {"content-type": "application/json"}, body, code)


def respond(value: Any) -> Parts:
    """HTTP parts for ``main``'s return value (``TypeError`` for what cannot be sent)."""
    if isinstance(value, Response):
        if not 100 <= value.status <= 599:
            raise TypeError(f"imp.Response has an invalid status {value.status}")
        headers = {str(k).lower(): str(v) for k, v in value.headers.items()}
        if value.body is None:
            return Parts(value.status, headers, b"")
        if isinstance(value.body, bytes | bytearray | memoryview | str):
            inner = respond(value.body)
            return Parts(value.status, {**inner.headers, **headers}, inner.body)
        return _json_parts(value.body, value.status, headers)
    if value is None:
        return Parts(204, {}, b"")
    if isinstance(value, str):
        return Parts(200, {"content-type": "text/plain; charset=utf-8"}, value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        return Parts(200, {"content-type": "application/octet-stream"}, bytes(value))
    if isinstance(value, dict | list | tuple | int | float | bool):
        return _json_parts(value)
    raise TypeError(f"main returned a {type(value).__name__}, which is not a response")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _http_error_parts(exc: HTTPError) -> Parts:
    status = exc.status if 400 <= exc.status <= 599 else 500
    code = exc.code or _CODE_OF_STATUS.get(status) or ("internal" if status >= 500 else "invalid")
    if isinstance(exc.detail, str):
        message, details = exc.detail, None
    else:
        message, details = _phrase(status), exc.detail
    parts = error_parts(status, code, message, details)
    return Parts(
        status, {**parts.headers, **{k.lower(): str(v) for k, v in exc.headers.items()}}, parts.body, code
    )


def tenant_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` limited to tenant frames (worker internals are not the tenant's business)."""
    with sandbox.trusted():  # reads tb_frame/f_code; no tenant code runs in here
        frames = [
            (frame, line)
            for frame, line in traceback.walk_tb(exc.__traceback__)
            if frame.f_code.co_filename.startswith(TENANT_FILENAME_PREFIX)
        ]
        stack = "".join(traceback.StackSummary.extract(frames).format())
    return (
        "Traceback (most recent call last):\n"
        + stack
        + "".join(traceback.format_exception_only(exc)).rstrip()
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _call_main(
    main: Callable[..., Any], contract: Contract, request: Request, loop: asyncio.AbstractEventLoop
) -> Parts:
    try:
        args, kwargs = bind(contract, request)
    except ValidationFailed as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in exc.details[:5])
        return error_parts(422, "invalid", f"the request is invalid: {where}", exc.details)
    value = main(*args, **kwargs)
    if inspect.isawaitable(value):
        value = loop.run_until_complete(_await(value))
    return respond(value)


def execute(
    main: Callable[..., Any], contract: Contract, invocation: Invocation, loop: asyncio.AbstractEventLoop
) -> dict[str, Any]:
    """Run one invocation; the ``result`` payload of the wire protocol (body still raw bytes)."""
    imp_module._begin_capture()
    started = time.perf_counter()
    request = Request(
        invocation.method,
        invocation.path,
        invocation.query,
        invocation.headers,
        invocation.body,
        invocation.request_id,
    )
    try:
        parts = _call_main(main, contract, request, loop)
    except HTTPError as exc:
        parts = _http_error_parts(exc)
    except BaseException as exc:
        imp_module._emit("error", tenant_traceback(exc))
        parts = error_parts(
            500,
            "internal",
            f"The function raised {type(exc).__name__}; see the logs of request {invocation.request_id}.",
        )
    return parts.payload(imp_module._end_capture(), (time.perf_counter() - started) * 1000)
