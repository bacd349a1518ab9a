"""Summarising the replicas' Prometheus series per function (pure: text in, summaries out)."""

from __future__ import annotations

import math

import pytest

from imprun.domain.function_metrics import quantile_from_buckets, summarise

NODE_A = """\
# HELP ray_imprun_function_invocations_total Calls routed to a function.
# TYPE ray_imprun_function_invocations_total counter
ray_imprun_function_invocations_total{Component="core_worker",environment="dev",function="greet",gateway="gw1",status_class="2xx"} 8.0
ray_imprun_function_invocations_total{Component="core_worker",environment="dev",function="greet",gateway="gw1",status_class="5xx"} 2.0
ray_imprun_function_invocations_total{Component="core_worker",environment="dev",function="greet",gateway="other",status_class="2xx"} 99.0
ray_imprun_function_errors_total{environment="dev",function="greet",gateway="gw1",status_class="5xx"} 2.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="0.01",status_class="2xx"} 4.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="0.1",status_class="2xx"} 8.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="+Inf",status_class="2xx"} 8.0
ray_imprun_function_latency_seconds_sum{environment="dev",function="greet",gateway="gw1",status_class="2xx"} 0.2
ray_imprun_function_latency_seconds_count{environment="dev",function="greet",gateway="gw1",status_class="2xx"} 8.0
ray_node_cpu_utilization{ip="127.0.0.1"} 3.0
"""
NODE_B = """\
ray_imprun_function_invocations_total{environment="prod",function="reports/daily",gateway="gw1",status_class="4xx"} 1.0
ray_imprun_function_invocations_total{environment="dev",function="greet",gateway="gw1",status_class="2xx"} 2.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="0.01",status_class="2xx"} 0.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="0.1",status_class="2xx"} 2.0
ray_imprun_function_latency_seconds_bucket{environment="dev",function="greet",gateway="gw1",le="+Inf",status_class="2xx"} 2.0
ray_imprun_function_latency_seconds_sum{environment="dev",function="greet",gateway="gw1",status_class="2xx"} 0.1
ray_imprun_function_latency_seconds_count{environment="dev",function="greet",gateway="gw1",status_class="2xx"} 2.0
"""


def test_series_of_every_node_add_up_per_function_of_one_gateway() -> None:
    summaries = summarise([NODE_A, NODE_B], "gw1")
    assert [(s.environment, s.function) for s in summaries] == [("dev", "greet"), ("prod", "reports/daily")]
    greet, daily = summaries
    assert greet.invocations == 12
    assert greet.errors == 2
    assert greet.by_status_class == {"2xx": 10, "5xx": 2}
    assert greet.latency.count == 10
    assert greet.latency.mean_ms == pytest.approx(30.0)
    # 10 calls: 4 at ≤ 10 ms, 6 between 10 and 100 ms → the median lies 1/6 into the second bucket.
    assert greet.latency.p50_ms == pytest.approx(10 + 90 * (5 - 4) / 6, rel=1e-3)
    assert daily.invocations == 1 and daily.errors == 0
    assert daily.latency.count == 0 and daily.latency.mean_ms is None and daily.latency.p95_ms is None


def test_other_gateways_and_unparsable_lines_are_ignored() -> None:
    assert summarise([NODE_A], "nobody") == []
    garbage = (
        'ray_imprun_function_invocations_total{gateway="gw1",function="f",environment="dev"} not-a-number\n'
    )
    assert summarise([garbage, "ray_imprun_function_invocations_total 3\n"], "gw1") == []


def test_label_values_may_hold_commas() -> None:
    text = 'ray_imprun_function_invocations_total{gateway="gw1",function="a,b",environment="dev",status_class="2xx"} 3\n'
    (only,) = summarise([text], "gw1")
    assert only.function == "a,b" and only.invocations == 3


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {}, None),
        (0.5, {0.1: 0.0, math.inf: 0.0}, None),
        (0.5, {0.1: 10.0, math.inf: 10.0}, 0.05),
        (1.0, {0.1: 5.0, 1.0: 10.0, math.inf: 10.0}, 1.0),
        (0.99, {0.1: 5.0, math.inf: 10.0}, 0.1),  # past the last finite bound: that bound
    ],
)
def test_quantiles_interpolate_within_the_bucket(
    q: float, buckets: dict[float, float], expected: float | None
) -> None:
    assert quantile_from_buckets(q, buckets) == (pytest.approx(expected) if expected is not None else None)
