"""Per-function metrics of an environment replica, through Ray's metrics API (``ray.util.metrics``).

``FunctionMetrics`` is the supervisor's ``InvocationObserver`` in a ``FunctionActor`` replica: after
every routed call it counts the invocation, counts it again as an error when the answer is a 5xx
(the function raised, timed out or its worker died; a 4xx is the caller's mistake), and records its
duration in a histogram. Every series is tagged ``gateway``, ``environment``, ``function`` and
``status_class`` (``2xx`` … ``5xx``). Ray's metrics agent exports them to Prometheus on each node's
metrics export port with Ray's ``ray_`` prefix — ``ray_imprun_function_invocations_total``,
``ray_imprun_function_errors_total``, ``ray_imprun_function_latency_seconds_bucket`` — which is
also where the Ray dashboard's metrics view (Grafana) reads them.
"""

from __future__ import annotations

import asyncio
from typing import Final

from ray.util import metrics

__all__ = ["LATENCY_BOUNDARIES_S", "FunctionMetrics"]

_TAGS: Final = ("gateway", "environment", "function", "status_class")
_MAX_CACHED_TAGS: Final = 4096
FLUSH_INTERVAL_S: Final = 0.5
"""Counts are gathered in the replica and handed to Ray at most this often (a ``Counter.inc`` per call
cost about 5 % of a busy replica's time); the latency histogram is recorded per call."""
LATENCY_BOUNDARIES_S: Final = [
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
]


class FunctionMetrics:
    """Invocation count, error count and latency of one environment's functions."""

    def __init__(
        self, gateway_id: str, environment: str, *, flush_interval_s: float = FLUSH_INTERVAL_S
    ) -> None:
        self._base = {"gateway": gateway_id, "environment": environment}
        self._flush_interval_s = flush_interval_s
        self._pending: dict[tuple[str, int], list[int]] = {}
        self._tags: dict[tuple[str, int], dict[str, str]] = {}
        self._flush_scheduled = False
        self._invocations = metrics.Counter(
            "imprun_function_invocations",
            description="Function calls answered by the replica.",
            tag_keys=_TAGS,
        )
        self._errors = metrics.Counter(
            "imprun_function_errors",
            description="Function calls answered with a 5xx (raised, timed out, worker died).",
            tag_keys=_TAGS,
        )
        self._latency = metrics.Histogram(
            "imprun_function_latency_seconds",
            description="Time from routing a call to its answer, in seconds.",
            boundaries=LATENCY_BOUNDARIES_S,
            tag_keys=_TAGS,
        )

    def observe(self, function: str, status: int, duration_s: float) -> None:
        key = (function, status // 100)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = [0, 0]
        counts[0] += 1
        if status >= 500:
            counts[1] += 1
        self._latency.observe(duration_s, self._tags_of(key))
        if not self._flush_scheduled:
            self._schedule_flush()

    def flush(self) -> None:
        """Hand the counts gathered since the last flush to Ray's metrics agent."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for key, (invocations, errors) in pending.items():
            tags = self._tags_of(key)
            self._invocations.inc(float(invocations), tags)
            if errors:
                self._errors.inc(float(errors), tags)

    def _tags_of(self, key: tuple[str, int]) -> dict[str, str]:
        tags = self._tags.get(key)
        if tags is None:
            if len(self._tags) >= _MAX_CACHED_TAGS:
                self._tags.clear()
            function, status_class = key
            tags = self._tags[key] = {**self._base, "function": function, "status_class": f"{status_class}xx"}
        return tags

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop (tests): record at once
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_later(self._flush_interval_s, self.flush)
