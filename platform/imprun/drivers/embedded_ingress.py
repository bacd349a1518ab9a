"""``EmbeddedIngressDriver``: the ``IngressDriver`` of embedded mode, where the replicas are the ingress.

There is no separate proxy to configure: each function replica's supervisor authenticates callers
against ``gatewayid_<gw>.__consumers`` and reads its environment's auth type and rate limit from
``__environments``, hot-reloading both like published functions. So applying a consumer or an
environment route means writing that document and announcing the change (generation bump, Redis
wake-up). The writes go through ``IngressDocumentsWriter``, a Protocol the store's
``imprun.store.consumers.IngressDocuments`` satisfies (drivers and the store are independent layers;
the composition root joins them). Only the lookup hash is published: this driver never needs, and
never asks for, a plaintext key. The upstream of a route is meaningless here (the replicas serve
the environment themselves) and is ignored.
"""

from __future__ import annotations

from typing import Protocol

from imprun.domain.environment import AuthType, RateLimit
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid


class IngressDocumentsWriter(Protocol):
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
    ) -> None: ...

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None: ...

    def put_environment(
        self, gateway_id: str, environment: str, *, auth_type: AuthType, rate_limit: RateLimit | None
    ) -> None: ...

    def delete_environment(self, gateway_id: str, environment: str) -> None: ...


class EmbeddedIngressDriver:
    needs_plaintext_keys = False

    def __init__(self, documents: IngressDocumentsWriter) -> None:
        self._documents = documents

    def apply_environment(self, route: EnvironmentRoute) -> None:
        try:
            auth_type = AuthType(route.auth_type)
        except ValueError as exc:
            known = ", ".join(a.value for a in AuthType)
            raise Invalid(f"unknown auth type {route.auth_type!r}; use one of {known}") from exc
        self._documents.put_environment(
            route.gateway_id, route.environment, auth_type=auth_type, rate_limit=route.rate_limit
        )

    def delete_environment(self, gateway_id: str, environment: str) -> None:
        self._documents.delete_environment(gateway_id, environment)

    def apply_consumer(self, credential: ConsumerCredential) -> None:
        self._documents.put_consumer(
            credential.gateway_id,
            credential.environment,
            credential.credential_id,
            grant_id=credential.grant_id,
            application_id=credential.application_id,
            lookup_hash=credential.lookup_hash,
            active=credential.active,
            rate_limit=credential.rate_limit,
        )

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None:
        self._documents.delete_consumer(gateway_id, environment, credential_id)
