"""What the embedded ingress enforces: ``__consumers`` and ``__environments`` of each gateway database.

``gatewayid_<gw>.__consumers`` holds one document per credential,
``{_id: credentialId, credentialId, grantId, applicationId, environment, lookupHash, active, rateLimit}``
(``lookupHash`` is the hex HMAC-SHA256 of the key under the platform pepper — never the key;
``rateLimit`` is ``{count, windowSeconds}`` or null, null meaning the environment's own limit
applies). ``gatewayid_<gw>.__environments`` holds one document per environment,
``{_id: env, environment: env, authType: "key-auth" | "none", rateLimit}``. Replicas hot-reload both
like published functions: every write here is followed by ``RuntimeFeed.changed`` for its
environment. Deletes never create a database: a gateway database that is gone has nothing to delete.
"""

from __future__ import annotations

from typing import Any

from imprun.domain.environment import AuthType, RateLimit
from imprun.domain.naming import ENVIRONMENT_NAMES, gateway_db_name
from imprun.store.mongo import Document, Mongo, mongo_errors
from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import CONSUMERS, ENVIRONMENT_SETTINGS, PART_ACCESS

"""Per-environment ingress settings; the data plane reads the same name (``runtime_actors``)."""


def _limit(rate_limit: RateLimit | None) -> dict[str, Any] | None:
    return None if rate_limit is None else rate_limit.model_dump(mode="json", by_alias=True)


class IngressDocuments:
    def __init__(self, client: Mongo, feed: RuntimeFeed) -> None:
        self._client = client
        self._feed = feed

    def _db(self, gateway_id: str) -> Any:
        return self._client[gateway_db_name(gateway_id)]

    def _database_exists(self, gateway_id: str) -> bool:
        with mongo_errors():
            return gateway_db_name(gateway_id) in self._client.list_database_names()

    # --- consumers ---------------------------------------------------------------------------------

    def put_consumer(
        self,
        gateway_id: str,
        environment: str,
        credential_id: str,
        *,
        grant_id: str,
        application_id: str,
        lookup_hash: str,
        active: bool,
        rate_limit: RateLimit | None,
    ) -> None:
        doc = {
            "_id": credential_id,
            "credentialId": credential_id,
            "grantId": grant_id,
            "applicationId": application_id,
            "environment": environment,
            "lookupHash": lookup_hash,
            "active": active,
            "rateLimit": _limit(rate_limit),
        }
        with mongo_errors(f"another credential of {gateway_id}/{environment} has the same lookup hash"):
            # The replacement names its _id: nx-27017 0.8.1 ignores the filter's _id on an upsert.
            self._db(gateway_id)[CONSUMERS].replace_one({"_id": credential_id}, doc, upsert=True)
        self._announce_consumers(gateway_id)

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None:
        if not self._database_exists(gateway_id):
            return
        with mongo_errors():
            self._db(gateway_id)[CONSUMERS].delete_one({"_id": credential_id})
        self._announce_consumers(gateway_id)

    def _announce_consumers(self, gateway_id: str) -> None:
        """Every environment's replicas hold all the gateway's credentials (to tell a key of another
        environment, 403, from an unknown one, 401), so a credential change bumps all three."""
        for name in ENVIRONMENT_NAMES:
            self._feed.changed(gateway_id, name, PART_ACCESS)

    def consumers(self, gateway_id: str, environment: str | None = None) -> list[Document]:
        query = {} if environment is None else {"environment": environment}
        with mongo_errors():
            return list(self._db(gateway_id)[CONSUMERS].find(query))

    # --- environments ------------------------------------------------------------------------------

    def put_environment(
        self, gateway_id: str, environment: str, *, auth_type: AuthType, rate_limit: RateLimit | None
    ) -> None:
        doc = {
            "_id": environment,
            "environment": environment,
            "authType": auth_type.value,
            "rateLimit": _limit(rate_limit),
        }
        with mongo_errors():
            self._db(gateway_id)[ENVIRONMENT_SETTINGS].replace_one({"_id": environment}, doc, upsert=True)
        self._feed.changed(gateway_id, environment, PART_ACCESS)

    def delete_environment(self, gateway_id: str, environment: str) -> None:
        if not self._database_exists(gateway_id):
            return
        with mongo_errors():
            self._db(gateway_id)[ENVIRONMENT_SETTINGS].delete_one({"_id": environment})
        self._feed.changed(gateway_id, environment, PART_ACCESS)

    def environment_settings(self, gateway_id: str, environment: str) -> Document | None:
        with mongo_errors():
            doc: Document | None = self._db(gateway_id)[ENVIRONMENT_SETTINGS].find_one({"_id": environment})
        return doc
