"""``/v1/ai-gateway``: the AI gateway's status and its tool registry (``mcp-tools``).

The registry's rules live in ``imprun.ai.registry``; this module validates bodies and shapes
responses. ``GET /v1/ai-gateway`` says whether the ``ai-gateway`` application is deployed and where
its MCP and chat endpoints answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from imprun.api.context import ControlPlane
from imprun.api.deps import CurrentUser, Plane
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


def tool_public(plane: ControlPlane, record: McpToolRecord) -> dict[str, Any]:
    tool, schema_from = plane.mcp_tools.effective(record)
    return {
        "name": tool.name,
        "description": tool.description,
        "gatewayId": tool.gateway_id,
        "environment": tool.environment,
        "function": tool.function,
        "inputSchema": tool.input_schema,
        "inputSchemaFrom": schema_from,
        "createdAt": tool.created_at,
    }


@router.get("")
def ai_gateway_status(user: CurrentUser, plane: Plane) -> dict[str, Any]:
    state = plane.ai_gateway_state()
    base = plane.settings.function_base_url
    return {
        "enabled": plane.settings.ai_gateway,
        "status": state.status,
        "message": state.message,
        "mcpUrl": f"{base}/mcp",
        "chatUrl": f"{base}/ai-gateway/chat",
    }


@router.post("/mcp-tools", status_code=201)
def create_mcp_tool(body: McpToolCreate, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    tool = plane.mcp_tools.create(
        user,
        name=body.name,
        gateway_id=body.gatewayId,
        environment=body.environment,
        function=body.function,
        description=body.description,
        input_schema=body.inputSchema,
    )
    return tool_public(plane, tool)


@router.get("/mcp-tools")
def list_mcp_tools(user: CurrentUser, plane: Plane) -> list[dict[str, Any]]:
    return [tool_public(plane, t) for t in plane.mcp_tools.list(user)]


@router.delete("/mcp-tools/{name}")
def delete_mcp_tool(name: str, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    plane.mcp_tools.delete(user, name)
    return {"name": name, "deleted": True}
