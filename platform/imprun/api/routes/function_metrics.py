"""``GET /v1/api-gateways/{gw}/metrics``: per-function invocations, errors and latency of a gateway.

The replicas export these series through Ray's metrics API to every node's Prometheus endpoint;
this route reads those endpoints (``imprun.drivers.ray_metrics``) and sums them per environment and
function (``imprun.domain.function_metrics``). Counts are totals since each replica started. With
no local Ray cluster to ask (no data plane, or the KubeRay driver, whose nodes the control plane
does not reach) the answer is 503 naming where the series are instead. ``dashboardUrl`` is the Ray
dashboard, for operators.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from imprun.api.deps import AppSettings, CurrentUser, Driver, Gateways
from imprun.domain.function_metrics import summarise
from imprun.errors import Unavailable

router = APIRouter(prefix="/v1/api-gateways", tags=["metrics"])


class LatencyPublic(BaseModel):
    count: int
    meanMs: float | None
    p50Ms: float | None
    p95Ms: float | None
    p99Ms: float | None


class FunctionMetricsPublic(BaseModel):
    environment: str
    function: str
    invocations: int
    errors: int
    byStatusClass: dict[str, int]
    latency: LatencyPublic


class GatewayMetrics(BaseModel):
    gatewayId: str
    functions: list[FunctionMetricsPublic]
    dashboardUrl: str


@router.get("/{gw}/metrics")
def gateway_metrics(
    gw: str, user: CurrentUser, driver: Driver, gateway_commands: Gateways, settings: AppSettings
) -> GatewayMetrics:
    gateway = gateway_commands.get_owned(gw, user.id)
    driver = driver
    if driver is None or settings.cluster_driver != "local":
        raise Unavailable(
            "per-function metrics are read from the local Ray cluster's nodes; on this deployment "
            "read ray_imprun_function_* from your Prometheus"
        )
    from imprun.drivers.ray_metrics import RayNodeMetrics  # imports ray: only when asked

    texts = RayNodeMetrics(connect=driver.ping).scrape()
    functions = [
        FunctionMetricsPublic(
            environment=s.environment,
            function=s.function,
            invocations=s.invocations,
            errors=s.errors,
            byStatusClass=s.by_status_class,
            latency=LatencyPublic(
                count=s.latency.count,
                meanMs=s.latency.mean_ms,
                p50Ms=s.latency.p50_ms,
                p95Ms=s.latency.p95_ms,
                p99Ms=s.latency.p99_ms,
            ),
        )
        for s in summarise(texts, gateway.gateway_id)
    ]
    return GatewayMetrics(
        gatewayId=gateway.gateway_id, functions=functions, dashboardUrl=settings.dashboard_url
    )
