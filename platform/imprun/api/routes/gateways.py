"""``/v1/api-gateways``: create, list, get, patch state / promotion pipeline, delete, events,
and the gateway's environments (list, patch auth type and rate limit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from imprun.api.deps import AppSettings, CurrentUser, Gateways, SharedTierLoads, UserQuotas
from imprun.domain.conditions import Condition
from imprun.domain.environment import AuthType, Environment, RateLimit
from imprun.domain.gateway import Bundle, Gateway, PromotionPipeline, Tier
from imprun.domain.phases import DesiredState, Phase
from imprun.store.events import Event
from imprun.store.shared_loads import LoadedOn

router = APIRouter(prefix="/v1/api-gateways", tags=["gateways"])


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewayCreate(_Request):
    name: str = Field(min_length=1, max_length=100)
    gatewayId: str | None = Field(default=None, min_length=1, max_length=64)
    bundle: Bundle | None = None


class GatewayPatch(_Request):
    state: Literal["Running", "Stopped"] | None = None
    bundle: Bundle | None = Field(
        default=None,
        description="The new bundle, whole; its tier moves the environments without dropping calls.",
    )
    promotionPipeline: PromotionPipeline | None = None


class EnvironmentPatch(_Request):
    authType: AuthType | None = None
    rateLimit: RateLimit | None = None


class LoadedOnPublic(BaseModel):
    replica: str = Field(description="The shared-runtime replica holding the environment.")
    node: str = Field(description="The Ray node the replica runs on.")


class EnvironmentPublic(BaseModel):
    name: str
    state: DesiredState
    phase: Phase
    url: str = Field(description="Where the environment's functions answer on the data plane.")
    authType: AuthType
    rateLimit: RateLimit | None
    conditions: list[Condition]
    tier: Tier = Field(description="The gateway's tier: where this environment runs.")
    loadedOn: list[LoadedOnPublic] = Field(
        description="On the shared tier, the replicas that have the environment loaded now (empty while "
        "it is idle: the next call loads it); empty on the dedicated tier."
    )


class GatewayPublic(BaseModel):
    gatewayId: str
    name: str
    state: DesiredState
    phase: Phase
    bundle: Bundle
    promotionPipeline: PromotionPipeline
    conditions: list[Condition]
    createdAt: datetime
    updatedAt: datetime
    environments: list[EnvironmentPublic]


class GatewayEventPublic(BaseModel):
    """One event of a gateway's log; the keys whose value would be null are left out."""

    model_config = ConfigDict(validate_by_name=True)

    id: str
    kind: str = Field(description='"gateway" or "environment".')
    resource: str = Field(description='The gateway id, or "<gateway>/<environment>".')
    type: str = Field(description='"Normal" or "Warning".')
    reason: str
    message: str
    at: datetime
    actor: str
    from_: str | None = Field(default=None, alias="from", description="The phase before a transition.")
    to: str | None = Field(default=None, description="The phase after a transition.")
    step: str | None = None
    startedAt: datetime | None = None


def environment_public(
    environment: Environment, settings: AppSettings, tier: Tier, loaded_on: list[LoadedOn] | None = None
) -> EnvironmentPublic:
    return EnvironmentPublic(
        name=environment.name,
        state=environment.state,
        phase=environment.phase,
        url=f"{settings.function_base_url}/{environment.gateway_id}/{environment.name}",
        authType=environment.auth_type,
        rateLimit=environment.rate_limit,
        conditions=list(environment.conditions),
        tier=tier,
        loadedOn=[LoadedOnPublic(replica=where.replica, node=where.node) for where in loaded_on or []],
    )


def gateway_public(
    gateway: Gateway,
    environments: list[Environment],
    settings: AppSettings,
    loads: SharedTierLoads | None = None,
) -> GatewayPublic:
    shared = gateway.bundle.tier is Tier.SHARED
    loaded = loads.of_gateway(gateway.gateway_id) if loads is not None and environments and shared else {}
    return GatewayPublic(
        gatewayId=gateway.gateway_id,
        name=gateway.name,
        state=gateway.state,
        phase=gateway.phase,
        bundle=gateway.bundle,
        promotionPipeline=gateway.promotion_pipeline,
        conditions=list(gateway.conditions),
        createdAt=gateway.created_at,
        updatedAt=gateway.updated_at,
        environments=[
            environment_public(e, settings, gateway.bundle.tier, loaded.get(e.name)) for e in environments
        ],
    )


def event_public(event: Event) -> GatewayEventPublic:
    return GatewayEventPublic(
        id=event.id,
        kind=event.kind,
        resource=event.resource,
        type=event.type,
        reason=event.reason,
        message=event.message,
        at=event.at,
        actor=event.actor,
        from_=event.from_phase,
        to=event.to_phase,
        step=event.step,
        startedAt=event.started_at,
    )


@router.post("", status_code=202)
def create_gateway(
    body: GatewayCreate,
    user: CurrentUser,
    gateway_commands: Gateways,
    quotas: UserQuotas,
    settings: AppSettings,
) -> GatewayPublic:
    owned = gateway_commands.gateways.owned_by(user.id)
    quotas.check_new_gateway(len(owned), body.bundle)
    bundle = (body.bundle or Bundle()).with_default_tier(Tier(settings.default_tier))
    gateway = gateway_commands.create(
        name=body.name, owner_id=user.id, gateway_id=body.gatewayId, bundle=bundle
    )
    return gateway_public(gateway, [], settings)


@router.get("")
def list_gateways(
    user: CurrentUser, gateway_commands: Gateways, settings: AppSettings, loads: SharedTierLoads
) -> list[GatewayPublic]:
    commands = gateway_commands
    return [
        gateway_public(g, commands.environments_of(g), settings, loads)
        for g in commands.gateways.owned_by(user.id)
    ]


@router.get("/{gw}")
def get_gateway(
    gw: str, user: CurrentUser, gateway_commands: Gateways, settings: AppSettings, loads: SharedTierLoads
) -> GatewayPublic:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return gateway_public(gateway, commands.environments_of(gateway), settings, loads)


@router.patch("/{gw}")
def patch_gateway(
    gw: str,
    body: GatewayPatch,
    user: CurrentUser,
    gateway_commands: Gateways,
    quotas: UserQuotas,
    settings: AppSettings,
) -> GatewayPublic:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    if body.bundle is not None:
        quotas.check_bundle(body.bundle)
        bundle = body.bundle.with_default_tier(gateway.bundle.tier)
        gateway = commands.set_bundle(gateway, bundle, actor=user.id)
    if body.promotionPipeline is not None:
        gateway = commands.set_promotion_pipeline(gateway, body.promotionPipeline)
    if body.state is not None:
        gateway = commands.set_state(gateway, DesiredState(body.state), actor=user.id)
    return gateway_public(gateway, commands.environments_of(gateway), settings)


@router.delete("/{gw}", status_code=202)
def delete_gateway(
    gw: str, user: CurrentUser, gateway_commands: Gateways, settings: AppSettings
) -> GatewayPublic:
    commands = gateway_commands
    gateway = commands.delete(commands.get_owned(gw, user.id), actor=user.id)
    return gateway_public(gateway, commands.environments_of(gateway), settings)


@router.get("/{gw}/events", response_model_exclude_none=True)
def gateway_events(
    gw: str, user: CurrentUser, gateway_commands: Gateways, limit: int = Query(default=200, ge=1, le=1000)
) -> list[GatewayEventPublic]:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return [event_public(event) for event in commands.events_of(gateway, limit=limit)]


@router.get("/{gw}/environments")
def list_environments(
    gw: str, user: CurrentUser, gateway_commands: Gateways, settings: AppSettings, loads: SharedTierLoads
) -> list[EnvironmentPublic]:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    return gateway_public(gateway, commands.environments_of(gateway), settings, loads).environments


@router.get("/{gw}/environments/{env}")
def get_environment(
    gw: str,
    env: str,
    user: CurrentUser,
    gateway_commands: Gateways,
    settings: AppSettings,
    loads: SharedTierLoads,
) -> EnvironmentPublic:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    environment = commands.get_environment(gateway, env)
    loaded = loads.of_gateway(gw).get(environment.name) if gateway.bundle.tier is Tier.SHARED else None
    return environment_public(environment, settings, gateway.bundle.tier, loaded)


@router.patch("/{gw}/environments/{env}")
def patch_environment(
    gw: str,
    env: str,
    body: EnvironmentPatch,
    user: CurrentUser,
    gateway_commands: Gateways,
    settings: AppSettings,
) -> EnvironmentPublic:
    commands = gateway_commands
    gateway = commands.get_owned(gw, user.id)
    kwargs: dict[str, Any] = {}
    if "rateLimit" in body.model_fields_set:
        kwargs["rate_limit"] = body.rateLimit
    environment = commands.configure_environment(
        gateway, env, auth_type=body.authType, actor=user.id, **kwargs
    )
    return environment_public(environment, settings, gateway.bundle.tier)
