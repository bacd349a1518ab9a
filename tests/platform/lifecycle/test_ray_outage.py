"""Ray unreachable: a new gateway waits in its phase with error events and a Failed condition, then
converges by itself once a Ray head appears at the configured address."""

from __future__ import annotations

from pathlib import Path

import pytest

from imprun.embedded.ray_head import RayHead, start_ray_head, stop_ray_head
from imprun.settings import Settings
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices, free_port
from tests.platform.lifecycle.conftest import SMALL_BUNDLE
from tests.platform.lifecycle.control_plane_process import (
    register_owner,
    start_control_plane,
    wait_for_phase,
    wait_gone,
)


@pytest.mark.timeout(600)
def test_gateway_waits_for_ray_then_converges(services: RunningServices, tmp_path: Path) -> None:
    ray_settings = Settings(
        data_dir=tmp_path / "late-ray",
        embedded_ray_port=free_port(),
        dashboard_port=free_port(),
        serve_port=free_port(),
        log_json=False,
    )
    address = f"127.0.0.1:{ray_settings.embedded_ray_port}"
    not_yet = RunningRayHead(
        settings=ray_settings,
        head=RayHead(
            address=address,
            dashboard_url=ray_settings.dashboard_url,
            serve_url=ray_settings.data_plane_url,
            run_dir=tmp_path,
            log_path=tmp_path / "none.log",
            reused=False,
        ),
    )
    plane = start_control_plane(
        services, not_yet, log_dir=tmp_path, sys_db_name="imprun_ray_outage", wait_path="/healthz"
    )
    try:
        ready = plane.client.get("/readyz")
        assert ready.status_code == 503 and "ray" in ready.json()["error"]["message"]
        owner = register_owner(plane.client)
        gw = "late-ray-gw"
        created = plane.client.post(
            "/v1/api-gateways", json={"name": gw, "gatewayId": gw, "bundle": SMALL_BUNDLE}, headers=owner
        )
        assert created.status_code == 202

        def failing_with_an_event() -> bool:
            events = plane.client.get(f"/v1/api-gateways/{gw}/events", headers=owner).json()
            return any(e["type"] == "Warning" and "Ray" in e["message"] for e in events)

        assert eventually(failing_with_an_event, timeout=60), plane.log_tail()
        stuck = plane.client.get(f"/v1/api-gateways/{gw}", headers=owner).json()
        assert stuck["phase"] in ("Created", "Starting"), stuck
        assert eventually(
            lambda: any(
                c["type"] == "Failed"
                for e in plane.client.get(f"/v1/api-gateways/{gw}", headers=owner).json()["environments"]
                for c in e["conditions"]
            ),
            timeout=60,
        ), "repeated failures surface as a Failed condition on the environments"

        start_ray_head(ray_settings)
        wait_for_phase(plane, owner, gw, "Started", timeout=240)
        started = plane.client.get(f"/v1/api-gateways/{gw}", headers=owner).json()
        assert all(not e["conditions"] for e in started["environments"]), "the Failed condition clears"
        assert plane.client.get("/readyz").status_code == 200

        assert plane.client.delete(f"/v1/api-gateways/{gw}", headers=owner).status_code == 202
        wait_gone(plane, owner, gw)
    finally:
        plane.stop()
        stop_ray_head(ray_settings)
