"""Typed results of the SDK: pydantic models of docs/api.md's response bodies, fields in snake_case.

Every model reads the API's camelCase (``gatewayId`` → ``gateway_id``) and keeps fields the server
adds later (``extra="allow"``), so a newer control plane never breaks an older SDK. ``to_json()``
gives the API's own shape back (what ``--json`` prints in the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class User(ApiModel):
    id: str
    username: str
    admin: bool = False


class Invite(ApiModel):
    """An admin's one-time registration invite (its code is shown only in ``IssuedInvite``)."""

    id: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None = None
    used_at: datetime | None = None


class IssuedInvite(Invite):
    code: str = Field(repr=False)


class LoginResult(ApiModel):
    token: str
    expires_at: datetime


class RateLimit(ApiModel):
    count: int
    window_seconds: int


class LoadedOn(ApiModel):
    replica: str
    node: str


class Environment(ApiModel):
    name: str
    phase: str | None = None
    state: str | None = None
    url: str | None = None
    auth_type: str | None = None
    rate_limit: RateLimit | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    tier: str | None = None
    loaded_on: list[LoadedOn] = Field(default_factory=list)


class Gateway(ApiModel):
    gateway_id: str
    name: str
    state: str
    phase: str
    promotion_pipeline: dict[str, Any] | None = None
    bundle: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    environments: list[Environment] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def failures(self) -> list[tuple[str, str, str]]:
        """``(where, reason, message)`` of each Failed condition: the gateway's, then its environments'."""
        owners = [(self.gateway_id, self.conditions), *((e.name, e.conditions) for e in self.environments)]
        return [
            (where, str(c.get("reason", "")), str(c.get("message", "")))
            for where, conditions in owners
            for c in conditions
            if c.get("type") == "Failed" and c.get("status")
        ]


class GatewayEvent(ApiModel):
    id: str | None = None
    reason: str
    message: str
    at: datetime
    kind: str | None = None
    type: str | None = None
    resource: str | None = None
    actor: str | None = None
    from_phase: str | None = Field(
        default=None, validation_alias=AliasChoices("from", "fromPhase"), serialization_alias="from"
    )
    to_phase: str | None = Field(
        default=None, validation_alias=AliasChoices("to", "toPhase"), serialization_alias="to"
    )
    step: str | None = None
    started_at: datetime | None = None


class Publication(ApiModel):
    version: int
    published_at: datetime | None = None
    published_by: str | None = None
    promoted_from: str | None = None


class Function(ApiModel):
    name: str
    version: int
    gateway_id: str | None = None
    code: str | None = None
    hash: str | None = None
    description: str | None = None
    methods: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    published: dict[str, Publication] = Field(default_factory=dict)
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class PublishResult(ApiModel):
    name: str
    environment: str
    version: int
    hash: str | None = None
    published_at: datetime | None = None
    published_by: str | None = None
    promoted_from: str | None = None


class FunctionVersion(ApiModel):
    version: int
    changelog: str | None = None
    author: str | None = None
    at: datetime | None = None
    hash: str | None = None
    code: str | None = None


class Deployment(ApiModel):
    function: str
    environment: str
    version: int
    promoted_from: str | None = None
    by: str | None = None
    at: datetime | None = None


class LogLine(ApiModel):
    time: str | None = None
    level: str = "info"
    message: str = ""


class DebugResult(ApiModel):
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    logs: list[LogLine] = Field(default_factory=list)
    duration_ms: float | None = None


class LogEntry(ApiModel):
    time: str | None = None
    function: str | None = None
    request_id: str | None = None
    level: str = "info"
    message: str = ""


class Variable(ApiModel):
    name: str
    value: str | None = None
    secret: bool = False
    masked: bool = False
    environment: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class Application(ApiModel):
    application_id: str
    name: str
    description: str | None = None
    organization: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class LlmUsage(ApiModel):
    """An application's calls and tokens of ``/ai-gateway/chat`` this budget period, and the limits."""

    application_id: str
    period_start: datetime
    period_end: datetime
    calls: int
    input_tokens: int
    output_tokens: int
    limits: dict[str, int]


class Grant(ApiModel):
    grant_id: str
    application_id: str | None = None
    credential_id: str | None = None
    key_prefix: str | None = None
    gateway_id: str | None = None
    environment: str | None = None
    status: str | None = None
    rate_limit: RateLimit | None = None
    applied: bool | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime | None = None
    key_issued_at: datetime | None = None


class IssuedKey(Grant):
    """A grant with its API key: returned only when the key is created or regenerated."""

    api_key: str


class McpTool(ApiModel):
    name: str
    description: str | None = None
    gateway_id: str | None = None
    environment: str | None = None
    function: str | None = None
    input_schema: dict[str, Any] | None = None
    input_schema_from: str | None = None
    created_at: datetime | None = None


class ToolCall(ApiModel):
    name: str
    arguments: Any = None
    result: Any = None
    duration_ms: float | None = None


class ChatResult(ApiModel):
    choices: list[dict[str, Any]] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)

    @property
    def content(self) -> str | None:
        """The first choice's message text."""
        if not self.choices:
            return None
        message = self.choices[0].get("message") or {}
        content = message.get("content")
        return content if isinstance(content, str) else None


@dataclass(frozen=True)
class CallResult:
    """A data-plane response: ``body`` is the decoded JSON when the response is JSON, else the text."""

    status: int
    headers: dict[str, str]
    body: Any
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
            "requestId": self.request_id,
        }
