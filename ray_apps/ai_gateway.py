"""The ``ai-gateway`` Ray Serve application: MCP at ``/mcp`` and the chat endpoint, one per cluster.

Serve wiring only; the logic is ``imprun.ai``. Each replica of the ``AiGateway`` deployment opens the
system database (grants and the tool registry, read through ``imprun.store``), the configured chat
providers, and serves ``imprun.ai.http_app.AiGatewayHttp`` as its ASGI ingress. A tool call goes to
a replica of the function's environment through a Serve handle (``FunctionActor.call_tool``), so the
function runs in that environment's jailed workers with its limits, timeout and logs — this process
never runs tenant code (it holds the providers' keys). The lifecycle's ``PlatformAppReconciler``
deploys it by import path ``ray_apps.ai_gateway:build_app`` with ``AiGatewayConfig`` args (plus the
driver's ``version``, ``num_replicas`` and ``ray_actor_options``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

from ray import serve
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle

from imprun.ai.catalog import ToolCatalog
from imprun.ai.chat import ChatService
from imprun.ai.chat_budget import ChatBudget, ChatLimits
from imprun.ai.config import AiGatewayConfig
from imprun.ai.dispatch import Caller, ToolOutcome
from imprun.ai.http_app import AiGatewayHttp
from imprun.ai.mcp_server import McpEndpoint
from imprun.ai.provider_factory import open_provider
from imprun.ai.providers import ChatProvider, ProviderKind
from imprun.ai.tools import Tool
from imprun.domain.naming import serve_app_name
from imprun.store.applications import GrantRepository
from imprun.store.llm_usage import LlmUsageRepository
from imprun.store.mcp_tools import McpToolRepository, published_tools
from imprun.store.mongo import Mongo, connect_mongo
from runtime_actors.shared.errors import error_body
from runtime_actors.shared.names import SHARED_DEPLOYMENT, SHARED_RUNTIME_APP

__all__ = ["DEPLOYMENT_NAME", "AiGateway", "ServeToolInvoker", "build_app"]

log = logging.getLogger(__name__)

DEPLOYMENT_NAME: Final = "AiGateway"
_DRIVER_ARGS: Final = ("version", "num_replicas", "ray_actor_options")


class ServeToolInvoker:
    """Tool calls through Serve handles: to the environment's ``FunctionActor`` replicas when it has
    an application of its own, else to the shared runtime (``SharedRuntime.call_tool``, with the
    environment as the multiplexed model id)."""

    def __init__(self) -> None:
        self._handles: dict[str, DeploymentHandle[Any]] = {}
        self._shared: DeploymentHandle[Any] | None = None

    def _call(self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller) -> Any:
        gateway_id, environment = tool.gateway_id, tool.environment
        app = serve_app_name(gateway_id, environment)
        handle = self._handles.get(app)
        if handle is None:
            with contextlib.suppress(RayServeException):
                handle = self._handles[app] = serve.get_app_handle(app)
        if handle is not None:
            return handle.call_tool.remote(
                tool.function, dict(arguments), request_id, caller.api_key, caller.client
            )
        if self._shared is None:
            self._shared = serve.get_deployment_handle(SHARED_DEPLOYMENT, SHARED_RUNTIME_APP)
        shared = self._shared.options(multiplexed_model_id=f"{gateway_id}/{environment}")
        return shared.call_tool.remote(
            gateway_id, environment, tool.function, dict(arguments), request_id, caller.api_key, caller.client
        )

    async def invoke(
        self, tool: Tool, arguments: Mapping[str, Any], request_id: str, caller: Caller
    ) -> ToolOutcome:
        gateway_id, environment, function = tool.gateway_id, tool.environment, tool.function
        app = serve_app_name(gateway_id, environment)
        try:
            answer: dict[str, Any] = await self._call(tool, arguments, request_id, caller)
        except Exception as exc:  # the environment is gone or not running: a tool error, not a crash
            self._handles.pop(app, None)
            self._shared = None
            log.warning("tool call to %s/%s failed: %r (request %s)", app, function, exc, request_id)
            message = f"The environment {environment} of gateway {gateway_id} is not serving right now."
            return ToolOutcome(503, error_body("unavailable", message), 0.0, "unavailable")
        return ToolOutcome(
            int(answer["status"]),
            answer.get("body"),
            float(answer.get("durationMs") or 0.0),
            answer.get("error"),
        )


@serve.ingress()
class AiGateway:
    async def __init__(self, config: dict[str, Any]) -> None:  # type: ignore[misc]  # Serve awaits it
        self._config = AiGatewayConfig.from_args(config)
        if self._config.mongo_url is None:
            raise ValueError("the AI gateway needs mongo_url")
        self._mongo: Mongo = connect_mongo(self._config.mongo_url, app_name="imprun-ai-gateway")
        sys_db = self._mongo[self._config.sys_db_name]
        self._catalog = ToolCatalog(
            GrantRepository(sys_db),
            McpToolRepository(sys_db),
            lambda gateway_id, environments: published_tools(self._mongo, gateway_id, environments),
            bytes.fromhex(self._config.api_key_pepper),
            ttl_seconds=self._config.catalog_ttl_seconds,
        )
        invoker = ServeToolInvoker()
        self._providers: dict[ProviderKind, ChatProvider] = {
            p.kind: open_provider(p) for p in self._config.provider_configs()
        }
        default = ProviderKind(self._config.default_provider) if self._config.default_provider else None
        self._mcp = McpEndpoint(
            self._catalog,
            invoker,
            allowed_hosts=self._config.mcp_allowed_hosts,
            tool_timeout_seconds=self._config.tool_timeout_seconds,
        )
        limits = ChatLimits(
            calls_per_period=self._config.chat_calls_per_period,
            tokens_per_period=self._config.chat_tokens_per_period,
            period_seconds=self._config.chat_period_seconds,
            requests_per_minute=self._config.chat_requests_per_minute,
        )
        chat = ChatService(
            self._providers,
            invoker,
            default_provider=default,
            max_tool_calls=self._config.max_tool_calls,
            tool_timeout_seconds=self._config.tool_timeout_seconds,
            allowed_models={p.kind: p.allowed_models for p in self._config.provider_configs()},
            budget=ChatBudget(LlmUsageRepository(sys_db), limits),
        )
        self._http = AiGatewayHttp(
            self._catalog, self._mcp, chat, max_request_bytes=self._config.max_request_bytes
        )
        started = asyncio.Event()
        self._stop = asyncio.Event()
        self._mcp_task = asyncio.create_task(self._run_mcp(started), name="imprun-mcp-session-manager")
        await started.wait()

    async def _run_mcp(self, started: asyncio.Event) -> None:
        async with self._mcp.running():
            started.set()
            await self._stop.wait()

    def __serve_build_asgi_app__(self) -> AiGatewayHttp:
        return self._http

    async def forward(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer a request the shared runtime's catch-all received for one of this gateway's paths
        (``/ai-gateway/…``; ``/mcp`` has its own route prefix): ``(status, headers, body)``."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query_string,
            "headers": headers,
            "client": (client, 0) if client else None,
            "server": None,
        }
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # no disconnect: the caller waits for the answer
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        answer: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self._http(scope, receive, send)  # type: ignore[arg-type]
        return answer["status"], answer["headers"], bytes(answer["body"])

    async def __del__(self) -> None:
        stop: asyncio.Event | None = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            with contextlib.suppress(Exception):
                await self._mcp_task
        for provider in getattr(self, "_providers", {}).values():
            with contextlib.suppress(Exception):
                await provider.close()
        mongo: Mongo | None = getattr(self, "_mongo", None)
        if mongo is not None:
            mongo.close()


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: ``AiGatewayConfig`` args plus the driver's deployment options."""
    options: dict[str, Any] = {k: args[k] for k in _DRIVER_ARGS if k in args}
    config = AiGatewayConfig.from_args({k: v for k, v in args.items() if k not in _DRIVER_ARGS})
    deployment = serve.deployment(name=DEPLOYMENT_NAME, logging_config={"enable_access_log": False})(
        AiGateway
    )
    if "version" in options:
        options["_internal"] = True
    # `version` pins replicas across identical re-applies (like the environment apps)
    deployment = deployment.options(**options) if options else deployment
    return deployment.bind(config.to_args())
