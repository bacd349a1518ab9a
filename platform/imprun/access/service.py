"""``AccessService``: the commands and queries behind ``/v1/applications`` and their grants.

An application belongs to one user and is independent of gateways. A grant gives it one
``{gatewayId, environment}`` of a gateway the same user owns, with one active key; a second active
grant for the same application, gateway and environment is a conflict (regenerate or revoke the
first). Creating or regenerating a key returns it once in an ``IssuedKey``; what is stored is its
prefix, lookup hash and sealed copy. Revoking, regenerating and deleting an application only record
the intent and wake the loop: the ``GrantReconciler`` removes or replaces the credential at the ingress
within moments, and removes revoked grants once their credential is gone.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from imprun.domain.environment import RateLimit
from imprun.domain.gateway import Gateway
from imprun.domain.naming import EnvironmentName
from imprun.domain.phases import DesiredState, Phase
from imprun.errors import Conflict, NotFound
from imprun.lifecycle.commands import GatewayCommands
from imprun.lifecycle.reconciler import utc_now
from imprun.security.api_keys import KeyVault, key_prefix
from imprun.store.applications import (
    ApplicationRecord,
    ApplicationRepository,
    GrantRecord,
    GrantRepository,
    GrantStatus,
    StoredKey,
)
from imprun.store.users import UserRecord

_UNSET: Any = object()


def _new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class IssuedKey:
    """A grant together with its freshly made key: the one moment the plaintext exists outside a caller."""

    grant: GrantRecord
    api_key: str = field(repr=False)


class AccessService:
    def __init__(
        self,
        *,
        applications: ApplicationRepository,
        grants: GrantRepository,
        gateways: GatewayCommands,
        vault: KeyVault,
        clock: Callable[[], datetime] = utc_now,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._applications = applications
        self._grants = grants
        self._gateways = gateways
        self._vault = vault
        self._clock = clock
        self._wake = wake

    # --- applications ------------------------------------------------------------------------------

    def create_application(
        self, user: UserRecord, *, name: str, description: str | None, organization: str | None
    ) -> ApplicationRecord:
        now = self._clock()
        record = ApplicationRecord(
            application_id=_new_id("app"),
            owner_id=user.id,
            name=name,
            description=description or "",
            organization=organization,
            created_at=now,
            updated_at=now,
        )
        self._applications.insert(record)
        return record

    def list_applications(self, user: UserRecord) -> list[ApplicationRecord]:
        return self._applications.owned_by(user.id)

    def get_application(self, application_id: str, user: UserRecord) -> ApplicationRecord:
        application = self._applications.get(application_id)
        if application is None or application.owner_id != user.id:
            raise NotFound(f"no application {application_id!r}; list yours with GET /v1/applications")
        return application

    def update_application(
        self,
        application_id: str,
        user: UserRecord,
        *,
        name: str | None = None,
        description: str | None = None,
        organization: str | None = _UNSET,
    ) -> ApplicationRecord:
        application = self.get_application(application_id, user)
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if description is not None:
            fields["description"] = description
        if organization is not _UNSET:
            fields["organization"] = organization
        if not fields:
            return application
        if not self._applications.update(application.application_id, fields, at=self._clock()):
            raise NotFound(f"application {application_id!r} was deleted meanwhile")
        return self.get_application(application_id, user)

    def delete_application(self, application_id: str, user: UserRecord) -> list[str]:
        """Revoke every grant of the application, then delete it; returns the revoked grant ids."""
        application = self.get_application(application_id, user)
        revoked = self._grants.revoke_of_application(application.application_id)
        self._applications.delete(application.application_id)
        self._wake()
        return revoked

    # --- grants ------------------------------------------------------------------------------------

    def grants_of(self, application_id: str, user: UserRecord) -> list[GrantRecord]:
        application = self.get_application(application_id, user)
        return self._grants.of_application(application.application_id)

    def create_grant(
        self,
        application_id: str,
        user: UserRecord,
        *,
        gateway_id: str,
        environment: EnvironmentName,
        rate_limit: RateLimit | None = None,
    ) -> IssuedKey:
        application = self.get_application(application_id, user)
        gateway = self._gateways.get_owned(gateway_id, user.id)
        _check_gateway_accepts_grants(gateway)
        grant_id = _new_id("grant")
        api_key = self._vault.generate(environment)
        now = self._clock()
        grant = GrantRecord(
            grant_id=grant_id,
            application_id=application.application_id,
            owner_id=user.id,
            gateway_id=gateway.gateway_id,
            gateway_created_at=gateway.created_at,
            environment=environment,
            credential_id=_new_id("cred"),
            key=self._stored(api_key, grant_id=grant_id, environment=environment),
            rate_limit=rate_limit,
            status=GrantStatus.ACTIVE,
            revision=1,
            created_at=now,
            key_issued_at=now,
        )
        self._grants.insert(
            grant,
            conflict_message=(
                f"application {application.application_id} already has an active grant for "
                f"{gateway.gateway_id}/{environment}; regenerate its key or revoke it first"
            ),
        )
        self._wake()
        return IssuedKey(grant, api_key)

    def regenerate(self, application_id: str, grant_id: str, user: UserRecord) -> IssuedKey:
        """A new key for the grant (same credential id); the old one stops working within moments."""
        grant = self._active_grant(application_id, grant_id, user)
        api_key = self._vault.generate(grant.environment)
        now = self._clock()
        key = self._stored(api_key, grant_id=grant.grant_id, environment=grant.environment)
        if not self._grants.rekey(grant.grant_id, key, expected_revision=grant.revision, at=now):
            raise Conflict(
                f"grant {grant_id} changed while its key was being regenerated; list the grants and retry"
            )
        self._wake()
        updated = self._grants.get(grant.grant_id)
        if updated is None:
            raise NotFound(f"grant {grant_id} was revoked meanwhile")
        return IssuedKey(updated, api_key)

    def revoke(self, application_id: str, grant_id: str, user: UserRecord) -> GrantRecord:
        """Mark the grant revoked (idempotent); the reconciler deletes its credential, then the grant."""
        grant = self._grant(application_id, grant_id, user)
        self._grants.revoke(grant.grant_id)
        self._wake()
        # Re-read for the stored revision; the reconciler may already have removed the record.
        return self._grants.get(grant.grant_id) or replace(grant, status=GrantStatus.REVOKED)

    # --- helpers -----------------------------------------------------------------------------------

    def _stored(self, api_key: str, *, grant_id: str, environment: str) -> StoredKey:
        sealed = self._vault.seal(api_key, grant_id=grant_id, environment=environment)
        return StoredKey(
            key_prefix=key_prefix(api_key),
            lookup_hash=self._vault.lookup_hash(api_key),
            key_version=sealed.version,
            key_nonce=sealed.nonce,
            key_ciphertext=sealed.ciphertext,
        )

    def _grant(self, application_id: str, grant_id: str, user: UserRecord) -> GrantRecord:
        application = self.get_application(application_id, user)
        grant = self._grants.get(grant_id)
        if grant is None or grant.application_id != application.application_id:
            raise NotFound(
                f"application {application_id} has no grant {grant_id!r}; "
                f"list them with GET /v1/applications/{application_id}/grants"
            )
        return grant

    def _active_grant(self, application_id: str, grant_id: str, user: UserRecord) -> GrantRecord:
        grant = self._grant(application_id, grant_id, user)
        if not grant.active:
            raise Conflict(f"grant {grant_id} is revoked; create a new grant instead")
        return grant


def _check_gateway_accepts_grants(gateway: Gateway) -> None:
    if gateway.state is DesiredState.DELETED or gateway.phase in (Phase.DELETING, Phase.DELETED):
        raise Conflict(
            f"gateway {gateway.gateway_id} is being deleted (phase {gateway.phase.value}); "
            "it can no longer be granted to applications",
            details={"phase": gateway.phase.value, "state": gateway.state.value},
        )
