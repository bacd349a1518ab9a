"""The Ray Serve application that serves one gateway environment at ``/<gw>/<env>``.

Each replica of its single deployment, ``FunctionActor``, is the trusted supervisor of one
environment. For now it only answers ``GET /<gw>/<env>/_health``; every other path gets a 404 in
the API error shape (function routing arrives with the supervisor). ``build_app(args)`` builds the
application, so the same code runs whether the local cluster driver deploys it through the Python
API or a KubeRay ``serveConfigV2`` names it by import path (``ray_apps.environment:build_app`` with
``args: {gateway_id, environment}``). The handler is a plain ``__call__(request)``: nothing is built
per request. Only Ray, Starlette (which Serve ships) and the standard library are imported here;
naming rules for gateways and environments are enforced by the driver that deploys the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["DEPLOYMENT_NAME", "FunctionActor", "build_app", "environment_deployment"]

DEPLOYMENT_NAME: Final = "FunctionActor"
"""Name of the environment's deployment, as shown in the Ray dashboard."""

HEALTH_ROUTE: Final = "/_health"


def _path_segment(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"{kind} must be a non-empty string without '/', got {value!r}")
    return value


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class FunctionActor:
    """One replica of a gateway environment: answers its health route and 404s everything else."""

    def __init__(self, gateway_id: str, environment: str) -> None:
        self._gateway_id = _path_segment("gateway_id", gateway_id)
        self._environment = _path_segment("environment", environment)
        self._prefix = f"/{gateway_id}/{environment}"
        self._health = {"gateway": gateway_id, "environment": environment, "status": "ok"}

    def route_of(self, scope: Mapping[str, Any]) -> str:
        """The request path below ``/<gw>/<env>``, whether or not the ingress already stripped it."""
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        for prefix in (root, self._prefix):
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                return path[len(prefix) :] or "/"
        return path

    async def __call__(self, request: Request) -> JSONResponse:
        route = self.route_of(request.scope)
        if route == HEALTH_ROUTE and request.method in ("GET", "HEAD"):
            return JSONResponse(self._health)
        return _error(
            404,
            "not_found",
            f"No route for {request.method} {route} in environment '{self._environment}' of gateway "
            f"'{self._gateway_id}'. Check the path and that the function is published to this environment.",
        )


def environment_deployment(options: Mapping[str, Any] | None = None) -> serve.Deployment:
    """The ``FunctionActor`` deployment with Serve deployment ``options`` (replicas, resources, …)."""
    deployment = serve.deployment(name=DEPLOYMENT_NAME)(FunctionActor)
    return deployment.options(**options) if options else deployment


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder; ``args`` are ``{"gateway_id": …, "environment": …}``."""
    unknown = sorted(set(args) - {"gateway_id", "environment"})
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; expected gateway_id and environment")
    gateway_id = _path_segment("gateway_id", args.get("gateway_id"))
    environment = _path_segment("environment", args.get("environment"))
    return environment_deployment().bind(gateway_id, environment)
