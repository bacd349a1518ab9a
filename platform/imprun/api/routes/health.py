"""Liveness, readiness (every dependency answers) and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from imprun.api.deps import AppMetrics, ReadinessChecks
from imprun.api.errors import error_body
from imprun.errors import ImprunError

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: str


class Check(BaseModel):
    ok: bool
    latencyMs: float | None = None
    message: str | None = None


class Readiness(BaseModel):
    status: str
    checks: dict[str, Check] = Field(description="Each dependency: `{ok, latencyMs}` or `{ok, message}`.")


@router.get("/healthz")
def healthz() -> Liveness:
    return Liveness(status="ok")


@router.get("/readyz", response_model=None, responses={200: {"model": Readiness}})
def readyz(readiness: ReadinessChecks) -> JSONResponse:
    checks: dict[str, Any] = {}
    failed = []
    for name, check in readiness.items():
        started = time.perf_counter()
        try:
            check()
        except ImprunError as exc:
            checks[name] = {"ok": False, "message": exc.message}
            failed.append(name)
        else:
            checks[name] = {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}
    if failed:
        body = error_body(
            "unavailable", f"not ready: {', '.join(failed)} unreachable", details=checks, status=503
        )
        return JSONResponse(body, 503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", response_model=None)
def metrics(metrics: AppMetrics) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)
