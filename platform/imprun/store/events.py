"""The ``events`` collection: every phase transition, applied step and error, per gateway.

Events are append-only and read newest first (``GET /v1/api-gateways/{gw}/events``). A transition's
event is written with the phase, on the resource's own document (``pendingEvents``), then copied here
under its id (``record_once``): a crash between the two leaves it pending, and the next claim of the
resource copies it, so the log never misses a transition that happened. Step events
carry the lease holder and the step's start and end, which is what lets a test prove from the log
alone that no two control planes ever worked on one resource at the same time.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from imprun.store.mongo import Document, mongo_errors


@dataclass(frozen=True)
class Event:
    gateway_id: str
    kind: str  # "gateway" | "environment"
    resource: str  # gateway id, or "<gw>/<env>"
    type: str  # "Normal" | "Warning"
    reason: str  # Transition, Step, StepFailed, Stuck, …
    message: str
    at: datetime
    actor: str
    from_phase: str | None = None
    to_phase: str | None = None
    step: str | None = None
    started_at: datetime | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class EventLog:
    def __init__(self, db: Database[Document]) -> None:
        self._events = db.events

    def append(self, event: Event) -> None:
        with mongo_errors():
            self._events.insert_one(event_document(event))

    def of_gateway(self, gateway_id: str, *, limit: int = 200) -> list[Event]:
        with mongo_errors():
            docs = list(self._events.find({"gatewayId": gateway_id}).sort("at", DESCENDING).limit(limit))
        return [_from_doc(d) for d in docs]

    def forget_gateway_before(self, gateway_id: str, before: datetime) -> None:
        """Delete the gateway id's events older than ``before``: a deleted namesake's history."""
        with mongo_errors():
            self._events.delete_many({"gatewayId": gateway_id, "at": {"$lt": before}})


def event_document(event: Event) -> Document:
    """The stored form of ``event``: its id as ``_id``."""
    doc = asdict(event)
    doc["_id"] = doc.pop("id")
    doc["gatewayId"] = doc.pop("gateway_id")
    return doc


def record_once(events: Collection[Document], doc: Document) -> None:
    """Store an event document unless it is stored already (the same ``_id``)."""
    with mongo_errors(), contextlib.suppress(DuplicateKeyError):
        events.insert_one(doc)


def _from_doc(doc: Document) -> Event:
    values = {k: v for k, v in doc.items() if k not in ("_id", "gatewayId")}
    return Event(id=doc["_id"], gateway_id=doc["gatewayId"], **values)
