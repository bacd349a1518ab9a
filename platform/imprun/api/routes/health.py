"""Liveness, readiness (every dependency answers) and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from imprun.api.deps import Plane
from imprun.api.errors import error_body
from imprun.errors import ImprunError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(plane: Plane) -> JSONResponse:
    checks: dict[str, Any] = {}
    failed = []
    for name, check in plane.readiness.items():
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


@router.get("/metrics")
def metrics(plane: Plane) -> Response:
    return Response(plane.metrics.render(), media_type=plane.metrics.content_type)
