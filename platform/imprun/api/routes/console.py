"""The web console: the built single-page app (``console/dist``) served at ``/``.

Every GET or HEAD outside ``/v1/`` that no other route answers gets a file of the build when one
exists at that path (``/assets/…`` are content-hashed and cached for a year; text assets go out
gzip-compressed, each compressed once), else ``index.html``,
so the console's own paths (``/gateways/hometax/functions/…``) survive a reload. API paths and other
methods never reach this route: an unknown ``/v1/…`` stays a JSON 404 and a wrong method a 405.
The console signs in with a bearer token it keeps in the page's session storage — no cookie — so a
browser never sends a console credential to the data plane, which shares the host on another port.
"""

from __future__ import annotations

import gzip
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Scope

import imprun
from imprun.api.errors import error_response

__all__ = ["default_console_dir", "install_console"]

_API_PREFIX: Final = "/v1/"
_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # The bundle carries everything (Monaco and its workers included): nothing loads from elsewhere.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
    ),
}


_COMPRESSIBLE: Final = frozenset({".js", ".css", ".html", ".json", ".svg", ".ttf", ".map"})


@lru_cache(maxsize=64)
def _gzipped(path: Path, mtime_ns: int) -> bytes:
    """``path`` compressed once per version of the file (the build's assets never change in place)."""
    return gzip.compress(path.read_bytes(), compresslevel=6)


def default_console_dir() -> Path:
    """``console/dist`` of the source checkout this package runs from."""
    return Path(imprun.__file__).resolve().parents[2] / "console" / "dist"


class _ConsoleRoute(Route):
    """Matches only GET/HEAD outside ``/v1/`` — other requests fall through to the usual 404/405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        if scope["path"].startswith(_API_PREFIX) or scope["path"] == "/v1":
            return Match.NONE, {}
        return super().matches(scope)


def install_console(app: FastAPI, console_dir: Path) -> None:
    """Serve ``console_dir`` at ``/``; call after every API router so they match first."""
    root = console_dir.resolve()

    def send(path: Path, request: Request, cache: str) -> Response:
        headers = {**_SECURITY_HEADERS, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if path.suffix in _COMPRESSIBLE and "gzip" in request.headers.get("accept-encoding", ""):
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            body = _gzipped(path, path.stat().st_mtime_ns)
            return Response(body, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
        return FileResponse(path, headers=headers)

    def console(request: Request) -> Response:  # sync: Starlette runs it in a worker thread
        index = root / "index.html"
        if not index.is_file():
            return error_response(
                404,
                "not_found",
                "the web console is not built: run `bash console/setup.sh` (the API is under /v1)",
            )
        wanted = (root / request.path_params["path"]).resolve()
        if wanted != root and wanted.is_relative_to(root) and wanted.is_file():
            return send(wanted, request, _IMMUTABLE if wanted.parent.name == "assets" else "no-cache")
        return send(index, request, "no-cache")

    app.router.routes.append(
        _ConsoleRoute("/{path:path}", console, methods=["GET", "HEAD"], include_in_schema=False)
    )
