"""``ReloadChannelListener``: the Redis reload channel turned into the feed's wake-ups.

The control plane publishes ``<gw>/<env>`` on ``RELOAD_CHANNEL`` after each bump; every message becomes
``on_message(key)`` (``ReloadFeed.wake``). Wake-ups only shorten the wait: the generation counters stay
the lossless source, so the listener reconnects forever and never stops the hub.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis

from runtime_actors.hub import RETRY_MAX_S
from runtime_actors.shared.names import RELOAD_CHANNEL

__all__ = ["ReloadChannelListener"]

logger = logging.getLogger(__name__)


class ReloadChannelListener:
    """Subscribes to the reload channel and calls ``on_message(key)`` per message; reconnects forever."""

    def __init__(
        self,
        connect: Callable[[], redis.Redis],
        on_message: Callable[[str], None],
        *,
        poll_timeout: float = 1.0,
    ) -> None:
        self._connect = connect
        self._on_message = on_message
        self._poll_timeout = poll_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imprun-reload-channel", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        retry = 0.05
        while not self._stop.is_set():
            try:
                self._follow()
                retry = 0.05
            except Exception as exc:  # wake-ups are an optimisation: keep trying, never stop
                self.connected.clear()
                logger.warning("reload channel: %r; reconnecting in %.2f s", exc, retry)
                self._stop.wait(retry)
                retry = min(retry * 2, RETRY_MAX_S)

    def _follow(self) -> None:
        client = self._connect()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(RELOAD_CHANNEL)
            self.connected.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=self._poll_timeout)
                if message and message.get("type") == "message":
                    data = message["data"]
                    self._on_message(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.close()
                client.close()
