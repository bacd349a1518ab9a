"""``imp``, the platform SDK as tenant code sees it inside the jailed worker.

The worker installs this module as ``sys.modules["imp"]`` (replacing the standard library's deprecated
``imp``) and injects it into every function's globals. Nothing here touches a database or the
network: ``imp.db()`` is a stub whose collection methods send ``{collection, method, args, kwargs}``
to the supervisor and return its JSON answer; ``imp.fetch`` sends the request the same way; both go
through the bridge the worker binds with ``_bind``. ``imp.log`` (and ``print``) append to the current
invocation's log capture. ``imp.env`` is a read-only view the supervisor fills with each ``load``.
``Response``, ``HTTPError`` and ``Request`` are the types of the function contract (``invocation``).
"""

from __future__ import annotations

import base64
import datetime as _datetime
import json as _json
import time as _time
import types as _types
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "DBError",
    "FetchError",
    "FetchResponse",
    "HTTPError",
    "Request",
    "Response",
    "db",
    "env",
    "fetch",
    "log",
]

Bridge = Callable[[str, dict[str, Any]], Any]
"""``bridge(kind, request) -> value``: one round trip to the supervisor (``kind`` is db or fetch)."""

_MAX_LOG_ENTRIES: Final = 1000
_MAX_LOG_MESSAGE: Final = 8192


class _State:
    bridge: Bridge | None = None
    env: dict[str, str] = {}
    logs: list[list[Any]] = []
    dropped: int = 0


def _bind(bridge: Bridge | None) -> None:
    _State.bridge = bridge


def _set_env(values: Mapping[str, str]) -> None:
    _State.env.clear()
    _State.env.update({str(k): str(v) for k, v in values.items()})


def _begin_capture() -> None:
    _State.logs = []
    _State.dropped = 0


def _end_capture() -> list[list[Any]]:
    _STDOUT.flush()
    _STDERR.flush()
    logs = _State.logs
    if _State.dropped:
        logs.append([_time.time(), "warning", f"{_State.dropped} more log lines were dropped"])
    _State.logs = []
    _State.dropped = 0
    return logs


def _emit(level: str, message: str) -> None:
    if len(_State.logs) >= _MAX_LOG_ENTRIES:
        _State.dropped += 1
        return
    if len(message) > _MAX_LOG_MESSAGE:
        message = message[:_MAX_LOG_MESSAGE] + "…"
    _State.logs.append([_time.time(), level, message])


def _call(kind: str, request: dict[str, Any]) -> Any:
    if _State.bridge is None:
        raise RuntimeError("imp is not connected to a supervisor")
    return _State.bridge(kind, request)


class _Log:
    """``imp.log(*args)`` logs at info; ``imp.log.debug/info/warning/error`` pick the level."""

    def __call__(self, *args: Any) -> None:
        _emit("info", " ".join(str(a) for a in args))

    def debug(self, *args: Any) -> None:
        _emit("debug", " ".join(str(a) for a in args))

    def info(self, *args: Any) -> None:
        _emit("info", " ".join(str(a) for a in args))

    def warning(self, *args: Any) -> None:
        _emit("warning", " ".join(str(a) for a in args))

    def error(self, *args: Any) -> None:
        _emit("error", " ".join(str(a) for a in args))


log = _Log()


class _PrintCapture:
    """``sys.stdout``/``sys.stderr`` inside the worker: each printed line becomes a log entry."""

    def __init__(self, level: str) -> None:
        self._level = level
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + str(text)).split("\n")
        self._partial = lines.pop()
        for line in lines:
            _emit(self._level, line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            _emit(self._level, self._partial)
            self._partial = ""


_STDOUT: Final = _PrintCapture("info")
_STDERR: Final = _PrintCapture("error")


class HTTPError(Exception):
    """Raise to answer with ``status``; ``detail`` (text, or JSON details) says why."""

    def __init__(
        self,
        status: int,
        detail: Any = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail)
        self.status = int(status)
        self.detail = detail
        self.code = code
        self.headers = dict(headers or {})


class Response:
    """A response with its own status and headers; ``body`` may be bytes, str, dict/list (JSON) or None."""

    def __init__(self, body: Any = None, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.status = int(status)
        self.headers = dict(headers or {})


class Request:
    """The raw HTTP request given to ``main(req)``; ``query`` has each name's first value."""

    __slots__ = ("body", "headers", "method", "path", "query", "query_lists", "request_id")

    def __init__(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        request_id: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query_lists = {k: list(v) for k, v in query.items()}
        self.query = {k: v[0] for k, v in query.items() if v}
        self.headers = dict(headers)
        self.body = body
        self.request_id = request_id

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body) if self.body else None


class DBError(Exception):
    """A database operation was refused or failed; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FetchError(Exception):
    """An outbound request was refused by the egress policy or failed."""


def _jsonable(value: Any) -> Any:
    """Arguments of ``imp.db()`` calls as JSON: dates become ``{"$date": iso}``, bytes ``{"$binary"}``."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, _datetime.datetime | _datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"imp.db() takes JSON values; {type(value).__name__} is not one")


class Collection:
    """A collection handle with pymongo's method names; every result is plain JSON."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("a collection name is a non-empty string")
        self.name = name

    def _op(self, method: str, *args: Any, **kwargs: Any) -> Any:
        request = {
            "collection": self.name,
            "method": method,
            "args": _jsonable(args),
            "kwargs": _jsonable(kwargs),
        }
        return _call("db", request)

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | list[str] | None = None,
        *,
        sort: list[tuple[str, int]] | list[list[Any]] | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"limit": limit, "skip": skip}
        if sort is not None:
            kwargs["sort"] = sort
        result: list[dict[str, Any]] = self._op("find", filter or {}, projection, **kwargs)
        return result

    def find_one(self, filter: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        return self._op("find_one", filter or {}, *args, **kwargs)

    def insert_one(self, document: Mapping[str, Any]) -> Any:
        return self._op("insert_one", document)

    def insert_many(self, documents: list[Mapping[str, Any]]) -> Any:
        return self._op("insert_many", list(documents))

    def update_one(self, filter: Mapping[str, Any], update: Any, **kwargs: Any) -> Any:
        return self._op("update_one", filter, update, **kwargs)

    def update_many(self, filter: Mapping[str, Any], update: Any, **kwargs: Any) -> Any:
        return self._op("update_many", filter, update, **kwargs)

    def delete_one(self, filter: Mapping[str, Any]) -> Any:
        return self._op("delete_one", filter)

    def delete_many(self, filter: Mapping[str, Any]) -> Any:
        return self._op("delete_many", filter)

    def count_documents(self, filter: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._op("count_documents", filter or {}, **kwargs)

    def aggregate(self, pipeline: list[Mapping[str, Any]], **kwargs: Any) -> Any:
        return self._op("aggregate", list(pipeline), **kwargs)


class Database:
    """``imp.db()``: ``.collection(name)`` or ``[name]`` give a ``Collection``."""

    def collection(self, name: str) -> Collection:
        return Collection(name)

    def __getitem__(self, name: str) -> Collection:
        return Collection(name)


_DATABASE: Final = Database()


def db() -> Database:
    return _DATABASE


class FetchResponse:
    def __init__(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.content = content

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.content)


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    json: Any = None,
    timeout: float | None = None,
) -> FetchResponse:
    """An outbound HTTP request, made by the supervisor under the environment's egress policy."""
    sent_headers = {str(k): str(v) for k, v in (headers or {}).items()}
    if json is not None:
        payload = _json.dumps(json).encode()
        sent_headers.setdefault("content-type", "application/json")
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = bytes(body or b"")
    request = {
        "url": str(url),
        "method": str(method).upper(),
        "headers": sent_headers,
        "body": base64.b64encode(payload).decode("ascii"),
        "timeout": timeout,
    }
    answer = _call("fetch", request)
    if not isinstance(answer, dict):
        raise FetchError("the supervisor answered fetch with something that is not a response")
    content = base64.b64decode(answer.get("body") or "")
    return FetchResponse(int(answer.get("status", 0)), answer.get("headers") or {}, content)


env: Final = _types.MappingProxyType(_State.env)
