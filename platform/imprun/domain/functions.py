"""Cloud functions in the domain: names, methods, timeouts, draft versions and the promotion rules.

A function lives as a *draft* (the code a developer edits, versioned from 1 on every change) and as
*published versions*, one per environment, which are what replicas run. Publishing copies the draft
to an environment; promotion (deploy-to-stage) copies what is published in one environment to the
next, honouring the gateway's ``PromotionPipeline``: when it is enabled, code enters the pipeline only
at its first stage and moves one stage at a time. The values here are frozen dataclasses; the rules
are pure functions raising ``Invalid``/``Conflict`` with what to do instead. No I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field

from imprun.domain.gateway import Gateway, PromotionPipeline
from imprun.domain.naming import ENVIRONMENT_NAMES, EnvironmentName
from imprun.domain.phases import DesiredState, Phase
from imprun.errors import Conflict, Invalid

FUNCTION_NAME_MAX_LENGTH: Final = 128
RESERVED_LAST_SEGMENTS: Final = frozenset({"history", "publish", "deploy-to-stage", "debug"})
"""A name may not end in an action of the functions API (``…/functions/{fn}/publish`` would be ambiguous)."""
_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")

HTTP_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_METHODS: Final = ("GET", "POST")
MIN_TIMEOUT_SECONDS: Final = 0.1
MAX_TIMEOUT_SECONDS: Final = 300.0
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_CODE_CHARACTERS: Final = 512 * 1024
MAX_DESCRIPTION_CHARACTERS: Final = 2000


def function_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a function name, in words for the user; None if it is valid."""
    if not 1 <= len(name) <= FUNCTION_NAME_MAX_LENGTH:
        return f"it must be 1 to {FUNCTION_NAME_MAX_LENGTH} characters long, not {len(name)}"
    if name.startswith("/") or name.endswith("/"):
        return "it must not start or end with '/'"
    if "//" in name:
        return "it must not contain '//'"
    if not _NAME.fullmatch(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_-/"))})
        return f"it contains {', '.join(repr(c) for c in bad)}; use letters, digits, '_', '-' and '/'"
    if name.startswith("_"):
        return "names starting with '_' are reserved for the platform (e.g. /_health)"
    if name.rsplit("/", 1)[-1] in RESERVED_LAST_SEGMENTS:
        return f"its last segment must not be one of {', '.join(sorted(RESERVED_LAST_SEGMENTS))}"
    return None


def validate_function_name(name: str) -> str:
    problem = function_name_problem(name)
    if problem is not None:
        raise Invalid(
            f"Invalid function name {name!r}: {problem}.",
            details={"field": "name", "value": name, "problem": problem},
        )
    return name


def _name_field(name: str) -> str:
    problem = function_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def normalize_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """Upper-cased, de-duplicated, in ``HTTP_METHODS`` order; ``ValueError`` for an unknown or empty set."""
    wanted = {m.strip().upper() for m in methods}
    unknown = sorted(wanted - set(HTTP_METHODS))
    if unknown:
        raise ValueError(f"unknown HTTP method(s) {unknown}; use some of {list(HTTP_METHODS)}")
    if not wanted:
        raise ValueError(f"give at least one method, e.g. {list(DEFAULT_METHODS)}")
    return tuple(m for m in HTTP_METHODS if m in wanted)


FunctionName = Annotated[str, AfterValidator(_name_field)]
HttpMethods = Annotated[tuple[str, ...], AfterValidator(normalize_methods)]
TimeoutSeconds = Annotated[float, Field(ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)]
FunctionCode = Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARACTERS)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARACTERS)]


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FunctionDraft:
    """The editable function: its latest code and settings, and the schema derived from that code."""

    gateway_id: str
    name: str
    code: str
    description: str
    methods: tuple[str, ...]
    timeout_seconds: float
    version: int
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def hash(self) -> str:
        return code_hash(self.code)


@dataclass(frozen=True)
class DraftChanges:
    """The fields a patch really changes (None = unchanged)."""

    code: str | None = None
    description: str | None = None
    methods: tuple[str, ...] | None = None
    timeout_seconds: float | None = None

    @property
    def changed(self) -> tuple[str, ...]:
        """The API names of the changed fields, e.g. ``("code", "timeoutSeconds")``."""
        values = (
            ("code", self.code),
            ("description", self.description),
            ("methods", self.methods),
            ("timeoutSeconds", self.timeout_seconds),
        )
        return tuple(name for name, value in values if value is not None)

    @property
    def empty(self) -> bool:
        return not self.changed


def changes_to(
    draft: FunctionDraft,
    *,
    code: str | None = None,
    description: str | None = None,
    methods: tuple[str, ...] | None = None,
    timeout_seconds: float | None = None,
) -> DraftChanges:
    """Keep only the requested values that differ from the draft: an unchanged patch makes no version."""
    return DraftChanges(
        code=code if code is not None and code != draft.code else None,
        description=description if description is not None and description != draft.description else None,
        methods=methods if methods is not None and methods != draft.methods else None,
        timeout_seconds=(
            timeout_seconds
            if timeout_seconds is not None and timeout_seconds != draft.timeout_seconds
            else None
        ),
    )


def revise(
    draft: FunctionDraft,
    changes: DraftChanges,
    *,
    schemas: tuple[dict[str, Any], dict[str, Any] | None] | None,
    at: datetime,
    by: str,
) -> FunctionDraft:
    """The next version of ``draft``; ``schemas`` (input, output) are re-derived when the code changed."""
    input_schema, output_schema = (
        schemas if schemas is not None else (draft.input_schema, draft.output_schema)
    )
    return replace(
        draft,
        code=changes.code if changes.code is not None else draft.code,
        description=changes.description if changes.description is not None else draft.description,
        methods=changes.methods if changes.methods is not None else draft.methods,
        timeout_seconds=(
            changes.timeout_seconds if changes.timeout_seconds is not None else draft.timeout_seconds
        ),
        input_schema=input_schema,
        output_schema=output_schema,
        version=draft.version + 1,
        updated_at=at,
        updated_by=by,
    )


@dataclass(frozen=True)
class FunctionVersion:
    """One entry of a function's history: the code of a version, why it changed, who, when."""

    gateway_id: str
    name: str
    version: int
    code: str
    changelog: str
    author: str
    at: datetime

    @property
    def hash(self) -> str:
        return code_hash(self.code)


@dataclass(frozen=True)
class PublishedVersion:
    """What runs in one environment (a row of ``__published_functions``)."""

    name: str
    environment: EnvironmentName
    code: str
    version: int
    methods: tuple[str, ...]
    timeout_seconds: float
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    description: str
    published_at: datetime
    published_by: str
    promoted_from: EnvironmentName | None = None

    @property
    def hash(self) -> str:
        return code_hash(self.code)

    @classmethod
    def of_draft(
        cls, draft: FunctionDraft, environment: EnvironmentName, *, at: datetime, by: str
    ) -> PublishedVersion:
        return cls(
            name=draft.name,
            environment=environment,
            code=draft.code,
            version=draft.version,
            methods=draft.methods,
            timeout_seconds=draft.timeout_seconds,
            input_schema=draft.input_schema,
            output_schema=draft.output_schema,
            description=draft.description,
            published_at=at,
            published_by=by,
        )

    def promoted_to(self, environment: EnvironmentName, *, at: datetime, by: str) -> PublishedVersion:
        """The same code and version, published in ``environment`` by promotion from this one."""
        return replace(
            self, environment=environment, published_at=at, published_by=by, promoted_from=self.environment
        )


@dataclass(frozen=True)
class Deployment:
    """One line of a gateway's deployment history."""

    gateway_id: str
    function: str
    environment: EnvironmentName
    version: int
    promoted_from: EnvironmentName | None
    by: str
    at: datetime

    @classmethod
    def of(cls, gateway_id: str, published: PublishedVersion) -> Deployment:
        return cls(
            gateway_id=gateway_id,
            function=published.name,
            environment=published.environment,
            version=published.version,
            promoted_from=published.promoted_from,
            by=published.published_by,
            at=published.published_at,
        )


# --- rules -----------------------------------------------------------------------------------------


def check_gateway_accepts_changes(gateway: Gateway) -> None:
    """Functions of a gateway being deleted can no longer be created, changed or published."""
    if gateway.state is DesiredState.DELETED or gateway.phase in (Phase.DELETING, Phase.DELETED):
        raise Conflict(
            f"gateway {gateway.gateway_id} is being deleted (phase {gateway.phase.value}); "
            "its functions can no longer change",
            details={"phase": gateway.phase.value, "state": gateway.state.value},
        )


def check_gateway_provisioned(gateway: Gateway) -> None:
    """Publishing needs the gateway's database, which exists from phase Created on (Stopped included)."""
    check_gateway_accepts_changes(gateway)
    if gateway.phase is Phase.CREATING:
        raise Conflict(
            f"gateway {gateway.gateway_id} is still being provisioned (phase Creating); publish once "
            f"GET /v1/api-gateways/{gateway.gateway_id} shows phase Created or later",
            details={"phase": gateway.phase.value},
        )


def _order(pipeline: PromotionPipeline) -> tuple[EnvironmentName, ...]:
    return pipeline.stages if pipeline.enabled else ENVIRONMENT_NAMES


def _arrows(stages: Iterable[str]) -> str:
    return " → ".join(stages)


def check_direct_publish(environment: EnvironmentName, pipeline: PromotionPipeline) -> None:
    """With the pipeline enabled, code enters only at its first stage; later stages come by promotion."""
    if not pipeline.enabled or environment not in pipeline.stages or environment == pipeline.stages[0]:
        return
    raise Conflict(
        f"the promotion pipeline ({_arrows(pipeline.stages)}) is enabled: publish to "
        f"{pipeline.stages[0]}, then use deploy-to-stage to promote to {environment}",
        details={"environment": environment, "stages": list(pipeline.stages)},
    )


def source_stage_for(
    target: EnvironmentName, pipeline: PromotionPipeline, explicit_from: EnvironmentName | None
) -> EnvironmentName:
    """The environment whose published version ``target`` receives by promotion.

    By default the stage before ``target`` (in the pipeline's stages when it is enabled, else in
    dev → staging → prod). With the pipeline enabled only that stage may be the source; with it
    disabled any other environment may be named explicitly.
    """
    if explicit_from == target:
        raise Invalid(
            f"from and targetStage are both {target}: promote from another environment",
            details={"field": "from", "value": explicit_from},
        )
    order = _order(pipeline)
    if target not in order:
        raise Conflict(
            f"{target} is not a stage of the enabled promotion pipeline ({_arrows(order)}); "
            f"publish to {target} directly",
            details={"targetStage": target, "stages": list(order)},
        )
    index = order.index(target)
    previous = order[index - 1] if index > 0 else None
    if pipeline.enabled and explicit_from not in (None, previous):
        expected = f"from {previous}" if previous else "by publishing (it is the first stage)"
        raise Conflict(
            f"the promotion pipeline ({_arrows(order)}) is enabled: {target} receives versions only "
            f"{expected}, not from {explicit_from}",
            details={"targetStage": target, "from": explicit_from, "stages": list(order)},
        )
    source = explicit_from if explicit_from is not None else previous
    if source is None:
        hint = "publish to it instead" if pipeline.enabled else "name the source environment in `from`"
        raise Conflict(
            f"{target} is the first stage ({_arrows(order)}): nothing comes before it; {hint}",
            details={"targetStage": target, "stages": list(order)},
        )
    return source
