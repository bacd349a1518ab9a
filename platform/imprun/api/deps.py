"""FastAPI dependencies as ``Annotated`` aliases: the authenticated user, the caller's address, and
each collaborator of the control plane a route needs (``Functions``, ``Gateways``, ``AppSettings``, …),
so a route names what it uses instead of reaching into the whole ``ControlPlane``."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request

from imprun.access import AccessService
from imprun.access.accounts import AccountService
from imprun.ai.registry import McpToolRegistry
from imprun.api.admission import UserSlots
from imprun.api.context import ControlPlane, ReadinessCheck
from imprun.api.quotas import Quotas
from imprun.drivers.cluster import ClusterDriver, FunctionRuntime
from imprun.errors import Unauthorized
from imprun.functions import FunctionService
from imprun.functions.logs import FunctionLogService
from imprun.functions.variables import VariableService
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.platform_apps import PlatformAppState
from imprun.observability.metrics import Metrics
from imprun.security.client_address import client_address
from imprun.settings import Settings
from imprun.store.mongo import Mongo
from imprun.store.sessions import SessionStore
from imprun.store.shared_loads import SharedLoads
from imprun.store.users import UserRecord


def get_plane(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


Plane = Annotated[ControlPlane, Depends(get_plane)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing bearer token: send `Authorization: Bearer <token>` from POST /v1/auth/login"
        )
    return token.strip()


BearerToken = Annotated[str, Depends(bearer_token)]


def current_user(plane: Plane, token: BearerToken) -> UserRecord:
    user_id = plane.sessions.resolve(token)
    user = plane.users.by_id(user_id) if user_id else None
    if user is None:
        raise Unauthorized("the token is invalid or expired; log in again with POST /v1/auth/login")
    return user


CurrentUser = Annotated[UserRecord, Depends(current_user)]


def request_client(request: Request, plane: Plane) -> str:
    """The caller's address: the peer, or what trusted proxies say it is (``IMPRUN_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.getlist("x-forwarded-for"), plane.trusted_proxies)


ClientAddress = Annotated[str, Depends(request_client)]


def _part(name: str) -> Callable[[Request], Any]:
    """A dependency answering one attribute of the app's ``ControlPlane``."""
    read = attrgetter(name)

    def dependency(request: Request) -> Any:
        return read(get_plane(request))

    dependency.__name__ = f"plane_{name}"
    return dependency


Access = Annotated[AccessService, Depends(_part("access"))]
Accounts = Annotated[AccountService, Depends(_part("accounts"))]
AiGatewayState = Annotated[Callable[[], PlatformAppState], Depends(_part("ai_gateway_state"))]
AppMetrics = Annotated[Metrics, Depends(_part("metrics"))]
AppMongo = Annotated[Mongo, Depends(_part("mongo"))]
AppSettings = Annotated[Settings, Depends(_part("settings"))]
DebugRuns = Annotated[UserSlots, Depends(_part("debug_runs"))]
DebugRuntime = Annotated[FunctionRuntime | None, Depends(_part("function_runtime"))]
DebugThreads = Annotated[anyio.CapacityLimiter, Depends(_part("debug_threads"))]
Driver = Annotated[ClusterDriver | None, Depends(_part("driver"))]
FunctionLogs = Annotated[FunctionLogService, Depends(_part("function_logs"))]
Functions = Annotated[FunctionService, Depends(_part("functions"))]
Gateways = Annotated[GatewayCommands, Depends(_part("gateway_commands"))]
SharedTierLoads = Annotated[SharedLoads, Depends(_part("shared_loads"))]
LogFollowers = Annotated[UserSlots, Depends(_part("log_followers"))]
McpTools = Annotated[McpToolRegistry, Depends(_part("mcp_tools"))]
ReadinessChecks = Annotated[dict[str, ReadinessCheck], Depends(_part("readiness"))]
Sessions = Annotated[SessionStore, Depends(_part("sessions"))]
UserQuotas = Annotated[Quotas, Depends(_part("quotas"))]
Variables = Annotated[VariableService, Depends(_part("variables"))]
