"""Repositories for lifecycle resources (``api_gateways``, ``environments``) and their leases.

Both kinds share one shape: a domain document plus the bookkeeping only the store sees — ``_id``,
``lockedAt`` / ``lockedBy`` (the optimistic lease of docs/architecture.md). A reconciler claims one
resource with an atomic ``find_one_and_update`` on ``lockedAt < now - lease``; releasing sets
``lockedAt`` back to the epoch, or to a moment chosen so the lease runs out after a delay, which is
how retries back off and how settled resources are re-observed now and then without a second queue.
Each claim bumps ``leaseEpoch``: the ``Lease`` it returns is a fencing token, and every write made
under it (phase, conditions, bookkeeping) matches ``{lockedBy, leaseEpoch}``, so a reconciler that
outlived its lease — paused, partitioned — cannot write after another took over.
Phase changes are compare-and-sets on ``{_id, phase}``; only ``imprun.lifecycle.transitions`` calls them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database

from imprun.domain.environment import Environment
from imprun.domain.gateway import Gateway
from imprun.domain.phases import DesiredState, Phase
from imprun.domain.resource import LifecycleResource
from imprun.store.events import Event, event_document, record_once
from imprun.store.mongo import Document, encode_dates, epoch_ms, iso, mongo_errors
from runtime_actors.shared.names import PLACED, SHARED_PLACEMENT

EPOCH = 0
"""``lockedAt`` of a free resource (milliseconds since the epoch)."""
SHARED_RELEASED_AT = "sharedReleasedAt"
"""When the shared tier last stopped serving an environment (ISO-8601, like every ``$set`` date)."""
_BOOKKEEPING = (
    "_id",
    "lockedAt",
    "lockedBy",
    "leaseEpoch",
    "appliedSpec",
    "appliedRoute",
    "pendingEvents",
    SHARED_PLACEMENT,
    SHARED_RELEASED_AT,
)  # appliedRoute: the ingress; pendingEvents: transition events not yet copied to the log;
# sharedPlacement: whether the shared runtime serves the environment

R = TypeVar("R", bound=LifecycleResource)


@dataclass(frozen=True)
class Lease:
    """One claim on one resource: who holds it and which claim it is (the fencing token)."""

    holder: str
    epoch: int


def fenced(query: dict[str, Any], lease: Lease | None) -> dict[str, Any]:
    if lease is not None:
        query["lockedBy"] = lease.holder
        query["leaseEpoch"] = lease.epoch
    return query


class LifecycleRepository(Generic[R]):
    """Documents of one lifecycle kind; ``key`` builds the ``_id`` from the resource."""

    def __init__(
        self, collection: Collection[Document], model: type[R], events: Collection[Document]
    ) -> None:
        self._collection = collection
        self._model = model
        self._events = events

    def _key(self, resource: R) -> str:
        raise NotImplementedError

    def _load(self, doc: Document | None) -> R | None:
        if doc is None:
            return None
        return self._model.model_validate({k: v for k, v in doc.items() if k not in _BOOKKEEPING})

    def _dump(self, resource: R) -> Document:
        return resource.model_dump(mode="json", by_alias=True)

    def insert(self, resource: R, *, conflict_message: str) -> R:
        doc = {"_id": self._key(resource), **self._dump(resource), "lockedAt": EPOCH, "lockedBy": None}
        with mongo_errors(conflict_message):
            self._collection.insert_one(doc)
        return resource

    def get(self, key: str) -> R | None:
        with mongo_errors():
            return self._load(self._collection.find_one({"_id": key}))

    def find(self, query: Mapping[str, Any], *, sort: str = "_id") -> list[R]:
        with mongo_errors():
            docs = list(self._collection.find(dict(query)).sort(sort, ASCENDING))
        return [r for r in (self._load(d) for d in docs) if r is not None]

    def compare_and_set_phase(
        self,
        moved: R,
        *,
        expected_phase: Phase,
        lease: Lease | None = None,
        event: Event,
    ) -> bool:
        """Store ``moved``'s phase, with ``event`` pending on the same document, if the stored phase is
        still ``expected_phase`` (and ``lease`` is still held), then copy the event to the log; False
        (and nothing written) when it moved on or the lease was lost."""
        fields = encode_dates(
            {"phase": moved.phase.value, "phaseSince": moved.phase_since, "updatedAt": moved.updated_at}
        )
        key = self._key(moved)
        pending = event_document(event)
        query = fenced({"_id": key, "phase": expected_phase.value}, lease)
        with mongo_errors():
            result = self._collection.update_one(
                query, {"$set": {**fields, f"pendingEvents.{event.id}": pending}}
            )
        if result.matched_count != 1:
            return False
        self._record_pending(key, [pending])
        return True

    def _record_pending(self, key: str, pending: Iterable[Document]) -> None:
        """Copy pending transition events (``pendingEvents``, by event id) to the log, once each, then
        drop them from the resource."""
        for doc in pending:
            record_once(self._events, doc)
            with mongo_errors():
                self._collection.update_one({"_id": key}, {"$unset": {f"pendingEvents.{doc['_id']}": ""}})

    def update(
        self,
        key: str,
        fields: Mapping[str, Any],
        *,
        unless_phase: tuple[Phase, ...] = (),
        lease: Lease | None = None,
    ) -> bool:
        """Set camelCase ``fields``; refused (False) when the stored phase is one of ``unless_phase`` or
        ``lease`` is no longer held."""
        query: dict[str, Any] = fenced({"_id": key}, lease)
        if unless_phase:
            query["phase"] = {"$nin": [p.value for p in unless_phase]}
        with mongo_errors():
            return self._collection.update_one(query, {"$set": encode_dates(dict(fields))}).matched_count == 1

    def bookkeeping(self, key: str, field_name: str) -> Any:
        """A store-only field (e.g. the spec an environment's app was last deployed with)."""
        with mongo_errors():
            doc = self._collection.find_one({"_id": key}, {field_name: 1})
        return None if doc is None else doc.get(field_name)

    def delete(self, key: str) -> bool:
        with mongo_errors():
            return self._collection.delete_one({"_id": key}).deleted_count == 1

    # Leases ---------------------------------------------------------------------------------------

    def claim(self, *, holder: str, now: datetime, lease: timedelta) -> R | None:
        """Atomically take the resource whose lease ran out longest ago, or None if none is free."""
        claimed = self.claim_lease(holder=holder, now=now, lease=lease)
        return None if claimed is None else claimed[0]

    def claim_lease(self, *, holder: str, now: datetime, lease: timedelta) -> tuple[R, Lease] | None:
        """``claim``, with the ``Lease`` that writes under it present (a new epoch per claim)."""
        with mongo_errors():
            doc = self._collection.find_one_and_update(
                {"lockedAt": {"$lt": epoch_ms(now - lease)}},
                {"$set": {"lockedAt": epoch_ms(now), "lockedBy": holder}, "$inc": {"leaseEpoch": 1}},
                sort=[("lockedAt", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        resource = self._load(doc)
        if resource is None or doc is None:
            return None
        if doc.get("pendingEvents"):  # a writer died between a transition and its event
            self._record_pending(doc["_id"], doc["pendingEvents"].values())
        return resource, Lease(holder, int(doc["leaseEpoch"]))

    def release(self, key: str, *, holder: str, lease: timedelta, now: datetime, after: float = 0.0) -> None:
        """Give the lease back; the resource becomes claimable again ``after`` seconds from ``now``."""
        locked_at = EPOCH if after <= 0 else epoch_ms(now - lease + timedelta(seconds=after))
        with mongo_errors():
            self._collection.update_one(
                {"_id": key, "lockedBy": holder}, {"$set": {"lockedAt": locked_at, "lockedBy": None}}
            )

    def wake(self, key: str) -> None:
        """Make a resource claimable at once (after the API changed what it wants), unless leased."""
        with mongo_errors():
            self._collection.update_one({"_id": key, "lockedBy": None}, {"$set": {"lockedAt": EPOCH}})


class GatewayRepository(LifecycleRepository[Gateway]):
    def __init__(self, db: Database[Document]) -> None:
        super().__init__(db.api_gateways, Gateway, db.events)

    def _key(self, resource: Gateway) -> str:
        return resource.gateway_id

    def owned_by(self, owner_id: str) -> list[Gateway]:
        return self.find({"ownerId": owner_id})


def environment_key(gateway_id: str, name: str) -> str:
    return f"{gateway_id}/{name}"


class EnvironmentRepository(LifecycleRepository[Environment]):
    def __init__(self, db: Database[Document]) -> None:
        super().__init__(db.environments, Environment, db.events)

    def _key(self, resource: Environment) -> str:
        return environment_key(resource.gateway_id, resource.name)

    def shared_gateways(self, *, released_since: datetime) -> tuple[set[str], set[str]]:
        """The gateways with an environment placed on the shared tier, and those with one that left it
        after ``released_since``."""
        with mongo_errors():
            placed = self._collection.distinct("gatewayId", {SHARED_PLACEMENT: PLACED})
            released = self._collection.distinct(
                "gatewayId", {SHARED_RELEASED_AT: {"$gt": iso(released_since)}}
            )
        return {str(g) for g in placed}, {str(g) for g in released}

    def of_gateway(self, gateway_id: str) -> list[Environment]:
        return self.find({"gatewayId": gateway_id}, sort="_id")

    def set_desired_of_gateway(self, gateway_id: str, state: DesiredState) -> None:
        """Point every environment of the gateway at ``state`` (never un-deleting one) and wake them."""
        with mongo_errors():
            self._collection.update_many(
                {"gatewayId": gateway_id, "state": {"$ne": DesiredState.DELETED.value}},
                {"$set": {"state": state.value}},
            )
        self.wake_of_gateway(gateway_id)

    def wake_of_gateway(self, gateway_id: str) -> None:
        """Make every environment of the gateway claimable at once (unless leased)."""
        with mongo_errors():
            self._collection.update_many(
                {"gatewayId": gateway_id, "lockedBy": None}, {"$set": {"lockedAt": EPOCH}}
            )

    def delete_of_gateway(self, gateway_id: str) -> int:
        with mongo_errors():
            return self._collection.delete_many({"gatewayId": gateway_id}).deleted_count
