"""The API's error shape and request-id rule, for every process of the data plane.

An error body is ``{"error": {"code", "message", "details"?, "requestId"?}}`` (API.md); ``code`` is one
of ``ERROR_STATUS`` and decides the HTTP status. ``error_body`` builds it — the replica, the jailed
worker, the pool and the AI gateway all answer with it. A request id is the caller's ``x-request-id``
when it is a sane token, else a fresh one (``request_id_of``); it travels with the call into logs and
into the ``requestId`` of a 5xx. Standard library only: the jailed worker imports this module.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ERROR_STATUS",
    "REQUEST_ID_HEADER",
    "code_of_status",
    "error_body",
    "error_json",
    "request_id_of",
]

REQUEST_ID_HEADER: Final = "x-request-id"
ERROR_STATUS: Final = {
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "timeout": 504,
    "unavailable": 503,
    "internal": 500,
}
"""Each error code and the HTTP status it is answered with."""
_CODE_OF_STATUS: Final = {status: code for code, status in ERROR_STATUS.items()}
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def code_of_status(status: int, default: str = "internal") -> str:
    """The error code a status stands for (``default`` when no code maps to it)."""
    return _CODE_OF_STATUS.get(status, default)


def error_body(
    code: str, message: str, *, details: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    """``{"error": {code, message, details?, requestId?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    if request_id is not None:
        error["requestId"] = request_id
    return {"error": error}


def error_json(code: str, message: str, *, details: Any = None, request_id: str | None = None) -> bytes:
    """``error_body`` encoded as JSON bytes (what a response or a worker result carries)."""
    return json.dumps(error_body(code, message, details=details, request_id=request_id)).encode()


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when it is a sane token, else a fresh one."""
    given = headers.get(REQUEST_ID_HEADER)
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex
