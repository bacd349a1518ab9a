"""Per-function metrics of one gateway, summarised from the Prometheus text the Ray nodes export.

Each replica counts invocations and errors and records latency (``ray_apps.function_metrics``); the
series carry the tags ``gateway``, ``environment``, ``function`` and ``status_class``. ``summarise``
reads the text of every node (pure: no I/O), keeps one gateway's series, and adds them up per
(environment, function): invocations, errors (5xx), counts per status class, and latency (mean and
the p50/p95/p99 estimated from the histogram buckets, as Prometheus' ``histogram_quantile`` does).
Counts are totals since each replica started.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["FunctionMetricsSummary", "LatencySummary", "quantile_from_buckets", "summarise"]

_PREFIX: Final = "ray_imprun_function_"
_INVOCATIONS: Final = f"{_PREFIX}invocations_total"
_ERRORS: Final = f"{_PREFIX}errors_total"
_LATENCY: Final = f"{_PREFIX}latency_seconds"
_SAMPLE: Final = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\}\s+(\S+)")
_LABEL: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class LatencySummary:
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class FunctionMetricsSummary:
    environment: str
    function: str
    invocations: int
    errors: int
    by_status_class: dict[str, int]
    latency: LatencySummary


@dataclass
class _Totals:
    invocations: float = 0.0
    errors: float = 0.0
    by_status_class: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_count: float = 0.0


def _samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    for line in text.splitlines():
        if not line.startswith(_PREFIX):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        yield name, dict(_LABEL.findall(labels)), number


def quantile_from_buckets(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}`` (linear within a bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return bounds[-1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def summarise(texts: Iterable[str], gateway_id: str) -> list[FunctionMetricsSummary]:
    """``gateway_id``'s per-function totals across every node's text, sorted by environment, function."""
    totals: dict[tuple[str, str], _Totals] = {}
    for text in texts:
        for name, labels, value in _samples(text):
            if labels.get("gateway") != gateway_id:
                continue
            key = (labels.get("environment", ""), labels.get("function", ""))
            entry = totals.setdefault(key, _Totals())
            if name == _INVOCATIONS:
                entry.invocations += value
                status_class = labels.get("status_class", "")
                entry.by_status_class[status_class] = entry.by_status_class.get(status_class, 0.0) + value
            elif name == _ERRORS:
                entry.errors += value
            elif name == f"{_LATENCY}_bucket" and "le" in labels:
                bound = float(labels["le"])
                entry.buckets[bound] = entry.buckets.get(bound, 0.0) + value
            elif name == f"{_LATENCY}_sum":
                entry.latency_sum += value
            elif name == f"{_LATENCY}_count":
                entry.latency_count += value
    return [
        FunctionMetricsSummary(
            environment=environment,
            function=function,
            invocations=int(t.invocations),
            errors=int(t.errors),
            by_status_class={k: int(v) for k, v in sorted(t.by_status_class.items())},
            latency=LatencySummary(
                count=int(t.latency_count),
                mean_ms=_ms(t.latency_sum / t.latency_count) if t.latency_count else None,
                p50_ms=_ms(quantile_from_buckets(0.5, t.buckets)),
                p95_ms=_ms(quantile_from_buckets(0.95, t.buckets)),
                p99_ms=_ms(quantile_from_buckets(0.99, t.buckets)),
            ),
        )
        for (environment, function), t in sorted(totals.items())
    ]
