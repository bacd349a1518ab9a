"""``/v1/api-gateways``: create, list, get, patch state / promotion pipeline, delete, events,
and the gateway's environments (list, patch auth type and rate limit)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from imprun.api.deps import CurrentUser, Plane
from imprun.domain.environment import AuthType, Environment, RateLimit
from imprun.domain.gateway import Bundle, Gateway, PromotionPipeline
from imprun.domain.phases import DesiredState
from imprun.settings import Settings

router = APIRouter(prefix="/v1/api-gateways", tags=["gateways"])


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewayCreate(_Request):
    name: str = Field(min_length=1, max_length=100)
    gatewayId: str | None = Field(default=None, min_length=1, max_length=64)
    bundle: Bundle | None = None


class GatewayPatch(_Request):
    state: Literal["Running", "Stopped"] | None = None
    promotionPipeline: PromotionPipeline | None = None


class EnvironmentPatch(_Request):
    authType: AuthType | None = None
    rateLimit: RateLimit | None = None


def environment_public(environment: Environment, settings: Settings) -> dict[str, Any]:
    return {
        "name": environment.name,
        "state": environment.state.value,
        "phase": environment.phase.value,
        "url": f"{settings.function_base_url}/{environment.gateway_id}/{environment.name}",
        "authType": environment.auth_type.value,
        "rateLimit": environment.rate_limit.model_dump(mode="json") if environment.rate_limit else None,
        "conditions": [c.model_dump(mode="json") for c in environment.conditions],
    }


def gateway_public(gateway: Gateway, environments: list[Environment], settings: Settings) -> dict[str, Any]:
    return {
        "gatewayId": gateway.gateway_id,
        "name": gateway.name,
        "state": gateway.state.value,
        "phase": gateway.phase.value,
        "bundle": gateway.bundle.model_dump(mode="json"),
        "promotionPipeline": gateway.promotion_pipeline.model_dump(mode="json"),
        "conditions": [c.model_dump(mode="json") for c in gateway.conditions],
        "createdAt": gateway.created_at,
        "updatedAt": gateway.updated_at,
        "environments": [environment_public(e, settings) for e in environments],
    }


@router.post("", status_code=202)
def create_gateway(body: GatewayCreate, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    owned = plane.gateway_commands.gateways.owned_by(user.id)
    plane.quotas.check_new_gateway(len(owned), body.bundle)
    gateway = plane.gateway_commands.create(
        name=body.name, owner_id=user.id, gateway_id=body.gatewayId, bundle=body.bundle
    )
    return gateway_public(gateway, [], plane.settings)


@router.get("")
def list_gateways(user: CurrentUser, plane: Plane) -> list[dict[str, Any]]:
    commands = plane.gateway_commands
    return [
        gateway_public(g, commands.environments_of(g), plane.settings)
        for g in commands.gateways.owned_by(user.id)
    ]


@router.get("/{gw}")
def get_gateway(gw: str, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return gateway_public(gateway, commands.environments_of(gateway), plane.settings)


@router.patch("/{gw}")
def patch_gateway(gw: str, body: GatewayPatch, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    if body.promotionPipeline is not None:
        gateway = commands.set_promotion_pipeline(gateway, body.promotionPipeline)
    if body.state is not None:
        gateway = commands.set_state(gateway, DesiredState(body.state), actor=user.id)
    return gateway_public(gateway, commands.environments_of(gateway), plane.settings)


@router.delete("/{gw}", status_code=202)
def delete_gateway(gw: str, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    commands = plane.gateway_commands
    gateway = commands.delete(commands.get_owned(gw, user.id), actor=user.id)
    return gateway_public(gateway, commands.environments_of(gateway), plane.settings)


@router.get("/{gw}/events")
def gateway_events(
    gw: str, user: CurrentUser, plane: Plane, limit: int = Query(default=200, ge=1, le=1000)
) -> list[dict[str, Any]]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return [event.to_public() for event in commands.events_of(gateway, limit=limit)]


@router.get("/{gw}/environments")
def list_environments(gw: str, user: CurrentUser, plane: Plane) -> list[dict[str, Any]]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return [environment_public(e, plane.settings) for e in commands.environments_of(gateway)]


@router.get("/{gw}/environments/{env}")
def get_environment(gw: str, env: str, user: CurrentUser, plane: Plane) -> dict[str, Any]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return environment_public(commands.get_environment(gateway, env), plane.settings)


@router.patch("/{gw}/environments/{env}")
def patch_environment(
    gw: str, env: str, body: EnvironmentPatch, user: CurrentUser, plane: Plane
) -> dict[str, Any]:
    commands = plane.gateway_commands
    gateway = commands.get_owned(gw, user.id)
    kwargs: dict[str, Any] = {}
    if "rateLimit" in body.model_fields_set:
        kwargs["rate_limit"] = body.rateLimit
    environment = commands.configure_environment(
        gateway, env, auth_type=body.authType, actor=user.id, **kwargs
    )
    return environment_public(environment, plane.settings)
