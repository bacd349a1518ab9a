"""``FunctionService``: the function commands and queries behind ``/v1/api-gateways/{gw}/functions``.

Every call first resolves the caller's own gateway (another user's is "not found"). Code is checked
with ``runtime_actors.shared.contract.analyze`` whenever it is saved, published or debug-run; a problem is a
400 with ``details: [{line, column, message}]``. Drafts change by compare-and-set on their version,
so two concurrent patches cannot both claim the same version. Publishing needs the gateway's
database (phase Created or later, Stopped included); promotion copies the version *published* in the
source environment, never the draft.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from imprun.domain.functions import (
    Deployment,
    FunctionDraft,
    FunctionVersion,
    PublishedVersion,
    changes_to,
    check_direct_publish,
    check_gateway_accepts_changes,
    check_gateway_provisioned,
    revise,
    source_stage_for,
    validate_function_name,
)
from imprun.domain.gateway import Gateway
from imprun.domain.naming import ENVIRONMENT_NAMES, EnvironmentName
from imprun.errors import Conflict, Invalid, NotFound
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.reconciler import utc_now
from imprun.settings import Settings
from imprun.store.functions import (
    DeploymentLog,
    FunctionDrafts,
    FunctionHistory,
    Publication,
    PublishedFunctions,
    ensure_function_indexes,
)
from imprun.store.mongo import Mongo
from imprun.store.redis import Redis
from imprun.store.users import UserRecord
from runtime_actors.shared.contract import FunctionAnalysis, analyze


def check_code(code: str) -> FunctionAnalysis:
    """The analysis of ``code``; raises a 400 ``Invalid`` with every problem's line and column."""
    analysis = analyze(code)
    if not analysis.ok:
        first = analysis.problems[0]
        more = len(analysis.problems) - 1
        raise Invalid(
            f"the code does not honour the function contract: line {first.line}, column {first.column}: "
            f"{first.message}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""),
            status=400,
            details=analysis.details(),
        )
    return analysis


@dataclass(frozen=True)
class FunctionView:
    """A draft with where it is published."""

    draft: FunctionDraft
    publications: tuple[Publication, ...]


class FunctionService:
    def __init__(
        self,
        *,
        gateways: GatewayCommands,
        drafts: FunctionDrafts,
        history: FunctionHistory,
        deployments: DeploymentLog,
        published: PublishedFunctions,
        clock: Callable[[], datetime] = utc_now,
        ensure_indexes: Callable[[], None] = lambda: None,
    ) -> None:
        self._gateways = gateways
        self._drafts = drafts
        self._history = history
        self._deployments = deployments
        self._published = published
        self._clock = clock
        self._ensure_indexes = ensure_indexes

    @classmethod
    def from_plane_parts(
        cls,
        *,
        mongo: Mongo,
        redis: Redis,
        settings: Settings,
        gateway_commands: GatewayCommands,
        clock: Callable[[], datetime] = utc_now,
    ) -> FunctionService:
        sys_db = mongo[settings.sys_db_name]
        return cls(
            gateways=gateway_commands,
            drafts=FunctionDrafts(sys_db),
            history=FunctionHistory(sys_db, keep=settings.quota_history_versions),
            deployments=DeploymentLog(sys_db),
            published=PublishedFunctions(mongo, sys_db, redis),
            clock=clock,
            ensure_indexes=lambda: ensure_function_indexes(sys_db),
        )

    def ensure_indexes(self) -> None:
        """Create the function collections' indexes (idempotent; call at control-plane start)."""
        self._ensure_indexes()

    # --- queries -----------------------------------------------------------------------------------

    def list_functions(self, gateway_id: str, user: UserRecord) -> list[FunctionView]:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        by_name: dict[str, list[Publication]] = {}
        for publication in self._published.publications(gateway.gateway_id):
            by_name.setdefault(publication.name, []).append(publication)
        return [
            FunctionView(draft, _in_environment_order(by_name.get(draft.name, [])))
            for draft in self._drafts.of_gateway(gateway.gateway_id)
        ]

    def get(self, gateway_id: str, name: str, user: UserRecord) -> FunctionView:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        return self._view(self._draft(gateway, name))

    def history(self, gateway_id: str, name: str, user: UserRecord, *, limit: int) -> list[FunctionVersion]:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        draft = self._draft(gateway, name)
        return self._history.of_function(gateway.gateway_id, draft.name, limit=limit)

    def deployments(
        self, gateway_id: str, user: UserRecord, *, function: str | None, limit: int
    ) -> list[Deployment]:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        return self._deployments.of_gateway(gateway.gateway_id, function=function, limit=limit)

    # --- drafts ------------------------------------------------------------------------------------

    def create(
        self,
        gateway_id: str,
        user: UserRecord,
        *,
        name: str,
        code: str,
        description: str | None,
        methods: tuple[str, ...],
        timeout_seconds: float,
    ) -> FunctionView:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_accepts_changes(gateway)
        validate_function_name(name)
        analysis = check_code(code)
        now = self._clock()
        draft = FunctionDraft(
            gateway_id=gateway.gateway_id,
            name=name,
            code=code,
            description=description if description is not None else analysis.description or "",
            methods=methods,
            timeout_seconds=timeout_seconds,
            version=1,
            input_schema=analysis.input_schema or {},
            output_schema=analysis.output_schema,
            created_at=now,
            created_by=user.username,
            updated_at=now,
            updated_by=user.username,
        )
        self._drafts.insert(draft)
        self._history.append(_version_of(draft, changelog="created"))
        return FunctionView(draft, ())

    def update(
        self,
        gateway_id: str,
        name: str,
        user: UserRecord,
        *,
        code: str | None = None,
        description: str | None = None,
        methods: tuple[str, ...] | None = None,
        timeout_seconds: float | None = None,
        changelog: str | None = None,
    ) -> FunctionView:
        """A new draft version when something changed; an unchanged patch returns the draft as it is."""
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_accepts_changes(gateway)
        draft = self._draft(gateway, name)
        changes = changes_to(
            draft, code=code, description=description, methods=methods, timeout_seconds=timeout_seconds
        )
        if changes.empty:
            return self._view(draft)
        schemas = None
        if changes.code is not None:
            analysis = check_code(changes.code)
            schemas = (analysis.input_schema or {}, analysis.output_schema)
        revised = revise(draft, changes, schemas=schemas, at=self._clock(), by=user.username)
        if not self._drafts.replace_if_version(revised, expected_version=draft.version):
            raise Conflict(
                f"function {name!r} changed while this update was being made; read it again and retry",
                details={"expectedVersion": draft.version},
            )
        self._history.append(
            _version_of(revised, changelog=changelog or f"changed {', '.join(changes.changed)}")
        )
        return self._view(revised)

    def delete(self, gateway_id: str, name: str, user: UserRecord) -> list[str]:
        """Unpublish everywhere, then drop the history and the draft; returns the environments cleared."""
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_accepts_changes(gateway)
        draft = self._draft(gateway, name)
        removed = self._published.unpublish(gateway.gateway_id, draft.name, environments=ENVIRONMENT_NAMES)
        self._history.delete_of_function(gateway.gateway_id, draft.name)
        self._drafts.delete(gateway.gateway_id, draft.name)
        return removed

    # --- publishing --------------------------------------------------------------------------------

    def publish(
        self, gateway_id: str, name: str, user: UserRecord, *, environment: EnvironmentName
    ) -> PublishedVersion:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_provisioned(gateway)
        check_direct_publish(environment, gateway.promotion_pipeline)
        draft = self._draft(gateway, name)
        analysis = check_code(draft.code)  # the allow-list may have changed since the draft was saved
        current = replace(
            draft, input_schema=analysis.input_schema or {}, output_schema=analysis.output_schema
        )
        published = PublishedVersion.of_draft(current, environment, at=self._clock(), by=user.username)
        return self._release(gateway, published)

    def deploy_to_stage(
        self,
        gateway_id: str,
        name: str,
        user: UserRecord,
        *,
        target: EnvironmentName,
        source: EnvironmentName | None,
    ) -> PublishedVersion:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_provisioned(gateway)
        source_stage = source_stage_for(target, gateway.promotion_pipeline, source)
        draft = self._draft(gateway, name)
        origin = self._published.get(gateway.gateway_id, source_stage, draft.name)
        if origin is None:
            raise NotFound(
                f"function {name!r} is not published in {source_stage}, so there is nothing to promote to "
                f"{target}; publish it there first",
                details={"from": source_stage, "targetStage": target},
            )
        return self._release(gateway, origin.promoted_to(target, at=self._clock(), by=user.username))

    def debug_code(self, gateway_id: str, name: str, user: UserRecord, *, code: str | None) -> str:
        """The checked code a debug run executes: ``code`` when given, else the draft's."""
        gateway = self._gateways.get_owned(gateway_id, user.id)
        check_gateway_provisioned(gateway)
        draft = self._draft(gateway, name)
        source = code if code is not None else draft.code
        check_code(source)
        return source

    def forget_gateway(self, gateway_id: str) -> None:
        """Remove a deleted gateway's drafts, history and deployments (its database is dropped apart).

        Generation counters stay: they must only ever grow, or a watcher that remembers a higher
        number would ignore a re-created gateway of the same id.
        """
        self._drafts.delete_of_gateway(gateway_id)
        self._history.delete_of_gateway(gateway_id)
        self._deployments.delete_of_gateway(gateway_id)

    # --- helpers -----------------------------------------------------------------------------------

    def _release(self, gateway: Gateway, published: PublishedVersion) -> PublishedVersion:
        self._published.publish(gateway.gateway_id, published, now=self._clock())
        self._deployments.append(Deployment.of(gateway.gateway_id, published))
        return published

    def _draft(self, gateway: Gateway, name: str) -> FunctionDraft:
        draft = self._drafts.get(gateway.gateway_id, name)
        if draft is None:
            raise NotFound(
                f"no function {name!r} in gateway {gateway.gateway_id}; "
                f"list them with GET /v1/api-gateways/{gateway.gateway_id}/functions"
            )
        return draft

    def _view(self, draft: FunctionDraft) -> FunctionView:
        publications = self._published.publications(draft.gateway_id, name=draft.name)
        return FunctionView(draft, _in_environment_order(publications))


def _in_environment_order(publications: list[Publication]) -> tuple[Publication, ...]:
    return tuple(sorted(publications, key=lambda p: ENVIRONMENT_NAMES.index(p.environment)))


def _version_of(draft: FunctionDraft, *, changelog: str) -> FunctionVersion:
    return FunctionVersion(
        gateway_id=draft.gateway_id,
        name=draft.name,
        version=draft.version,
        code=draft.code,
        changelog=changelog,
        author=draft.updated_by,
        at=draft.updated_at,
    )
