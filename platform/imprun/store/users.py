"""The ``users`` collection of the system database, and the one-time claim of the first admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from imprun.store.mongo import Document, mongo_errors

_FIRST_ADMIN = "first-admin"


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    password_hash: str
    created_at: datetime
    admin: bool = False


def _to_record(doc: Document) -> UserRecord:
    return UserRecord(
        id=doc["_id"],
        username=doc["username"],
        password_hash=doc["passwordHash"],
        created_at=doc["createdAt"],
        admin=bool(doc.get("admin", False)),
    )


class UserRepository:
    def __init__(self, db: Database[Document]) -> None:
        self._users = db.users
        self._claims = db.claims

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def create(
        self, username: str, password_hash: str, *, user_id: str | None = None, admin: bool = False
    ) -> UserRecord:
        doc: Document = {
            "_id": user_id or self.new_id(),
            "username": username,
            "passwordHash": password_hash,
            "createdAt": datetime.now(UTC),
            "admin": admin,
        }
        with mongo_errors(f"the username {username!r} is taken; choose another"):
            self._users.insert_one(doc)
        return _to_record(doc)

    def any_exist(self) -> bool:
        with mongo_errors():
            return self._users.find_one({}, {"_id": 1}) is not None

    def claim_first_admin(self, user_id: str) -> bool:
        """Whether ``user_id`` is the first to claim the admin role of an empty platform (once ever)."""
        with mongo_errors():
            try:
                self._claims.insert_one({"_id": _FIRST_ADMIN, "userId": user_id, "at": datetime.now(UTC)})
            except DuplicateKeyError:
                return False
        return True

    def release_first_admin(self, user_id: str) -> None:
        """Give the claim back when the claiming registration failed."""
        with mongo_errors():
            self._claims.delete_one({"_id": _FIRST_ADMIN, "userId": user_id})

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
