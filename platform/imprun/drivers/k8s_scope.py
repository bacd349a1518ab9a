"""``GatewayScopedDriver``: a cluster driver that keeps per-gateway resources besides the apps.

The KubeRay driver gives each gateway a namespace (quota, network policy, MongoDB secret) that
outlives stopped environments and must go only with the gateway itself. The gateway reconciler
calls ``release_gateway`` when it drops the gateway's database; drivers without such resources (the
local Ray Serve driver) simply do not implement it. Kept apart from ``cluster`` so the
``ClusterDriver`` Protocol stays as it is and nothing here imports a client library.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["GatewayScopedDriver"]


@runtime_checkable
class GatewayScopedDriver(Protocol):
    def release_gateway(self, gateway_id: str) -> None:
        """Remove everything the driver keeps for the gateway; a gateway with nothing left is fine."""
        ...
