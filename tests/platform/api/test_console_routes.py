"""The console-support routes' answers that need no data plane: auth, ownership, bad input, no Ray."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_runtime_definitions_need_a_session_and_list_imp_first(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    assert client.get("/v1/runtime/definitions").status_code == 401
    response = client.get("/v1/runtime/definitions", headers=auth_headers)
    assert response.status_code == 200
    modules = response.json()["modules"]
    assert modules[0]["module"] == "imp"
    fetch = next(m for m in modules[0]["members"] if m["name"] == "fetch")
    assert fetch["kind"] == "function" and fetch["signature"].startswith("(url: str")
    assert {"json", "math", "datetime"} <= {m["module"] for m in modules}


def test_a_call_needs_your_own_gateway_and_a_method_token(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    unknown = client.post(
        "/v1/api-gateways/nobody-s-gateway/environments/dev/call",
        json={"function": "f"},
        headers=auth_headers,
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    bad = client.post(
        "/v1/api-gateways/gw/environments/dev/call",
        json={"function": "f", "method": "GET /etc/passwd"},
        headers=auth_headers,
    )
    assert bad.status_code == 422 and "method" in bad.json()["error"]["message"]
    extra = client.post(
        "/v1/api-gateways/gw/environments/dev/call",
        json={"function": "f", "url": "http://x"},
        headers=auth_headers,
    )
    assert extra.status_code == 422, "no field may name another address"


def test_the_tools_of_an_unknown_grant_are_not_found(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    app = client.post("/v1/applications", json={"name": "agents"}, headers=auth_headers).json()[
        "applicationId"
    ]
    response = client.get(f"/v1/applications/{app}/grants/grant_nope/tools", headers=auth_headers)
    assert response.status_code == 404 and "grant_nope" in response.json()["error"]["message"]


def test_metrics_without_a_data_plane_say_where_the_series_are(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    created = client.post("/v1/api-gateways", json={"name": "metrics without ray"}, headers=auth_headers)
    assert created.status_code == 202, created.text
    gw = created.json()["gatewayId"]
    response = client.get(f"/v1/api-gateways/{gw}/metrics", headers=auth_headers)
    assert response.status_code == 503
    assert "ray_imprun_function_" in response.json()["error"]["message"]
    assert client.get("/v1/api-gateways/someone-else/metrics", headers=auth_headers).status_code == 404
    client.delete(f"/v1/api-gateways/{gw}", headers=auth_headers)
