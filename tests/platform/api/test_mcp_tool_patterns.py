"""``POST /v1/ai-gateway/mcp-tools`` refuses an input schema whose patterns RE2 cannot compile."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_pattern_that_cannot_be_matched_in_linear_time_is_refused(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    body = {
        "name": "lookup",
        "gatewayId": "no-such-gateway",
        "environment": "prod",
        "function": "lookup",
        "inputSchema": {
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": r"^(\w+)\1$"}},
        },
    }
    refused = client.post("/v1/ai-gateway/mcp-tools", json=body, headers=auth_headers)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid" and "linear time" in error["message"]
    assert error["details"]["field"] == "inputSchema"
