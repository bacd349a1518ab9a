"""``/v1/api-gateways/{gw}/functions`` and ``/deployments``: drafts, history, publish, promote, debug-run.

Function names may contain ``/`` (``reports/daily``), so ``{fn}`` is a path parameter; the action
routes (``…/history``, ``…/publish``, ``…/deploy-to-stage``, ``…/debug``) are declared before the plain
ones, and no function name may end in an action word, so every URL has one meaning. The work happens
in ``imprun.functions.FunctionService``; this module validates bodies and shapes responses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from imprun.api.deps import CurrentUser, DebugRuns, DebugRuntime, DebugThreads, Functions, UserQuotas
from imprun.domain.functions import (
    DEFAULT_METHODS,
    DEFAULT_TIMEOUT_SECONDS,
    HTTP_METHODS,
    Deployment,
    Description,
    FunctionCode,
    FunctionName,
    FunctionVersion,
    HttpMethods,
    PublishedVersion,
    TimeoutSeconds,
)
from imprun.domain.naming import EnvironmentName
from imprun.errors import Unavailable
from imprun.functions import FunctionView, debug_invocation
from imprun.observability.logs import request_id_var

router = APIRouter(prefix="/v1/api-gateways", tags=["functions"])

DEBUG_ENVIRONMENT: EnvironmentName = "dev"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCreate(_Request):
    name: FunctionName
    code: FunctionCode
    description: Description | None = None
    methods: HttpMethods = DEFAULT_METHODS
    timeoutSeconds: TimeoutSeconds = DEFAULT_TIMEOUT_SECONDS


class FunctionPatch(_Request):
    code: FunctionCode | None = None
    description: Description | None = None
    methods: HttpMethods | None = None
    timeoutSeconds: TimeoutSeconds | None = None
    changelog: str | None = Field(default=None, max_length=1000)


class PublishRequest(_Request):
    environment: EnvironmentName


class DeployRequest(_Request):
    targetStage: EnvironmentName
    from_: EnvironmentName | None = Field(default=None, alias="from")


class DebugRequest(_Request):
    code: FunctionCode | None = None
    method: str = "POST"
    path: str = Field(default="", max_length=2048)
    query: dict[str, str | list[str]] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method.upper() not in HTTP_METHODS:
            raise ValueError(f"unknown HTTP method {method!r}; use one of {list(HTTP_METHODS)}")
        return method.upper()


def _absent_when_none(value: object) -> bool:
    return value is None


class PublicationPublic(BaseModel):
    version: int
    publishedAt: datetime
    publishedBy: str
    promotedFrom: EnvironmentName | None


class FunctionPublic(BaseModel):
    gatewayId: str
    name: str
    description: str
    version: int
    hash: str
    methods: list[str]
    timeoutSeconds: float
    inputSchema: dict[str, Any]
    outputSchema: dict[str, Any] | None
    createdAt: datetime
    createdBy: str
    updatedAt: datetime
    updatedBy: str
    published: dict[str, PublicationPublic] = Field(description="Where it is published, by environment.")
    code: str | None = Field(
        default=None, exclude_if=_absent_when_none, description="Absent in listings: GET one function for it."
    )


class PublishedPublic(BaseModel):
    name: str
    environment: EnvironmentName
    version: int
    hash: str
    publishedAt: datetime
    publishedBy: str
    promotedFrom: EnvironmentName | None


class FunctionVersionPublic(BaseModel):
    version: int
    hash: str
    changelog: str
    author: str
    at: datetime
    code: str | None = Field(
        default=None, exclude_if=_absent_when_none, description="Present only with `includeCode=true`."
    )


class DeploymentPublic(BaseModel):
    function: str
    environment: EnvironmentName
    version: int
    promotedFrom: EnvironmentName | None
    by: str
    at: datetime


class DebugLogPublic(BaseModel):
    time: str
    level: str
    message: str


class DebugResultPublic(BaseModel):
    status: int
    headers: dict[str, str]
    body: Any = Field(description="The function's answer, parsed when it is JSON.")
    logs: list[DebugLogPublic]
    durationMs: float


class FunctionDeleted(BaseModel):
    name: str
    deleted: bool
    unpublishedFrom: list[EnvironmentName] = Field(description="The environments it was published in.")


def function_public(view: FunctionView, *, include_code: bool = True) -> FunctionPublic:
    draft = view.draft
    return FunctionPublic(
        gatewayId=draft.gateway_id,
        name=draft.name,
        description=draft.description,
        version=draft.version,
        hash=draft.hash,
        methods=list(draft.methods),
        timeoutSeconds=draft.timeout_seconds,
        inputSchema=draft.input_schema,
        outputSchema=draft.output_schema,
        createdAt=draft.created_at,
        createdBy=draft.created_by,
        updatedAt=draft.updated_at,
        updatedBy=draft.updated_by,
        published={
            p.environment: PublicationPublic(
                version=p.version,
                publishedAt=p.published_at,
                publishedBy=p.published_by,
                promotedFrom=p.promoted_from,
            )
            for p in view.publications
        },
        code=draft.code if include_code else None,
    )


def published_public(published: PublishedVersion) -> PublishedPublic:
    return PublishedPublic(
        name=published.name,
        environment=published.environment,
        version=published.version,
        hash=published.hash,
        publishedAt=published.published_at,
        publishedBy=published.published_by,
        promotedFrom=published.promoted_from,
    )


def version_public(entry: FunctionVersion, *, include_code: bool) -> FunctionVersionPublic:
    return FunctionVersionPublic(
        version=entry.version,
        hash=entry.hash,
        changelog=entry.changelog,
        author=entry.author,
        at=entry.at,
        code=entry.code if include_code else None,
    )


def deployment_public(deployment: Deployment) -> DeploymentPublic:
    return DeploymentPublic(
        function=deployment.function,
        environment=deployment.environment,
        version=deployment.version,
        promotedFrom=deployment.promoted_from,
        by=deployment.by,
        at=deployment.at,
    )


@router.post("/{gw}/functions", status_code=201)
def create_function(
    gw: str, body: FunctionCreate, user: CurrentUser, functions: Functions, quotas: UserQuotas
) -> FunctionPublic:
    quotas.check_code(body.code)
    quotas.check_new_function(len(functions.list_functions(gw, user)))
    view = functions.create(
        gw,
        user,
        name=body.name,
        code=body.code,
        description=body.description,
        methods=body.methods,
        timeout_seconds=body.timeoutSeconds,
    )
    return function_public(view)


@router.get("/{gw}/functions")
def list_functions(gw: str, user: CurrentUser, functions: Functions) -> list[FunctionPublic]:
    """Every draft without its code (GET one function for the code)."""
    return [function_public(view, include_code=False) for view in functions.list_functions(gw, user)]


@router.get("/{gw}/deployments")
def list_deployments(
    gw: str,
    user: CurrentUser,
    functions: Functions,
    function: str | None = Query(default=None, max_length=128),
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[DeploymentPublic]:
    deployments = functions.deployments(gw, user, function=function, limit=limit)
    return [deployment_public(d) for d in deployments]


@router.get("/{gw}/functions/{fn:path}/history")
def function_history(
    gw: str,
    fn: str,
    user: CurrentUser,
    functions: Functions,
    limit: int = Query(default=100, ge=1, le=1000),
    includeCode: bool = Query(default=False),
) -> list[FunctionVersionPublic]:
    versions = functions.history(gw, fn, user, limit=limit)
    return [version_public(v, include_code=includeCode) for v in versions]


@router.post("/{gw}/functions/{fn:path}/publish")
def publish_function(
    gw: str, fn: str, body: PublishRequest, user: CurrentUser, functions: Functions
) -> PublishedPublic:
    return published_public(functions.publish(gw, fn, user, environment=body.environment))


@router.post("/{gw}/functions/{fn:path}/deploy-to-stage")
def deploy_function(
    gw: str, fn: str, body: DeployRequest, user: CurrentUser, functions: Functions
) -> PublishedPublic:
    published = functions.deploy_to_stage(gw, fn, user, target=body.targetStage, source=body.from_)
    return published_public(published)


@router.post("/{gw}/functions/{fn:path}/debug")
async def debug_function(
    gw: str,
    fn: str,
    body: DebugRequest,
    user: CurrentUser,
    functions: Functions,
    function_runtime: DebugRuntime,
    debug_runs: DebugRuns,
    debug_threads: DebugThreads,
) -> DebugResultPublic:
    """Run the draft (or the given code) in the dev sandbox without publishing it.

    A user has at most ``IMPRUN_DEBUG_RUNS_PER_USER`` runs at once (429 past them); a run waits on
    threads of its own (``IMPRUN_DEBUG_RUN_THREADS``), never on the pool serving the other routes."""
    code = await anyio.to_thread.run_sync(lambda: functions.debug_code(gw, fn, user, code=body.code))
    runtime = function_runtime
    if runtime is None:
        raise Unavailable("the data plane is not running: debug-run needs Ray")
    invocation = debug_invocation(
        function=fn,
        method=body.method,
        path=body.path,
        query=body.query,
        headers=body.headers,
        body=body.body,
        request_id=request_id_var.get() or uuid.uuid4().hex,
    )
    release = debug_runs.acquire(user.id)
    try:
        result: dict[str, Any] = await anyio.to_thread.run_sync(
            lambda: runtime.debug(gw, DEBUG_ENVIRONMENT, code, invocation), limiter=debug_threads
        )
    finally:
        release()
    return DebugResultPublic.model_validate(result)


@router.get("/{gw}/functions/{fn:path}")
def get_function(gw: str, fn: str, user: CurrentUser, functions: Functions) -> FunctionPublic:
    return function_public(functions.get(gw, fn, user))


@router.patch("/{gw}/functions/{fn:path}")
def patch_function(
    gw: str, fn: str, body: FunctionPatch, user: CurrentUser, functions: Functions, quotas: UserQuotas
) -> FunctionPublic:
    quotas.check_code(body.code)
    view = functions.update(
        gw,
        fn,
        user,
        code=body.code,
        description=body.description,
        methods=body.methods,
        timeout_seconds=body.timeoutSeconds,
        changelog=body.changelog,
    )
    return function_public(view)


@router.delete("/{gw}/functions/{fn:path}")
def delete_function(gw: str, fn: str, user: CurrentUser, functions: Functions) -> FunctionDeleted:
    unpublished = functions.delete(gw, fn, user)
    return FunctionDeleted(name=fn, deleted=True, unpublishedFrom=unpublished)
