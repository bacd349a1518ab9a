"""The messages between the supervisor and a jailed worker: length-prefixed JSON frames on one socket.

A frame is a 4-byte big-endian length and a UTF-8 JSON object with an ``op``. JSON, not pickle, in
both directions: the worker is untrusted, and unpickling its bytes would hand it the supervisor.
Bytes travel base64-encoded. The supervisor decodes every worker frame as hostile (size cap, shape
checks, status range, header sanitising in ``result_from_wire``).

    supervisor → worker                        worker → supervisor
    load {functions, unload, env}          →   loaded {errors: {name: {message, line, column}}}
    invoke {function, invocation}          →   result {result}
    debug {code, invocation}               →   result {result}
    ping                                   →   pong
    reply {ok, value | error}              ←   db {request} / fetch {request}   (during any call)
                                               hello {pid, jail} once at start, or refused {reason}

Every request carries an ``id`` that its answer (``loaded``/``result``/``pong``/``error``) echoes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from runtime_actors.shared.messages import Invocation, InvocationResult, LogEntry, PublishedFunction

__all__ = [
    "FunctionSource",
    "LoadError",
    "ProtocolError",
    "SyncChannel",
    "decode_frame",
    "encode_frame",
    "invocation_from_wire",
    "invocation_to_wire",
    "result_from_wire",
]

HEADER: Final = struct.Struct(">I")
MAX_WORKER_FRAME: Final = 32 * 1024 * 1024
"""The largest frame the supervisor accepts from a worker (a response body plus its logs)."""
MAX_LOG_ENTRIES: Final = 1000
MAX_LOG_MESSAGE: Final = 8192
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_FORBIDDEN_IN_VALUE: Final = re.compile(r"[\r\n\x00]")


class ProtocolError(Exception):
    """A frame that is not what the protocol allows (treated as a broken worker)."""


@dataclass(frozen=True)
class FunctionSource:
    name: str
    code: str
    version: int
    hash: str

    @classmethod
    def of(cls, function: PublishedFunction | FunctionSource | Mapping[str, Any]) -> FunctionSource:
        if isinstance(function, FunctionSource):
            return function
        if isinstance(function, PublishedFunction):
            return cls(function.name, function.code, function.version, function.hash)
        return cls(
            str(function["name"]), str(function["code"]), int(function["version"]), str(function["hash"])
        )

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "code": self.code, "version": self.version, "hash": self.hash}


@dataclass(frozen=True)
class LoadError:
    """Why a function's code did not load; ``line``/``column`` are 1-based when known."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
        return f"{self.message} ({where})"

    def to_wire(self) -> dict[str, Any]:
        return {"message": self.message, "line": self.line, "column": self.column}

    @classmethod
    def from_wire(cls, raw: Any) -> LoadError:
        if not isinstance(raw, dict):
            return cls(str(raw)[:2000])
        line, column = raw.get("line"), raw.get("column")
        return cls(
            str(raw.get("message", "the function failed to load"))[:2000],
            line if isinstance(line, int) else None,
            column if isinstance(column, int) else None,
        )


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))  # ASCII: a lone surrogate cannot break a frame
_DECODER: Final = json.JSONDecoder()
# One of each, made once: ``json.dumps`` with any option builds a new encoder per call, and
# ``json.loads`` of bytes guesses their encoding first (a frame is UTF-8 by definition).


def encode_frame(message: Mapping[str, Any]) -> bytes:
    payload = _ENCODER.encode(message).encode()
    return HEADER.pack(len(payload)) + payload


def decode_frame(payload: bytes) -> dict[str, Any]:
    try:
        message = _DECODER.decode(payload.decode())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"a frame is not JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("a frame is not an object with an 'op'")
    return message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ProtocolError(f"bad base64: {exc}") from exc


def invocation_to_wire(invocation: Invocation) -> dict[str, Any]:
    return {
        "method": invocation.method,
        "path": invocation.path,
        "query": invocation.query,
        "headers": invocation.headers,
        "body": b64(invocation.body),
        "request_id": invocation.request_id,
        "function": invocation.function,
    }


def invocation_from_wire(raw: dict[str, Any]) -> Invocation:
    return Invocation(
        method=str(raw["method"]),
        path=str(raw["path"]),
        query={str(k): [str(v) for v in vs] for k, vs in dict(raw["query"]).items()},
        headers={str(k): str(v) for k, v in dict(raw["headers"]).items()},
        body=unb64(raw["body"]),
        request_id=str(raw["request_id"]),
        function=str(raw["function"]),
    )


def result_from_wire(raw: Any) -> InvocationResult:
    """An ``InvocationResult`` from a worker's (untrusted) ``result`` payload."""
    if not isinstance(raw, dict):
        raise ProtocolError("a result is not an object")
    status = raw.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ProtocolError(f"a result has an invalid status {status!r}")
    headers: dict[str, str] = {}
    raw_headers = raw.get("headers")
    if isinstance(raw_headers, dict):
        for name, value in list(raw_headers.items())[:100]:
            if (
                isinstance(name, str)
                and isinstance(value, str)
                and _HEADER_NAME.fullmatch(name)
                and not _FORBIDDEN_IN_VALUE.search(value)
            ):
                headers[name.lower()] = value[:8192]
    logs: list[LogEntry] = []
    raw_logs = raw.get("logs")
    if isinstance(raw_logs, list):
        for entry in raw_logs[:MAX_LOG_ENTRIES]:
            if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], int | float):
                logs.append(LogEntry(float(entry[0]), str(entry[1])[:16], str(entry[2])[:MAX_LOG_MESSAGE]))
    error = raw.get("error")
    return InvocationResult(
        status=status,
        headers=headers,
        body=unb64(raw.get("body", "")),
        logs=tuple(logs),
        error=str(error)[:64] if error is not None else None,
    )


class SyncChannel:
    """The worker's end: blocking frame I/O on the inherited socket descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()

    def send(self, message: Mapping[str, Any]) -> None:
        view = memoryview(encode_frame(message))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _fill(self, size: int) -> None:
        """Read until the buffer holds ``size`` bytes (one read for a whole small frame)."""
        while len(self._buffer) < size:
            chunk = os.read(self._fd, min(max(size - len(self._buffer), 1 << 16), 1 << 20))
            if not chunk:
                raise EOFError("the supervisor closed the pipe")
            self._buffer += chunk

    def receive(self) -> dict[str, Any]:
        self._fill(HEADER.size)
        (size,) = HEADER.unpack_from(self._buffer)
        end = HEADER.size + size
        self._fill(end)
        payload = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return decode_frame(payload)
