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

from typing import Final

from ray.util import metrics

__all__ = ["LATENCY_BOUNDARIES_S", "FunctionMetrics"]

_TAGS: Final = ("gateway", "environment", "function", "status_class")
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

    def __init__(self, gateway_id: str, environment: str) -> None:
        self._base = {"gateway": gateway_id, "environment": environment}
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
        tags = {**self._base, "function": function, "status_class": f"{status // 100}xx"}
        self._invocations.inc(1.0, tags)
        if status >= 500:
            self._errors.inc(1.0, tags)
        self._latency.observe(duration_s, tags)
