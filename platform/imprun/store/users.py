"""The ``users`` collection of the system database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database

from imprun.store.mongo import Document, mongo_errors


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    password_hash: str
    created_at: datetime


def _to_record(doc: Document) -> UserRecord:
    return UserRecord(
        id=doc["_id"],
        username=doc["username"],
        password_hash=doc["passwordHash"],
        created_at=doc["createdAt"],
    )


class UserRepository:
    def __init__(self, db: Database[Document]) -> None:
        self._users = db.users

    def create(self, username: str, password_hash: str) -> UserRecord:
        doc: Document = {
            "_id": uuid.uuid4().hex,
            "username": username,
            "passwordHash": password_hash,
            "createdAt": datetime.now(UTC),
        }
        with mongo_errors(f"the username {username!r} is taken; choose another"):
            self._users.insert_one(doc)
        return _to_record(doc)

    def by_username(self, username: str) -> UserRecord | None:
        with mongo_errors():
            doc = self._users.find_one({"username": username})
        return _to_record(doc) if doc else None

    def by_id(self, user_id: str) -> UserRecord | None:
        with mongo_errors():
            doc = self._users.find_one({"_id": user_id})
        return _to_record(doc) if doc else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with mongo_errors():
            self._users.update_one({"_id": user_id}, {"$set": {"passwordHash": password_hash}})
