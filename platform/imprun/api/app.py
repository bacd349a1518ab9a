"""The control-plane app factory: ``create_app(settings)`` (uvicorn: ``--factory imprun.api.app:app_from_env``).

The lifespan opens the ``ControlPlane`` (MongoDB, Redis, master key), creates indexes, and closes it
on shutdown. Routers, middleware and the error handlers are wired here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

import imprun
from imprun.api.composition import open_control_plane
from imprun.api.context import ControlPlane
from imprun.api.errors import install_error_handlers
from imprun.api.middleware import RequestContextMiddleware
from imprun.api.routes import (
    ai_gateway,
    applications,
    auth,
    definitions,
    function_metrics,
    functions,
    gateways,
    health,
    logs,
    try_it,
    variables,
)
from imprun.api.routes.console import default_console_dir, install_console
from imprun.drivers.cluster import ClusterDriver
from imprun.errors import ImprunError
from imprun.observability.logs import configure_logging
from imprun.observability.metrics import Metrics
from imprun.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    plane: ControlPlane | None = None,
    driver: ClusterDriver | None = None,
    console_dir: Path | None = None,
) -> FastAPI:
    """Build the app; ``plane`` shares an already-open ``ControlPlane``, ``driver`` a cluster driver,
    ``console_dir`` is the built web console served at ``/`` (default: the checkout's ``console/dist``)."""
    owned = plane is None
    metrics = plane.metrics if plane is not None else Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = plane if plane is not None else open_control_plane(settings, driver=driver)
        current.metrics = metrics
        app.state.plane = current
        try:
            current.prepare()
        except ImprunError as exc:
            log.warning("start-up preparation deferred: %s", exc.message)
        if current.loop is not None:
            current.loop.start()
        try:
            yield
        finally:
            if current.loop is not None:
                await current.loop.stop()
            if owned:
                current.close()

    app = FastAPI(
        title="imprun control plane",
        version=imprun.__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(gateways.router)
    app.include_router(functions.router)
    app.include_router(applications.router)
    app.include_router(ai_gateway.router)
    app.include_router(variables.router)
    app.include_router(logs.router)
    app.include_router(definitions.router)
    app.include_router(function_metrics.router)
    app.include_router(try_it.router)
    install_console(app, console_dir or default_console_dir())
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory entry point: settings from ``IMPRUN_*`` variables."""
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
