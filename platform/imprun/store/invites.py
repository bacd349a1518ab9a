"""The ``invites`` collection of the system database: one-time codes an admin hands out.

``{_id, codeHash, createdBy, createdAt, expiresAt, usedBy, usedAt}``: only a SHA-256 digest of the
code is stored (the code itself is shown once, when created). ``consume`` takes an unused, unexpired
invite for one new user atomically, so a code registers one account however many try it at once;
``release`` gives it back when that registration failed. Times are ISO strings (see ``iso``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from imprun.store.mongo import Document, iso, mongo_errors, parse_time

__all__ = ["InviteRecord", "InviteRepository"]


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class InviteRecord:
    invite_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None
    used_at: datetime | None


def _to_record(doc: Document) -> InviteRecord:
    used_at = doc.get("usedAt")
    return InviteRecord(
        invite_id=doc["_id"],
        created_by=doc["createdBy"],
        created_at=parse_time(doc["createdAt"]),
        expires_at=parse_time(doc["expiresAt"]),
        used_by=doc.get("usedBy"),
        used_at=parse_time(used_at) if used_at else None,
    )


class InviteRepository:
    def __init__(self, db: Database[Document]) -> None:
        self._invites = db.invites

    def insert(self, code: str, *, created_by: str, at: datetime, expires_at: datetime) -> InviteRecord:
        doc: Document = {
            "_id": "inv_" + uuid.uuid4().hex[:16],
            "codeHash": _code_hash(code),
            "createdBy": created_by,
            "createdAt": iso(at),
            "expiresAt": iso(expires_at),
            "usedBy": None,
            "usedAt": None,
        }
        with mongo_errors():
            self._invites.insert_one(doc)
        return _to_record(doc)

    def consume(self, code: str, *, user_id: str, at: datetime) -> InviteRecord | None:
        """Mark the invite of ``code`` used by ``user_id``; None when unknown, used or expired."""
        with mongo_errors():
            doc = self._invites.find_one_and_update(
                {"codeHash": _code_hash(code), "usedBy": None, "expiresAt": {"$gt": iso(at)}},
                {"$set": {"usedBy": user_id, "usedAt": iso(at)}},
                return_document=ReturnDocument.AFTER,
            )
        return _to_record(doc) if doc else None

    def release(self, invite_id: str, user_id: str) -> None:
        with mongo_errors():
            self._invites.update_one(
                {"_id": invite_id, "usedBy": user_id}, {"$set": {"usedBy": None, "usedAt": None}}
            )

    def all(self) -> list[InviteRecord]:
        with mongo_errors():
            return [_to_record(doc) for doc in self._invites.find({}).sort("createdAt", ASCENDING)]

    def delete(self, invite_id: str) -> bool:
        with mongo_errors():
            return self._invites.delete_one({"_id": invite_id}).deleted_count == 1
