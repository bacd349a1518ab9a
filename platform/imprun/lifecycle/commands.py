"""What the API may do to lifecycle resources: record intent, never do the work.

Creating a gateway stores it in phase Creating; stopping, starting and deleting set its desired
``state``. The reconcilers converge from there (STYLE.md: record the target, let the reconciler
converge). Ownership is checked here: another user's gateway is reported as not found.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from imprun.domain.environment import AuthType, Environment, RateLimit
from imprun.domain.gateway import Bundle, Gateway, PromotionPipeline
from imprun.domain.naming import ENVIRONMENT_NAMES, slugify_gateway_id, validate_gateway_id
from imprun.domain.phases import DesiredState, Phase
from imprun.errors import Conflict, NotFound
from imprun.store.events import Event, EventLog
from imprun.store.lifecycle import EnvironmentRepository, GatewayRepository, environment_key

_TEARDOWN = (Phase.DELETING, Phase.DELETED)
_UNSET = object()


class GatewayCommands:
    def __init__(
        self,
        gateways: GatewayRepository,
        environments: EnvironmentRepository,
        events: EventLog,
        *,
        clock: Callable[[], datetime],
        wake: Callable[[], None] = lambda: None,
        on_delete: Callable[[str], None] = lambda gateway_id: None,
    ) -> None:
        self.gateways = gateways
        self.environments = environments
        self.events = events
        self.clock = clock
        self.wake = wake
        self.on_delete = on_delete  # e.g. wake the gateway's grants, so their credentials go at once

    def get_owned(self, gateway_id: str, owner_id: str) -> Gateway:
        gateway = self.gateways.get(gateway_id)
        if gateway is None or gateway.owner_id != owner_id:
            raise NotFound(f"no gateway {gateway_id!r}; list yours with GET /v1/api-gateways")
        return gateway

    def create(self, *, name: str, owner_id: str, gateway_id: str | None, bundle: Bundle | None) -> Gateway:
        gw = validate_gateway_id(gateway_id) if gateway_id is not None else slugify_gateway_id(name)
        now = self.clock()
        gateway = Gateway.new(gateway_id=gw, name=name, owner_id=owner_id, now=now, bundle=bundle)
        self.gateways.insert(gateway, conflict_message=f"the gatewayId {gw!r} is taken; choose another")
        self._event(gateway, "Created", f"gateway {gw} requested by {owner_id}", actor=owner_id)
        self.wake()
        return gateway

    def set_state(self, gateway: Gateway, state: DesiredState, *, actor: str) -> Gateway:
        self._refuse_during_teardown(gateway)
        updated = gateway.with_state(state, self.clock())
        if updated is gateway:
            return gateway
        if not self.gateways.update(
            gateway.gateway_id,
            {"state": state.value, "updatedAt": updated.updated_at},
            unless_phase=_TEARDOWN,
        ):
            raise Conflict(f"gateway {gateway.gateway_id} is being deleted; its state can no longer change")
        self._event(
            gateway, "StateRequested", f"desired state {gateway.state.value} → {state.value}", actor=actor
        )
        self.gateways.wake(gateway.gateway_id)
        self.wake()
        return updated

    def set_promotion_pipeline(self, gateway: Gateway, pipeline: PromotionPipeline) -> Gateway:
        self._refuse_during_teardown(gateway)
        now = self.clock()
        self.gateways.update(
            gateway.gateway_id,
            {"promotionPipeline": pipeline.model_dump(mode="json", by_alias=True), "updatedAt": now},
            unless_phase=_TEARDOWN,
        )
        return gateway.model_copy(update={"promotion_pipeline": pipeline, "updated_at": now})

    def set_bundle(self, gateway: Gateway, bundle: Bundle, *, actor: str) -> Gateway:
        """Change what the environments run on (tier, replicas, resources); they roll out in place, and
        a move between tiers keeps serving (``lifecycle.environments``)."""
        self._refuse_during_teardown(gateway)
        if bundle == gateway.bundle:
            return gateway
        now = self.clock()
        if not self.gateways.update(
            gateway.gateway_id,
            {"bundle": bundle.model_dump(mode="json", by_alias=True), "updatedAt": now},
            unless_phase=_TEARDOWN,
        ):
            raise Conflict(f"gateway {gateway.gateway_id} is being deleted; its bundle can no longer change")
        self._event(
            gateway,
            "BundleChanged",
            f"bundle: tier {gateway.bundle.tier.value} → {bundle.tier.value}"
            if bundle.tier is not gateway.bundle.tier
            else "bundle changed",
            actor=actor,
        )
        self.environments.wake_of_gateway(gateway.gateway_id)
        self.wake()
        return gateway.model_copy(update={"bundle": bundle, "updated_at": now})

    def delete(self, gateway: Gateway, *, actor: str) -> Gateway:
        if gateway.state is DesiredState.DELETED:
            return gateway
        updated = gateway.with_state(DesiredState.DELETED, self.clock())
        self.gateways.update(
            gateway.gateway_id, {"state": DesiredState.DELETED.value, "updatedAt": updated.updated_at}
        )
        self._event(gateway, "DeleteRequested", "deletion requested", actor=actor)
        self.gateways.wake(gateway.gateway_id)
        self.on_delete(gateway.gateway_id)
        self.wake()
        return updated

    def environments_of(self, gateway: Gateway) -> list[Environment]:
        by_name = {e.name: e for e in self.environments.of_gateway(gateway.gateway_id)}
        return [by_name[name] for name in ENVIRONMENT_NAMES if name in by_name]

    def get_environment(self, gateway: Gateway, name: str) -> Environment:
        environment = self.environments.get(environment_key(gateway.gateway_id, name))
        if environment is None:
            known = ", ".join(ENVIRONMENT_NAMES)
            raise NotFound(f"gateway {gateway.gateway_id} has no environment {name!r} (it has {known})")
        return environment

    def configure_environment(
        self,
        gateway: Gateway,
        name: str,
        *,
        auth_type: AuthType | None = None,
        rate_limit: RateLimit | object | None = _UNSET,
        actor: str,
    ) -> Environment:
        self._refuse_during_teardown(gateway)
        environment = self.get_environment(gateway, name)
        fields: dict[str, object] = {"updatedAt": self.clock()}
        changes: dict[str, object] = {}
        if auth_type is not None:
            fields["authType"] = auth_type.value
            changes["auth_type"] = auth_type
        if rate_limit is not _UNSET:
            limit = rate_limit if isinstance(rate_limit, RateLimit) else None
            fields["rateLimit"] = limit.model_dump(mode="json", by_alias=True) if limit else None
            changes["rate_limit"] = limit
        key = environment_key(gateway.gateway_id, name)
        if not self.environments.update(key, fields, unless_phase=_TEARDOWN):
            raise Conflict(f"environment {name} is being deleted (phase {environment.phase.value})")
        self._event(gateway, "EnvironmentConfigured", f"{name}: {sorted(changes)}", actor=actor)
        self.environments.wake(key)  # the environment reconciler publishes the new route to the ingress
        self.wake()
        return environment.model_copy(update=changes)

    def events_of(self, gateway: Gateway, *, limit: int) -> list[Event]:
        return self.events.of_gateway(gateway.gateway_id, limit=limit)

    def _refuse_during_teardown(self, gateway: Gateway) -> None:
        if gateway.state is DesiredState.DELETED or gateway.phase in _TEARDOWN:
            raise Conflict(
                f"gateway {gateway.gateway_id} is being deleted (phase {gateway.phase.value}); "
                "it can no longer be changed",
                details={"phase": gateway.phase.value, "state": gateway.state.value},
            )

    def _event(self, gateway: Gateway, reason: str, message: str, *, actor: str) -> None:
        self.events.append(
            Event(
                gateway_id=gateway.gateway_id,
                kind="gateway",
                resource=gateway.gateway_id,
                type="Normal",
                reason=reason,
                message=message,
                at=self.clock(),
                actor=actor,
                from_phase=gateway.phase.value,
            )
        )
