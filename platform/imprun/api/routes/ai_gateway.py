"""``/v1/ai-gateway``: the AI gateway's status and its tool registry (``mcp-tools``).

The registry's rules live in ``imprun.ai.registry``; this module validates bodies and shapes
responses. ``GET /v1/ai-gateway`` says whether the ``ai-gateway`` application is deployed and where
its MCP and chat endpoints answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from imprun.ai.registry import McpToolRegistry
from imprun.api.deps import AiGatewayState, AppSettings, CurrentUser, McpTools
from imprun.store.mcp_tools import McpToolRecord

router = APIRouter(prefix="/v1/ai-gateway", tags=["ai-gateway"])


class McpToolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=4000)
    gatewayId: str = Field(min_length=1, max_length=64)
    environment: str = Field(min_length=1, max_length=32)
    function: str = Field(min_length=1, max_length=128)
    inputSchema: dict[str, Any] | None = None


class AiGatewayPublic(BaseModel):
    enabled: bool = Field(description="Mirrors IMPRUN_AI_GATEWAY.")
    status: str = Field(description="`Running` when it serves; else why not (`Pending`, `Disabled`, …).")
    message: str
    mcpUrl: str
    chatUrl: str


class McpToolPublic(BaseModel):
    name: str
    description: str | None
    gatewayId: str
    environment: str
    function: str
    inputSchema: dict[str, Any] | None = Field(description="Null while the function is not published there.")
    inputSchemaFrom: Literal["registry", "function"]
    createdAt: datetime


class McpToolDeleted(BaseModel):
    name: str
    deleted: bool


def tool_public(mcp_tools: McpToolRegistry, record: McpToolRecord) -> McpToolPublic:
    tool, schema_from = mcp_tools.effective(record)
    return McpToolPublic(
        name=tool.name,
        description=tool.description,
        gatewayId=tool.gateway_id,
        environment=tool.environment,
        function=tool.function,
        inputSchema=dict(tool.input_schema) if tool.input_schema is not None else None,
        inputSchemaFrom=schema_from,
        createdAt=tool.created_at,
    )


@router.get("")
def ai_gateway_status(
    user: CurrentUser, ai_gateway_state: AiGatewayState, settings: AppSettings
) -> AiGatewayPublic:
    state = ai_gateway_state()
    base = settings.function_base_url
    return AiGatewayPublic(
        enabled=settings.ai_gateway,
        status=state.status,
        message=state.message,
        mcpUrl=f"{base}/mcp",
        chatUrl=f"{base}/ai-gateway/chat",
    )


@router.post("/mcp-tools", status_code=201)
def create_mcp_tool(body: McpToolCreate, user: CurrentUser, mcp_tools: McpTools) -> McpToolPublic:
    tool = mcp_tools.create(
        user,
        name=body.name,
        gateway_id=body.gatewayId,
        environment=body.environment,
        function=body.function,
        description=body.description,
        input_schema=body.inputSchema,
    )
    return tool_public(mcp_tools, tool)


@router.get("/mcp-tools")
def list_mcp_tools(user: CurrentUser, mcp_tools: McpTools) -> list[McpToolPublic]:
    return [tool_public(mcp_tools, t) for t in mcp_tools.list(user)]


@router.delete("/mcp-tools/{name}")
def delete_mcp_tool(name: str, user: CurrentUser, mcp_tools: McpTools) -> McpToolDeleted:
    mcp_tools.delete(user, name)
    return McpToolDeleted(name=name, deleted=True)
