"""``imprun gateway show``'s view of a gateway answer: phases, then why anything is not where it should be."""

from __future__ import annotations

import pytest

from imprun.cli.gateway import _print_gateway
from imprun.sdk.models import Gateway

SHORT = (
    "The cluster has no room for the Serve app now: 1 replica waits for room: each needs {CPU: 0.5, memory: "
    "256 MiB}, the only alive node has {CPU: 0.2, memory: 3000 MiB} free (short of CPU by 0.3). It starts by "
    "itself once room frees (stop or delete another environment, or add a node)."
)


def answer(**prod: object) -> Gateway:
    def environment(name: str, **fields: object) -> dict[str, object]:
        return {
            "name": name,
            "phase": "Started",
            "authType": "key-auth",
            "url": f"http://x/gw/{name}",
            **fields,
        }

    return Gateway.model_validate(
        {
            "gatewayId": "gw",
            "name": "Gw",
            "state": "Running",
            "phase": "Starting",
            "conditions": [
                {"type": "Failed", "status": True, "reason": "EnvironmentFailed", "message": "prod failed"}
            ],
            "environments": [environment("dev"), environment("staging"), environment("prod", **prod)],
        }
    )


def test_show_names_each_failed_condition_with_its_reason_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    condition = {"type": "Failed", "status": True, "reason": "InsufficientCapacity", "message": SHORT}
    _print_gateway(answer(phase="Starting", conditions=[condition]))
    out = capsys.readouterr().out
    assert "gw EnvironmentFailed: prod failed" in out
    assert f"prod InsufficientCapacity: {SHORT}" in out


def test_show_says_nothing_more_when_nothing_failed(capsys: pytest.CaptureFixture[str]) -> None:
    gateway = answer(conditions=[{"type": "Failed", "status": False, "reason": "Stuck", "message": "old"}])
    _print_gateway(gateway.model_copy(update={"conditions": []}))
    out = capsys.readouterr().out
    assert "prod" in out and "Stuck" not in out and "!" not in out
