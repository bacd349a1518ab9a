"""The ``IngressDriver`` Protocol: how API keys, auth mode and rate limits reach the ingress.

Two implementations sit behind it: the embedded one (the control plane publishes credentials into
``gatewayid_<gw>.__consumers`` and per-environment settings into ``__environments``; the function
actors hot-reload and enforce them) and ``ApisixDriver`` (routes and consumers through the APISIX
Admin API, or rendered as ApisixRoute/ApisixConsumer custom resources). Every method is idempotent
and keyed by deterministic ids, so a reconciler may call it again after any crash; drift (an object
removed behind our back) is repaired by calling ``apply_*`` again. Implementations translate their
client's errors into ``imprun.errors.Unavailable`` (retry later) or ``Invalid`` (never works).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from imprun.domain.environment import RateLimit


@dataclass(frozen=True, slots=True)
class EnvironmentRoute:
    """How callers reach one gateway environment."""

    gateway_id: str
    environment: str
    auth_type: str  # "key-auth" | "none"
    rate_limit: RateLimit | None
    upstream_host: str  # where the environment's Serve ingress listens
    upstream_port: int


@dataclass(frozen=True, slots=True)
class ConsumerCredential:
    """One grant's key as the ingress needs it.

    ``lookup_hash`` is the HMAC-SHA256 of the key under the platform pepper (what the embedded
    ingress compares); ``api_key`` is the plaintext, decrypted only for ingresses that must hold it
    (APISIX) and never stored or logged by imprun.
    """

    credential_id: str
    grant_id: str
    application_id: str
    gateway_id: str
    environment: str
    lookup_hash: str
    active: bool
    rate_limit: RateLimit | None
    api_key: str | None = field(default=None, repr=False)


class IngressDriver(Protocol):
    needs_plaintext_keys: bool
    """True when ``apply_consumer`` needs ``ConsumerCredential.api_key`` (APISIX); False for embedded."""

    def apply_environment(self, route: EnvironmentRoute) -> None: ...

    def delete_environment(self, gateway_id: str, environment: str) -> None: ...

    def apply_consumer(self, credential: ConsumerCredential) -> None: ...

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None: ...
