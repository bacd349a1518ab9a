"""Pure-ASGI middleware: request ids, the body-size limit, metrics and one access-log line.

Written against raw ASGI (not ``BaseHTTPMiddleware``) so it adds microseconds, streams bodies, and
sees every response, including the ones error handlers produce.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imprun.api.errors import error_body
from imprun.observability.logs import request_id_var
from imprun.observability.metrics import Metrics
from runtime_actors.shared.errors import REQUEST_ID_HEADER, request_id_of

log = logging.getLogger("imprun.access")


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = request_id_of({REQUEST_ID_HEADER: incoming})
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}
        over_limit = False

        async def send_with_id(message: Message) -> None:
            if over_limit:
                # The body outgrew the limit while the app was reading it; whatever the app answers
                # (frameworks turn a failed read into 400), the client gets 413.
                if message["type"] == "http.response.start" and not status_holder["sent"]:
                    status_holder["status"] = 413
                    status_holder["sent"] = True
                    await self._too_large(send, request_id)
                return
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                status_holder["status"] = 413
                await self._too_large(send, request_id)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received, over_limit
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        over_limit = True
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                if not status_holder["sent"]:
                    status_holder["status"] = 413
                    await self._too_large(send, request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "")
            status = int(status_holder["status"])
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(elapsed)
            if template not in ("/healthz", "/metrics"):
                log.info(
                    "%s %s %s %.1fms",
                    method,
                    scope.get("path", ""),
                    status,
                    elapsed * 1000,
                    extra={"status": status, "route": template, "durationMs": round(elapsed * 1000, 2)},
                )
            request_id_var.reset(token)

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = json.dumps(
            error_body(
                "too_large",
                f"the request body is larger than {self.max_body_bytes} bytes",
                status=413,
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
