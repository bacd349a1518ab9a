"""The environment document: one of a gateway's dev, staging and prod, served by one Serve app.

The gateway reconciler creates the three environment records and sets their desired state (to start,
stop or delete them together); the environment reconciler deploys or removes the Serve app named
``<gw>-<env>`` behind route ``/<gw>/<env>``. Besides its lifecycle, an environment carries how callers
authenticate (``key-auth`` with API keys, or ``none`` for a public environment) and an optional
per-consumer rate limit published to the ingress. Pure pydantic models, camelCase on the wire.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from imprun.domain._model import DomainModel
from imprun.domain.naming import EnvironmentName, GatewayId, route_prefix, serve_app_name
from imprun.domain.phases import DesiredState, Phase
from imprun.domain.resource import LifecycleResource


class AuthType(StrEnum):
    KEY_AUTH = "key-auth"
    NONE = "none"


class RateLimit(DomainModel):
    """At most ``count`` requests per consumer in each ``window_seconds`` window."""

    count: int = Field(gt=0)
    window_seconds: int = Field(gt=0)


class Environment(LifecycleResource):
    gateway_id: GatewayId
    name: EnvironmentName
    auth_type: AuthType = AuthType.KEY_AUTH
    rate_limit: RateLimit | None = None

    @classmethod
    def new(
        cls, *, gateway_id: str, name: EnvironmentName, state: DesiredState, now: datetime
    ) -> Environment:
        """An environment record as the gateway reconciler creates it: in phase Creating."""
        return cls(
            gateway_id=gateway_id,
            name=name,
            state=state,
            phase=Phase.CREATING,
            created_at=now,
            updated_at=now,
            phase_since=now,
        )

    @property
    def serve_app_name(self) -> str:
        return serve_app_name(self.gateway_id, self.name)

    @property
    def route_prefix(self) -> str:
        return route_prefix(self.gateway_id, self.name)
