"""What an environment replica's own HTTP server adds to every request before Serve handles it.

Behind HAProxy, each replica serves HTTP itself (Serve's direct ingress) and, unless a request
carries ``x-request-disconnect-disabled: ?1``, watches it for a client disconnect: one extra task and
an ``asyncio.wait`` per request, so that a disconnect cancels the user code. An environment replica
needs neither — its supervisor bounds every call with the function's own timeout, and cancelling a
call would cost the jailed worker running it — so ``NoDisconnectWatch`` marks every request, replacing
whatever the client sent under that name. Serve installs it from the replica's environment
(``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` naming ``middlewares``); ``FunctionActor`` drops the
header again before tenant code sees the request.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DISCONNECT_DISABLED_HEADER", "MIDDLEWARES_IMPORT_PATH", "NoDisconnectWatch", "middlewares"]

DISCONNECT_DISABLED_HEADER: Final = b"x-request-disconnect-disabled"


class NoDisconnectWatch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[Any] = [h for h in scope["headers"] if h[0] != DISCONNECT_DISABLED_HEADER]
            headers.append((DISCONNECT_DISABLED_HEADER, b"?1"))
            scope["headers"] = headers
        await self.app(scope, receive, send)


def middlewares() -> list[Middleware]:
    """Serve's HTTP callback: the middlewares of the replica's direct-ingress server."""
    return [Middleware(NoDisconnectWatch)]


MIDDLEWARES_IMPORT_PATH: Final = f"{__name__}:{middlewares.__name__}"
