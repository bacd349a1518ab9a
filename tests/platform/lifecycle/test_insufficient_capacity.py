"""No silent hang: an environment the real Ray cluster has no room for says so within a few reconcile
ticks — ``InsufficientCapacity``, with what is asked and what is free — in the API, the gateway's
condition and its events, and starts by itself, the condition gone, once another gateway frees room.

The session's head offers one ``TEST_SLOT``; each environment below asks 0.3 of it, so one gateway
(three environments, 0.9) fits and a second one has to wait for the first to go."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.store.lifecycle import environment_key
from tests.fixtures.polling import eventually
from tests.fixtures.ray import TEST_SLOT
from tests.platform.lifecycle.conftest import SMALL_BUNDLE, UniqueGateway, wait_for_phase, wait_gone

SLOTTED = {**SMALL_BUNDLE, "resources": {TEST_SLOT: 0.3}}


def failed_condition(resource: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in resource.get("conditions", []) if c["type"] == "Failed" and c["status"]), None)


def create(client: TestClient, owner: dict[str, str], gw: str) -> None:
    body = {"name": gw, "gatewayId": gw, "bundle": SLOTTED}
    response = client.post("/v1/api-gateways", json=body, headers=owner)
    assert response.status_code == 202, response.text


@pytest.mark.timeout(600)
def test_an_environment_without_room_says_so_and_starts_once_room_frees(
    lifecycle_client: TestClient, owner: dict[str, str], unique_gateway: UniqueGateway
) -> None:
    client = lifecycle_client
    holder, waiter = unique_gateway(), unique_gateway()
    create(client, owner, holder)
    wait_for_phase(client, owner, holder, "Started", timeout=180)

    create(client, owner, waiter)
    created = time.monotonic()
    seen: dict[str, Any] = {}

    def all_waiting_for_room() -> bool:
        nonlocal seen
        seen = client.get(f"/v1/api-gateways/{waiter}", headers=owner).json()
        environments = seen.get("environments", [])
        return len(environments) == 3 and all(
            (failed_condition(e) or {}).get("reason") == "InsufficientCapacity" for e in environments
        )

    assert eventually(all_waiting_for_room, timeout=120, interval=0.1), f"never InsufficientCapacity: {seen}"
    print(
        f"InsufficientCapacity on all three environments {time.monotonic() - created:.1f} s after the create"
    )
    for environment in seen["environments"]:
        assert environment["phase"] == "Starting"
        message = failed_condition(environment)["message"]  # type: ignore[index]
        assert message.startswith("The cluster has no room for the Serve app now: 1 replica waits for room: ")
        assert f"each needs {{CPU: 0.02, memory: 128 MiB, {TEST_SLOT}: 0.3}}" in message, message
        assert f"{TEST_SLOT}: 0.1}} free (short of {TEST_SLOT} by 0.2)" in message, message
        assert message.endswith(
            "It starts by itself once room frees (stop or delete another environment, or add a node)."
        )
    assert eventually(
        lambda: (
            "(InsufficientCapacity)"
            in (
                (failed_condition(client.get(f"/v1/api-gateways/{waiter}", headers=owner).json()) or {}).get(
                    "message", ""
                )
            )
        ),
        timeout=30,
    ), "the gateway's own condition names the environments and why"
    warnings = [
        event
        for event in client.get(f"/v1/api-gateways/{waiter}/events", headers=owner).json()
        if event["type"] == "Warning" and event["kind"] == "environment" and "no room" in event["message"]
    ]
    assert sorted(event["resource"] for event in warnings) == [
        environment_key(waiter, name) for name in ("dev", "prod", "staging")
    ], "one warning event per environment, not one per tick"

    assert client.delete(f"/v1/api-gateways/{holder}", headers=owner).status_code == 202
    started = wait_for_phase(client, owner, waiter, "Started", timeout=180)
    assert [failed_condition(e) for e in started["environments"]] == [None, None, None]
    assert failed_condition(started) is None

    wait_gone(client, owner, holder)
    assert client.delete(f"/v1/api-gateways/{waiter}", headers=owner).status_code == 202
    wait_gone(client, owner, waiter)
