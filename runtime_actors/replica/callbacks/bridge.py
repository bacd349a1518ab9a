"""The supervisor's side of ``imp.db()`` and ``imp.fetch``: a worker's callback frames, answered.

A worker in the middle of a call sends ``db {request}`` or ``fetch {request}``; ``Callbacks`` hands
the request to the executor the pool was given and turns its answer into a ``reply`` frame.
``db_executor(op)`` gets ``{collection, method, args, kwargs}`` and returns ``{"result": value}`` or
``{"error": {"code", "message"}}``; ``fetch_executor(request)`` gets ``{url, method, headers, body:
bytes, timeout}`` and returns ``{status, headers, body: bytes}`` or ``{"error": …}``. Either may be
``async``; a plain function runs in the default thread pool so a blocking driver never stalls the
replica's event loop. An executor that raises is reported to tenant code by exception class only
(its message may carry connection details) and logged here in full.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from runtime_actors.shared.errors import error_body
from runtime_actors.shared.frames import ProtocolError, b64, unb64

__all__ = ["Callbacks", "Executor"]

logger = logging.getLogger(__name__)

Executor = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


def _reply_error(code: str, message: str) -> dict[str, Any]:
    return {"op": "reply", "ok": False, **error_body(code, message)}


class Callbacks:
    def __init__(self, db_executor: Executor | None, fetch_executor: Executor | None) -> None:
        self._executors = {"db": db_executor, "fetch": fetch_executor}

    async def __call__(self, kind: str, request: Any) -> dict[str, Any]:
        executor = self._executors.get(kind)
        if executor is None:
            return _reply_error("unavailable", f"imp.{kind} is not available in this environment")
        if not isinstance(request, dict):
            return _reply_error("invalid", f"a {kind} request must be an object")
        if kind == "fetch":
            try:
                request = {**request, "body": unb64(request.get("body", ""))}
            except ProtocolError as exc:
                return _reply_error("invalid", str(exc))
        try:
            if inspect.iscoroutinefunction(executor):
                value = await executor(request)
            else:
                value = await asyncio.get_running_loop().run_in_executor(None, executor, request)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            logger.warning("the %s executor failed", kind, exc_info=True)
            return _reply_error("internal", f"the {kind} operation failed ({type(exc).__name__})")
        if not isinstance(value, dict):
            return _reply_error("internal", f"the {kind} executor returned no answer")
        if "error" in value:
            error = value["error"] if isinstance(value["error"], dict) else {"message": str(value["error"])}
            return _reply_error(
                str(error.get("code", "internal")), str(error.get("message", f"{kind} failed"))
            )
        if kind == "db":
            return {"op": "reply", "ok": True, "value": value.get("result")}
        body = value.get("body", b"")
        return {
            "op": "reply",
            "ok": True,
            "value": {
                "status": int(value.get("status", 0)),
                "headers": {str(k): str(v) for k, v in dict(value.get("headers") or {}).items()},
                "body": b64(body if isinstance(body, bytes) else str(body).encode()),
            },
        }
