"""The one place where exceptions become HTTP responses in the error shape of docs/api.md.

``{"error": {"code", "message", "details"?, "requestId"?}}`` — domain errors map by their class,
request-validation failures become 422 ``invalid`` with the field path of each problem, Starlette's
404/405 keep their status in the same shape, and anything unexpected becomes 500 ``internal`` with
the request id (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from imprun.errors import ImprunError
from imprun.observability.logs import request_id_var
from runtime_actors.shared.errors import code_of_status
from runtime_actors.shared.errors import error_body as shared_error_body

log = logging.getLogger(__name__)


def error_body(code: str, message: str, *, details: Any = None, status: int = 500) -> dict[str, Any]:
    """The shared envelope, with this request's id when the error is the server's (5xx)."""
    request_id = request_id_var.get() if status >= 500 else None
    return shared_error_body(code, message, details=details, request_id=request_id or None)


def error_response(
    status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details=details, status=status), status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImprunError)
    if exc.status >= 500:
        log.warning("request failed: %s: %s", exc.code, exc.message, exc_info=exc.__cause__ or exc)
    return error_response(
        exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers() or None
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    where = ", ".join(".".join(str(p) for p in d["loc"]) + f": {d['msg']}" for d in details[:5])
    return error_response(422, "invalid", f"the request is invalid: {where}", details=details)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = code_of_status(exc.status_code, "internal" if exc.status_code >= 500 else "invalid")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}; see /docs for the routes"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; quote the requestId when reporting it")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ImprunError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
