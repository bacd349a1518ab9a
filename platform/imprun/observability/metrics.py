"""Prometheus metrics for one control-plane instance, kept in its own registry.

A registry per app (instead of prometheus_client's global one) lets several apps live in one
process, as they do in tests, and keeps ``/metrics`` to what this control plane measured.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "imprun_http_requests_total",
            "Control-plane HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "imprun_http_request_duration_seconds",
            "Control-plane HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_steps = Counter(
            "imprun_reconcile_steps_total",
            "Reconciler steps by resource kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.reconcile_latency = Histogram(
            "imprun_reconcile_step_duration_seconds",
            "Reconciler step duration by resource kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
