"""Honest reservations: gateways created with the default bundle all start on the session's Ray head,
however few CPUs it has, because a replica reserves what an idle one uses, not its bundle's CPU.

Reserving the bundle's 0.5 CPU per replica (1.5 per gateway) let only one such gateway start on a
2-CPU head; the test creates one gateway more than would fit at that rate."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from imprun.domain.gateway import Bundle
from imprun.drivers.local_ray import LocalRayServeDriver
from tests.platform.lifecycle.conftest import UniqueGateway, wait_for_phase, wait_gone


@pytest.mark.timeout(900)
def test_more_default_gateways_than_their_bundle_cpu_would_fit_all_start(
    lifecycle_client: TestClient,
    owner: dict[str, str],
    unique_gateway: UniqueGateway,
    ray_driver: LocalRayServeDriver,
) -> None:
    head_cpus = sum(node.total.get("CPU", 0.0) for node in ray_driver.cluster_resources().nodes)
    count = math.floor(head_cpus / (3 * Bundle().cpu)) + 1
    gateways = [unique_gateway() for _ in range(count)]
    for gw in gateways:
        response = lifecycle_client.post(
            "/v1/api-gateways", json={"name": gw, "gatewayId": gw}, headers=owner
        )
        assert response.status_code == 202, response.text
        assert response.json()["bundle"]["cpu"] == Bundle().cpu
    try:
        for gw in gateways:
            started = wait_for_phase(lifecycle_client, owner, gw, "Started", timeout=300)
            assert all(not e["conditions"] for e in started["environments"]), started
    finally:
        for gw in gateways:
            lifecycle_client.delete(f"/v1/api-gateways/{gw}", headers=owner)
        for gw in gateways:
            wait_gone(lifecycle_client, owner, gw, timeout=180)
