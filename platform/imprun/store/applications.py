"""Repositories for applications and their grants (``applications``, ``application_grants``).

An application belongs to a user and is independent of gateways. A grant gives it one
``{gatewayId, environment}`` with one key, stored as its lookup hash and its sealed (AES-256-GCM)
copy — never the plaintext. At most one *active* grant per application, gateway and environment:
the unique ``slot`` field is ``<app>/<gw>/<env>`` while a grant is active and ``revoked/<grant>``
once revoked, so no partial index is needed (the indexes are made by
``imprun.store.mongo.ensure_system_indexes``). Grants carry the fenced lease of the lifecycle
resources (``lockedAt`` / ``lockedBy`` / ``leaseEpoch``), which the grant reconciler's writes
present; a ``revision`` that every API change increments — a reconciler that worked on an older
revision releases the grant for immediate re-examination, so a revoke or regenerate made
mid-reconcile is never parked until the next resync; ``appliedConsumer``, store bookkeeping of what the ingress was last given; and ``conditions`` (a
Failed one when the ingress refused the credential), cleared by a new key, a revoke or an apply
that works. The grant types themselves are ``imprun.domain.access``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from imprun.domain.access import AppliedConsumer as AppliedConsumer
from imprun.domain.access import GrantRecord as GrantRecord
from imprun.domain.access import GrantStatus as GrantStatus
from imprun.domain.access import StoredKey as StoredKey
from imprun.domain.conditions import Condition
from imprun.domain.environment import RateLimit
from imprun.store.lifecycle import EPOCH, Lease, fenced
from imprun.store.mongo import Document, epoch_ms, iso, mongo_errors, parse_time


@dataclass(frozen=True)
class ApplicationRecord:
    application_id: str
    owner_id: str
    name: str
    description: str
    organization: str | None
    created_at: datetime
    updated_at: datetime


def _slot(grant_id: str, application_id: str, gateway_id: str, environment: str, status: GrantStatus) -> str:
    if status is GrantStatus.ACTIVE:
        return f"{application_id}/{gateway_id}/{environment}"
    return f"revoked/{grant_id}"


def _rate_limit(value: Any) -> RateLimit | None:
    return None if value is None else RateLimit.model_validate(value)


def _dump_limit(limit: RateLimit | None) -> dict[str, Any] | None:
    return None if limit is None else limit.model_dump(mode="json", by_alias=True)


# --- applications ----------------------------------------------------------------------------------


class ApplicationRepository:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._applications = sys_db.applications

    def insert(self, record: ApplicationRecord) -> None:
        doc = {
            "_id": record.application_id,
            "applicationId": record.application_id,
            "ownerId": record.owner_id,
            "name": record.name,
            "description": record.description,
            "organization": record.organization,
            "createdAt": iso(record.created_at),
            "updatedAt": iso(record.updated_at),
        }
        with mongo_errors(f"application id {record.application_id} is taken"):
            self._applications.insert_one(doc)

    def get(self, application_id: str) -> ApplicationRecord | None:
        with mongo_errors():
            doc = self._applications.find_one({"_id": application_id})
        return None if doc is None else _application_from(doc)

    def exists(self, application_id: str) -> bool:
        with mongo_errors():
            return self._applications.count_documents({"_id": application_id}, limit=1) == 1

    def owned_by(self, owner_id: str) -> list[ApplicationRecord]:
        with mongo_errors():
            docs = list(self._applications.find({"ownerId": owner_id}).sort("createdAt", ASCENDING))
        return [_application_from(d) for d in docs]

    def update(self, application_id: str, fields: Mapping[str, Any], *, at: datetime) -> bool:
        """Set camelCase ``fields`` (``name``, ``description``, ``organization``) and ``updatedAt``."""
        changes = {**fields, "updatedAt": iso(at)}
        with mongo_errors():
            return (
                self._applications.update_one({"_id": application_id}, {"$set": changes}).matched_count == 1
            )

    def delete(self, application_id: str) -> bool:
        with mongo_errors():
            return self._applications.delete_one({"_id": application_id}).deleted_count == 1


def _application_from(doc: Document) -> ApplicationRecord:
    return ApplicationRecord(
        application_id=doc["_id"],
        owner_id=doc["ownerId"],
        name=doc["name"],
        description=doc.get("description") or "",
        organization=doc.get("organization"),
        created_at=parse_time(doc["createdAt"]),
        updated_at=parse_time(doc["updatedAt"]),
    )


# --- grants ----------------------------------------------------------------------------------------


def _key_fields(key: StoredKey) -> dict[str, Any]:
    return {
        "keyPrefix": key.key_prefix,
        "lookupHash": key.lookup_hash,
        "sealedKey": {"version": key.key_version, "nonce": key.key_nonce, "ciphertext": key.key_ciphertext},
    }


class GrantRepository:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._grants = sys_db.application_grants

    def insert(self, record: GrantRecord, *, conflict_message: str) -> None:
        doc = {
            "_id": record.grant_id,
            "grantId": record.grant_id,
            "applicationId": record.application_id,
            "ownerId": record.owner_id,
            "gatewayId": record.gateway_id,
            "gatewayCreatedAt": iso(record.gateway_created_at),
            "environment": record.environment,
            "credentialId": record.credential_id,
            **_key_fields(record.key),
            "rateLimit": _dump_limit(record.rate_limit),
            "status": record.status.value,
            "slot": _slot(
                record.grant_id, record.application_id, record.gateway_id, record.environment, record.status
            ),
            "revision": record.revision,
            "createdAt": iso(record.created_at),
            "keyIssuedAt": iso(record.key_issued_at),
            "appliedConsumer": None,
            "conditions": [],
            "lockedAt": EPOCH,
            "lockedBy": None,
        }
        with mongo_errors(conflict_message):
            self._grants.insert_one(doc)

    def get(self, grant_id: str) -> GrantRecord | None:
        with mongo_errors():
            doc = self._grants.find_one({"_id": grant_id})
        return None if doc is None else _grant_from(doc)

    def active_for(self, application_id: str, gateway_id: str, environment: str) -> GrantRecord | None:
        slot = _slot("", application_id, gateway_id, environment, GrantStatus.ACTIVE)
        with mongo_errors():
            doc = self._grants.find_one({"slot": slot})
        return None if doc is None else _grant_from(doc)

    def active_by_lookup_hash(self, lookup_hash: str) -> list[GrantRecord]:
        """The active grants whose key hashes to ``lookup_hash`` (the AI gateway's key check)."""
        with mongo_errors():
            docs = list(
                self._grants.find({"lookupHash": lookup_hash, "status": GrantStatus.ACTIVE.value}).limit(100)
            )
        return [_grant_from(d) for d in docs]

    def of_application(self, application_id: str) -> list[GrantRecord]:
        with mongo_errors():
            docs = list(self._grants.find({"applicationId": application_id}).sort("createdAt", ASCENDING))
        return [_grant_from(d) for d in docs]

    def rekey(self, grant_id: str, key: StoredKey, *, expected_revision: int, at: datetime) -> bool:
        """Replace an active grant's key if it is still at ``expected_revision``; False otherwise."""
        with mongo_errors():
            result = self._grants.update_one(
                {"_id": grant_id, "revision": expected_revision, "status": GrantStatus.ACTIVE.value},
                {
                    "$set": {**_key_fields(key), "keyIssuedAt": iso(at), "conditions": []},
                    "$inc": {"revision": 1},
                },
            )
        self.wake(grant_id)
        return result.matched_count == 1

    def revoke(self, grant_id: str) -> bool:
        """Mark an active grant revoked (freeing its slot); False when it was not active."""
        with mongo_errors():
            result = self._grants.update_one(
                {"_id": grant_id, "status": GrantStatus.ACTIVE.value},
                {
                    "$set": {
                        "status": GrantStatus.REVOKED.value,
                        "slot": f"revoked/{grant_id}",
                        "conditions": [],
                    },
                    "$inc": {"revision": 1},
                },
            )
        self.wake(grant_id)
        return result.matched_count == 1

    def revoke_of_application(self, application_id: str) -> list[str]:
        """Revoke every active grant of the application; returns their ids."""
        with mongo_errors():
            ids = [
                d["_id"]
                for d in self._grants.find(
                    {"applicationId": application_id, "status": GrantStatus.ACTIVE.value}, {"_id": 1}
                )
            ]
        return [grant_id for grant_id in ids if self.revoke(grant_id)]

    def record_applied(self, grant_id: str, applied: AppliedConsumer, *, lease: Lease | None = None) -> bool:
        """Note what the ingress now holds and clear the grant's conditions (it works); False when
        ``lease`` is no longer held."""
        value = {
            "lookupHash": applied.lookup_hash,
            "active": applied.active,
            "rateLimit": _dump_limit(applied.rate_limit),
        }
        return self.update(grant_id, {"appliedConsumer": value, "conditions": []}, lease=lease)

    def update(self, grant_id: str, fields: Mapping[str, Any], *, lease: Lease | None = None) -> bool:
        """Set camelCase ``fields``; refused (False) when ``lease`` is no longer held."""
        with mongo_errors():
            result = self._grants.update_one(fenced({"_id": grant_id}, lease), {"$set": dict(fields)})
        return result.matched_count == 1

    def delete(self, grant_id: str, *, lease: Lease | None = None) -> bool:
        with mongo_errors():
            return self._grants.delete_one(fenced({"_id": grant_id}, lease)).deleted_count == 1

    # Leases (as in ``imprun.store.lifecycle``, plus the revision check on release) ------------------

    def claim(self, *, holder: str, now: datetime, lease: timedelta) -> GrantRecord | None:
        claimed = self.claim_lease(holder=holder, now=now, lease=lease)
        return None if claimed is None else claimed[0]

    def claim_lease(
        self, *, holder: str, now: datetime, lease: timedelta
    ) -> tuple[GrantRecord, Lease] | None:
        """``claim``, with the ``Lease`` that writes under it present (a new epoch per claim)."""
        with mongo_errors():
            doc = self._grants.find_one_and_update(
                {"lockedAt": {"$lt": epoch_ms(now - lease)}},
                {"$set": {"lockedAt": epoch_ms(now), "lockedBy": holder}, "$inc": {"leaseEpoch": 1}},
                sort=[("lockedAt", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else (_grant_from(doc), Lease(holder, int(doc["leaseEpoch"])))

    def release(
        self, grant_id: str, *, holder: str, revision: int, lease: timedelta, now: datetime, after: float
    ) -> None:
        """Give the lease back, claimable ``after`` seconds from ``now`` — or at once if the API changed
        the grant (its revision moved on) while ``holder`` was working on ``revision``."""
        later = EPOCH if after <= 0 else epoch_ms(now - lease + timedelta(seconds=after))
        with mongo_errors():
            result = self._grants.update_one(
                {"_id": grant_id, "lockedBy": holder, "revision": revision},
                {"$set": {"lockedAt": later, "lockedBy": None}},
            )
            if result.matched_count == 0:
                self._grants.update_one(
                    {"_id": grant_id, "lockedBy": holder}, {"$set": {"lockedAt": EPOCH, "lockedBy": None}}
                )

    def wake(self, grant_id: str) -> None:
        """Claimable at once, unless leased (then the revision check on release brings it back)."""
        with mongo_errors():
            self._grants.update_one({"_id": grant_id, "lockedBy": None}, {"$set": {"lockedAt": EPOCH}})

    def wake_of_gateway(self, gateway_id: str) -> None:
        """Make every unleased grant of the gateway claimable at once (the gateway is being deleted)."""
        with mongo_errors():
            self._grants.update_many(
                {"gatewayId": gateway_id, "lockedBy": None}, {"$set": {"lockedAt": EPOCH}}
            )


def _grant_from(doc: Document) -> GrantRecord:
    sealed = doc["sealedKey"]
    applied = doc.get("appliedConsumer")
    return GrantRecord(
        grant_id=doc["_id"],
        application_id=doc["applicationId"],
        owner_id=doc["ownerId"],
        gateway_id=doc["gatewayId"],
        gateway_created_at=parse_time(doc["gatewayCreatedAt"]),
        environment=doc["environment"],
        credential_id=doc["credentialId"],
        key=StoredKey(
            key_prefix=doc["keyPrefix"],
            lookup_hash=doc["lookupHash"],
            key_version=int(sealed["version"]),
            key_nonce=bytes(sealed["nonce"]),
            key_ciphertext=bytes(sealed["ciphertext"]),
        ),
        rate_limit=_rate_limit(doc.get("rateLimit")),
        status=GrantStatus(doc["status"]),
        revision=int(doc["revision"]),
        created_at=parse_time(doc["createdAt"]),
        key_issued_at=parse_time(doc["keyIssuedAt"]),
        applied=None
        if applied is None
        else AppliedConsumer(
            lookup_hash=applied["lookupHash"],
            active=bool(applied["active"]),
            rate_limit=_rate_limit(applied.get("rateLimit")),
        ),
        conditions=tuple(Condition.model_validate(c) for c in doc.get("conditions") or ()),
    )
