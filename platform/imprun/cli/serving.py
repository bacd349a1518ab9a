"""Running the control plane under uvicorn for ``imprun up``, stoppable by SIGINT/SIGTERM.

uvicorn is run in a worker thread so that the main thread owns the signals: uvicorn only installs
its own handlers (and re-raises the signal after shutting down) when it runs on the main thread.
``ShutdownSignals`` turns the first signal into ``KeyboardInterrupt`` while services are starting and
into a graceful uvicorn exit once it serves; a second one forces uvicorn's exit; signals during the
final clean-up are ignored so services are not left half-stopped. The main thread meanwhile polls
``/readyz`` and announces the URLs once the control plane is ready.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from imprun.api.app import create_app
from imprun.cli.control_plane import probe_readyz
from imprun.errors import Internal
from imprun.settings import Settings

log = logging.getLogger(__name__)

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class ShutdownSignals:
    """SIGINT/SIGTERM policy of ``imprun up`` while installed (a context manager)."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.requested = False
        self.cleaning_up = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> ShutdownSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in _HANDLED}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.requested
        self.requested = True
        if self.cleaning_up:
            log.info("already stopping; waiting for the services to stop")
        elif self.server is not None:
            if first:
                self.server.should_exit = True
            else:
                self.server.force_exit = True
        elif first:
            raise KeyboardInterrupt


def build_server(settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # the client address comes from IMPRUN_TRUSTED_PROXIES only (imprun.api.deps)
    )
    return uvicorn.Server(config)


def serve_until_stopped(
    server: uvicorn.Server, settings: Settings, signals: ShutdownSignals, on_ready: Callable[[], None]
) -> None:
    """Serve until a signal stops uvicorn; ``on_ready`` runs once ``/readyz`` answers 200.

    Raises ``Internal`` when uvicorn stops by itself (port taken, start-up failure, crash).
    """
    thread = threading.Thread(target=server.run, name="imprun-control-plane", daemon=True)
    signals.server = server
    thread.start()
    deadline = time.monotonic() + settings.startup_timeout_seconds
    announced = warned = False
    try:
        while thread.is_alive():
            thread.join(0.1)
            if announced or signals.requested or not server.started:
                continue
            if probe_readyz(settings, timeout=1.0).ready:
                on_ready()
                announced = True
            elif not warned and time.monotonic() > deadline:
                log.warning("the control plane is not ready yet; see %s/readyz", settings.control_plane_url)
                warned = True
    finally:
        server.should_exit = True
        thread.join(settings.startup_timeout_seconds)
    if not signals.requested:
        raise Internal(
            f"the control plane stopped unexpectedly on {settings.control_plane_url}; see the log above"
        )
