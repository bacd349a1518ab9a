"""What the console tries on the data plane, through the control plane.

``POST /v1/api-gateways/{gw}/environments/{env}/call`` calls a published function exactly as a client
would — method, query, headers (the page's ``apikey`` included) and JSON body — and returns the
answer: the data plane serves no CORS headers, so a page from the control plane cannot read its
answers itself. The call goes to the data plane's own address (``IMPRUN_DATA_PLANE_URL``'s host and
port, never one from the request), only for the caller's own gateway.

``GET /v1/applications/{app}/grants/{grant}/tools`` lists the MCP tools the grant's key sees (its
environment's published functions and the registry's entries), with their ``inputSchema``, and
where the MCP endpoint answers.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from imprun.api.deps import Access, AppSettings, CurrentUser, DebugRuns, DebugThreads, Gateways, McpTools
from imprun.domain.functions import FunctionName
from imprun.drivers.data_plane import DataPlaneCaller
from imprun.errors import NotFound

router = APIRouter(tags=["console"])


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: FunctionName
    method: str = Field(default="POST", pattern=r"^[A-Za-z]{1,16}$", description="The data plane judges it.")
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="Sent as JSON unless null (no body).")


class CallAnswerPublic(BaseModel):
    url: str
    status: int
    headers: dict[str, str]
    body: str
    json_: Any = Field(default=None, alias="json", serialization_alias="json")
    truncated: bool
    durationMs: float

    model_config = ConfigDict(populate_by_name=True)


class ToolPublic(BaseModel):
    name: str
    description: str
    inputSchema: dict[str, Any]
    outputSchema: dict[str, Any] | None
    gatewayId: str
    environment: str
    function: str
    fromRegistry: bool


class GrantTools(BaseModel):
    grantId: str
    gatewayId: str
    environment: str
    mcpUrl: str
    tools: list[ToolPublic]


@router.post("/v1/api-gateways/{gw}/environments/{env}/call", response_model_by_alias=True)
async def call_function(
    gw: str,
    env: str,
    user: CurrentUser,
    debug_runs: DebugRuns,
    debug_threads: DebugThreads,
    gateway_commands: Gateways,
    settings: AppSettings,
    request: CallRequest = Body(),
) -> CallAnswerPublic:
    """A call may take as long as the function's timeout: like a debug run, it counts against
    ``IMPRUN_DEBUG_RUNS_PER_USER`` (429 past it) and waits on the debug-run threads, never on the
    pool that serves the other routes."""
    commands = gateway_commands
    gateway = await anyio.to_thread.run_sync(commands.get_owned, gw, user.id)
    environment = await anyio.to_thread.run_sync(commands.get_environment, gateway, env)
    path = f"{gateway.gateway_id}/{environment.name}/{request.function}"
    headers = dict(request.headers)
    content: bytes | None = None
    if request.body is not None:
        content = json.dumps(request.body).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
    caller = DataPlaneCaller(settings.data_plane_url)
    release = debug_runs.acquire(user.id)
    try:
        answer = await anyio.to_thread.run_sync(
            lambda: caller.call(
                path, method=request.method.upper(), query=request.query, headers=headers, body=content
            ),
            limiter=debug_threads,
        )
    finally:
        release()
    text = answer.body.decode("utf-8", "replace")
    parsed: Any = None
    if "json" in answer.headers.get("content-type", "") and not answer.truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return CallAnswerPublic(
        url=f"{settings.function_base_url}/{path}",
        status=answer.status,
        headers=answer.headers,
        body=text,
        json_=parsed,
        truncated=answer.truncated,
        durationMs=answer.duration_ms,
    )


@router.get("/v1/applications/{app}/grants/{grant}/tools")
def grant_tools(
    app: str, grant: str, user: CurrentUser, access: Access, mcp_tools: McpTools, settings: AppSettings
) -> GrantTools:
    found = next((g for g in access.grants_of(app, user) if g.grant_id == grant), None)
    if found is None:
        raise NotFound(
            f"no grant {grant!r} in application {app!r}; list them with GET /v1/applications/{app}/grants"
        )
    tools = mcp_tools.tools_of_environment(found.gateway_id, found.environment)
    return GrantTools(
        grantId=found.grant_id,
        gatewayId=found.gateway_id,
        environment=found.environment,
        mcpUrl=f"{settings.function_base_url}/mcp",
        tools=[
            ToolPublic(
                name=t.name,
                description=t.description,
                inputSchema=dict(t.input_schema),
                outputSchema=dict(t.output_schema) if t.output_schema is not None else None,
                gatewayId=t.gateway_id,
                environment=t.environment,
                function=t.function,
                fromRegistry=t.from_registry,
            )
            for t in tools
        ],
    )
