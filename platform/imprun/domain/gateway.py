"""The gateway document: identity, owner, resource bundle, promotion pipeline and lifecycle.

A gateway is what a developer creates first; it owns one MongoDB database (``gatewayid_<id>``) and
exactly three environments (dev, staging, prod), each served by its own Ray Serve app sized by the
gateway's ``Bundle``. These pydantic models are the stored document and the API shape alike
(camelCase on the wire: ``minReplicas``, ``memory`` in MiB); the API layer derives its create/update
schemas from them. Lifecycle moves (``moved_to``, ``with_state``) come from ``LifecycleResource``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from imprun.domain._model import DomainModel
from imprun.domain.naming import (
    ENVIRONMENT_NAMES,
    EnvironmentName,
    GatewayId,
    gateway_db_name,
)
from imprun.domain.phases import DesiredState, Phase
from imprun.domain.placement import check_custom_resources
from imprun.domain.resource import LifecycleResource

MIB = 1024 * 1024


class Tier(StrEnum):
    """Where a gateway's environments run (``docs/architecture.md``, "Tiers").

    ``shared``: loaded on demand into the platform's shared runtime replicas, unloaded when idle; an
    idle environment costs nothing. ``dedicated``: one Serve application per environment with the
    bundle's replicas, CPU, memory and custom resources, always warm at ``minReplicas >= 1``."""

    SHARED = "shared"
    DEDICATED = "dedicated"


class Bundle(DomainModel):
    """Where each environment runs (its tier) and, on the dedicated tier, the resources of its Serve
    app: CPU, memory, custom resources per replica; replica bounds."""

    tier: Tier = Field(
        default=Tier.DEDICATED,
        description="shared: loaded on demand into the shared runtime (the other fields do not apply); "
        "dedicated: one Serve application per environment. Omitted at creation: the platform's default "
        "(IMPRUN_DEFAULT_TIER, shared unless set), or dedicated when custom resources are asked for.",
    )

    cpu: float = Field(default=0.5, gt=0, le=16, allow_inf_nan=False, description="CPUs per replica.")
    memory_mb: int = Field(default=256, ge=64, le=65_536, alias="memory", description="MiB per replica.")
    min_replicas: int = Field(default=1, ge=0, le=16, description="0 lets an idle environment scale to zero.")
    max_replicas: int = Field(default=1, ge=1, le=32)
    resources: dict[str, float] = Field(
        default_factory=dict,
        exclude_if=lambda resources: not resources,  # documents and answers keep their shape without any
        description="Custom cluster resources per replica ({name: amount}); replicas run only on nodes "
        "offering them.",
    )

    @field_validator("resources")
    @classmethod
    def _valid_custom_resources(cls, resources: dict[str, float]) -> dict[str, float]:
        return check_custom_resources(resources)

    @model_validator(mode="after")
    def _resources_only_when_dedicated(self) -> Bundle:
        if self.tier is Tier.SHARED and self.resources:
            raise ValueError("custom resources need tier 'dedicated' (shared replicas hold none)")
        return self

    def with_default_tier(self, default: Tier) -> Bundle:
        """This bundle with ``default`` as its tier unless one was given (dedicated when it asks for
        custom resources)."""
        if "tier" in self.model_fields_set:
            return self
        tier = Tier.DEDICATED if self.resources else default
        return self.model_copy(update={"tier": tier})

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Bundle:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be at least minReplicas ({self.min_replicas})"
            )
        return self

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MIB


class PromotionPipeline(DomainModel):
    """The order in which a published version moves between environments.

    When ``enabled``, a version reaches a later stage only by promotion from the stage before it;
    when disabled, each environment may be published to directly and promotion is still available.
    """

    enabled: bool = False
    stages: tuple[EnvironmentName, ...] = ENVIRONMENT_NAMES

    @field_validator("stages")
    @classmethod
    def _stages_in_environment_order(cls, stages: tuple[EnvironmentName, ...]) -> tuple[EnvironmentName, ...]:
        if len(stages) < 2:
            raise ValueError("a promotion pipeline needs at least two stages, e.g. ['dev', 'prod']")
        if len(set(stages)) != len(stages):
            raise ValueError(f"stages must not repeat: {list(stages)}")
        order = [name for name in ENVIRONMENT_NAMES if name in stages]
        if list(stages) != order:
            raise ValueError(f"stages must follow the order {list(ENVIRONMENT_NAMES)}; got {list(stages)}")
        return stages

    def next_stage(self, environment: EnvironmentName) -> EnvironmentName | None:
        """The stage a version published in ``environment`` is promoted to; None at the end or outside."""
        if environment not in self.stages:
            return None
        index = self.stages.index(environment)
        return self.stages[index + 1] if index + 1 < len(self.stages) else None


class Gateway(LifecycleResource):
    gateway_id: GatewayId
    name: str = Field(min_length=1, max_length=100)
    owner_id: str = Field(min_length=1)
    bundle: Bundle = Field(default_factory=Bundle)
    promotion_pipeline: PromotionPipeline = Field(default_factory=PromotionPipeline)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, name: str) -> str:
        stripped = name.strip()
        if not stripped:
            raise ValueError("name must not be blank")
        return stripped

    @classmethod
    def new(
        cls,
        *,
        gateway_id: str,
        name: str,
        owner_id: str,
        now: datetime,
        bundle: Bundle | None = None,
        promotion_pipeline: PromotionPipeline | None = None,
    ) -> Gateway:
        """A gateway as the API first stores it: wanting Running, in phase Creating."""
        return cls(
            gateway_id=gateway_id,
            name=name,
            owner_id=owner_id,
            state=DesiredState.RUNNING,
            phase=Phase.CREATING,
            bundle=bundle or Bundle(),
            promotion_pipeline=promotion_pipeline or PromotionPipeline(),
            created_at=now,
            updated_at=now,
            phase_since=now,
        )

    @property
    def database_name(self) -> str:
        return gateway_db_name(self.gateway_id)
