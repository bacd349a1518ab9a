"""``/v1/applications``: applications (create, list, get, patch, delete), their grants (create,
list, regenerate the key, revoke) and what they spent on the chat endpoint's LLMs this period.

The key is in exactly two responses — creating a grant and regenerating its key — and those are
sent with ``Cache-Control: no-store``; listings show only the short ``keyPrefix``. The work happens
in ``imprun.access.AccessService``; this module validates bodies and shapes responses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from imprun.access import IssuedKey
from imprun.api.deps import Access, AppMongo, AppSettings, CurrentUser
from imprun.domain.access import GrantStatus
from imprun.domain.conditions import Condition
from imprun.domain.environment import RateLimit
from imprun.domain.naming import EnvironmentName
from imprun.store.applications import ApplicationRecord, GrantRecord
from imprun.store.llm_usage import LlmUsageRepository, period_start

router = APIRouter(prefix="/v1/applications", tags=["applications"])


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationCreate(_Request):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    organization: str | None = Field(default=None, min_length=1, max_length=100)


class ApplicationPatch(_Request):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    organization: str | None = Field(default=None, min_length=1, max_length=100)


class GrantCreate(_Request):
    gatewayId: str = Field(min_length=1, max_length=64)
    environment: EnvironmentName
    rateLimit: RateLimit | None = None
    """Optional per-application limit; null means the environment's own limit applies."""


class ApplicationPublic(BaseModel):
    applicationId: str
    name: str
    description: str
    organization: str | None
    createdAt: datetime
    updatedAt: datetime


class ApplicationDeleted(BaseModel):
    applicationId: str
    deleted: bool
    revokedGrants: list[str] = Field(description="The ids of the grants revoked with it.")


class GrantPublic(BaseModel):
    grantId: str
    applicationId: str
    credentialId: str
    keyPrefix: str = Field(description="The key's first characters, to tell keys apart.")
    gatewayId: str
    environment: str
    rateLimit: RateLimit | None = Field(description="Null: the environment's own limit applies.")
    status: GrantStatus
    applied: bool = Field(description="The ingress was given the current key (it works, or will in moments).")
    conditions: list[Condition] = Field(
        description="Why the key has not reached the ingress: a Failed condition (permanent: it will not)."
    )
    createdAt: datetime
    keyIssuedAt: datetime


class IssuedGrantPublic(GrantPublic):
    apiKey: str = Field(description="Shown only in this answer.")


class LlmLimitsPublic(BaseModel):
    callsPerPeriod: int
    tokensPerPeriod: int
    requestsPerMinute: int


class LlmUsagePublic(BaseModel):
    applicationId: str
    periodStart: datetime
    periodEnd: datetime
    calls: int
    inputTokens: int
    outputTokens: int
    limits: LlmLimitsPublic


def application_public(application: ApplicationRecord) -> ApplicationPublic:
    return ApplicationPublic(
        applicationId=application.application_id,
        name=application.name,
        description=application.description,
        organization=application.organization,
        createdAt=application.created_at,
        updatedAt=application.updated_at,
    )


def grant_public(grant: GrantRecord) -> GrantPublic:
    return GrantPublic(
        grantId=grant.grant_id,
        applicationId=grant.application_id,
        credentialId=grant.credential_id,
        keyPrefix=grant.key.key_prefix,
        gatewayId=grant.gateway_id,
        environment=grant.environment,
        rateLimit=grant.rate_limit,
        status=grant.status,
        applied=grant.key_applied,
        conditions=list(grant.conditions),
        createdAt=grant.created_at,
        keyIssuedAt=grant.key_issued_at,
    )


def issued_public(issued: IssuedKey, response: Response) -> IssuedGrantPublic:
    response.headers["Cache-Control"] = "no-store"
    return IssuedGrantPublic(**dict(grant_public(issued.grant)), apiKey=issued.api_key)


@router.post("", status_code=201)
def create_application(body: ApplicationCreate, user: CurrentUser, access: Access) -> ApplicationPublic:
    application = access.create_application(
        user, name=body.name, description=body.description, organization=body.organization
    )
    return application_public(application)


@router.get("")
def list_applications(user: CurrentUser, access: Access) -> list[ApplicationPublic]:
    return [application_public(a) for a in access.list_applications(user)]


@router.get("/{app}")
def get_application(app: str, user: CurrentUser, access: Access) -> ApplicationPublic:
    return application_public(access.get_application(app, user))


@router.get("/{app}/llm-usage")
def get_llm_usage(
    app: str, user: CurrentUser, access: Access, mongo: AppMongo, settings: AppSettings
) -> LlmUsagePublic:
    """Calls and tokens of ``/ai-gateway/chat`` in the current budget period, against the limits."""
    access.get_application(app, user)
    settings = settings
    period = settings.ai_chat_period_seconds
    start = period_start(time.time(), period)
    used = LlmUsageRepository(mongo[settings.sys_db_name]).usage(app, start)
    return LlmUsagePublic(
        applicationId=app,
        periodStart=datetime.fromtimestamp(start, UTC),
        periodEnd=datetime.fromtimestamp(start + period, UTC),
        calls=used.calls,
        inputTokens=used.input_tokens,
        outputTokens=used.output_tokens,
        limits=LlmLimitsPublic(
            callsPerPeriod=settings.ai_chat_calls_per_period,
            tokensPerPeriod=settings.ai_chat_tokens_per_period,
            requestsPerMinute=settings.ai_chat_requests_per_minute,
        ),
    )


@router.patch("/{app}")
def patch_application(
    app: str, body: ApplicationPatch, user: CurrentUser, access: Access
) -> ApplicationPublic:
    changes: dict[str, Any] = {"name": body.name, "description": body.description}
    if "organization" in body.model_fields_set:
        changes["organization"] = body.organization
    return application_public(access.update_application(app, user, **changes))


@router.delete("/{app}")
def delete_application(app: str, user: CurrentUser, access: Access) -> ApplicationDeleted:
    revoked = access.delete_application(app, user)
    return ApplicationDeleted(applicationId=app, deleted=True, revokedGrants=revoked)


@router.post("/{app}/grants", status_code=201)
def create_grant(
    app: str, body: GrantCreate, user: CurrentUser, access: Access, response: Response
) -> IssuedGrantPublic:
    issued = access.create_grant(
        app, user, gateway_id=body.gatewayId, environment=body.environment, rate_limit=body.rateLimit
    )
    return issued_public(issued, response)


@router.get("/{app}/grants")
def list_grants(app: str, user: CurrentUser, access: Access) -> list[GrantPublic]:
    return [grant_public(g) for g in access.grants_of(app, user)]


@router.post("/{app}/grants/{grant}/regenerate")
def regenerate_key(
    app: str, grant: str, user: CurrentUser, access: Access, response: Response
) -> IssuedGrantPublic:
    return issued_public(access.regenerate(app, grant, user), response)


@router.delete("/{app}/grants/{grant}", status_code=202)
def revoke_grant(app: str, grant: str, user: CurrentUser, access: Access) -> GrantPublic:
    return grant_public(access.revoke(app, grant, user))
