"""API-key admission of an environment replica: the ``RequestGate`` the supervisor asks first.

The control plane publishes, per gateway, ``__consumers`` (one document per credential:
``credentialId``, ``environment``, ``lookupHash`` = hex HMAC-SHA256(pepper, key), ``active``,
``rateLimit``) and ``__environments`` (per environment: ``authType`` ``key-auth`` | ``none``,
``rateLimit``); the reload hub ships both with the functions (``AccessDocuments``) and the supervisor
hands each new set to ``KeyAuthGate.update``, which builds an ``AccessTable`` keyed by lookup hash.
A request's key (``apikey``, else ``Authorization: Bearer <key>``) is hashed with the replica's
pepper and looked up in that dict: the table never holds a key, and the lookup's timing depends only
on the HMAC of what the caller sent, which tells them nothing. ``decide`` is the pure decision:

======================================  =====================================================
environment / request                   outcome
======================================  =====================================================
access not loaded yet                   503 ``unavailable`` (``Retry-After: 1``)
``authType: none``                      admitted, no key looked at; limit per client address
no ``apikey`` and no ``Authorization``  401 ``unauthorized`` (missing)
empty, oversized (> 256), non-ASCII,    401 ``unauthorized`` (malformed), never hashed
spaced value; ``Authorization`` not
``Bearer <token>``
no credential has the key's hash        401 (unknown, revoked-and-deleted, regenerated away)
``active`` not ``true`` (nor ``1``)     401 (same message: a revoked key says nothing more)
active credential of another env        403 ``forbidden`` (names the credential and its env)
active credential of this env           admitted; limit = the grant's, else the environment's
======================================  =====================================================

Admitted requests with a limit are counted by the ``RateLimiter`` (``runtime_actors.replica.admission.limiter``);
over it → 429 ``rate_limited`` with ``Retry-After``. A 401 carries ``WWW-Authenticate: Bearer``.
Keys never appear in a log line, a counter or an error message: logs name ``credentialId`` only.
Malformed published documents are skipped (fail closed) and logged once per update.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from runtime_actors.replica.admission.limiter import RateLimiter
from runtime_actors.replica.http import HttpResponse, RequestHead, error_response
from runtime_actors.shared.messages import AccessDocuments
from runtime_actors.shared.rate_limit import RateLimit

__all__ = [
    "KEY_HEADER",
    "AccessTable",
    "AuthType",
    "Credential",
    "Decision",
    "KeyAuthGate",
    "KeyHasher",
    "Outcome",
    "decide",
    "presented_key",
]

logger = logging.getLogger(__name__)

KEY_HEADER: Final = "apikey"
MAX_KEY_LENGTH: Final = 256
_KEY: Final = re.compile(r"[!-~]+")  # visible ASCII, no spaces
_LOOKUP_HASH: Final = re.compile(r"[0-9a-f]{64}")


class AuthType(StrEnum):
    KEY_AUTH = "key-auth"
    NONE = "none"


class Outcome(StrEnum):
    ADMITTED = "admitted"
    OPEN = "open"  # authType none
    LOADING = "loading"
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    INACTIVE = "inactive"
    WRONG_ENVIRONMENT = "wrong_environment"


@dataclass(frozen=True, slots=True)
class Credential:
    credential_id: str
    environment: str
    active: bool
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class AccessTable:
    """Who may call one environment, by lookup hash (see the module docstring)."""

    gateway_id: str
    environment: str
    auth_type: AuthType
    rate_limit: RateLimit | None
    credentials: Mapping[str, Credential]

    @classmethod
    def from_documents(
        cls, gateway_id: str, environment: str, access: AccessDocuments
    ) -> tuple[AccessTable, list[str]]:
        """The table and the problems found (documents skipped or read conservatively)."""
        problems: list[str] = []
        settings = access.get("environment") or {}
        auth_type = AuthType.KEY_AUTH
        raw_auth = settings.get("authType")
        if raw_auth is not None:
            try:
                auth_type = AuthType(raw_auth)
            except ValueError:
                problems.append(f"authType {raw_auth!r} is unknown; requiring keys")
        rate_limit = _rate_limit(settings.get("rateLimit"), "the environment", problems, None)
        credentials: dict[str, Credential] = {}
        for document in access.get("consumers") or []:
            credential_id = str(document.get("credentialId") or "?")
            lookup_hash = str(document.get("lookupHash") or "").lower()
            owner = document.get("environment")
            if not _LOOKUP_HASH.fullmatch(lookup_hash) or not isinstance(owner, str) or not owner:
                problems.append(f"credential {credential_id} has no valid lookupHash/environment; skipped")
                continue
            credential = Credential(
                credential_id,
                owner,
                _is_active(document.get("active")),
                _rate_limit(document.get("rateLimit"), f"credential {credential_id}", problems, rate_limit),
            )
            kept = credentials.get(lookup_hash)
            if kept is None or _strength(credential, environment) > _strength(kept, environment):
                credentials[lookup_hash] = credential
        return cls(gateway_id, environment, auth_type, rate_limit, credentials), problems


def _rate_limit(doc: Any, owner: str, problems: list[str], fallback: RateLimit | None) -> RateLimit | None:
    try:
        return RateLimit.from_document(doc)
    except ValueError as exc:
        problems.append(f"{owner} has a malformed rateLimit ({exc}); using {fallback or 'no limit'}")
        return fallback


def _is_active(value: Any) -> bool:
    """``true`` (or ``1``: nx-27017 hands back booleans written by ``$set`` as integers); nothing else."""
    return type(value) in (bool, int) and value == 1


def _strength(credential: Credential, environment: str) -> tuple[bool, bool]:
    """Two credentials with one hash cannot happen by chance; if published anyway, be predictable."""
    return credential.active, credential.environment == environment


class KeyHasher:
    """``lookupHash`` of a presented key: hex HMAC-SHA256(pepper, key); None without a pepper."""

    def __init__(self, pepper: bytes) -> None:
        self._mac = hmac.new(pepper, digestmod=hashlib.sha256) if pepper else None

    @property
    def configured(self) -> bool:
        return self._mac is not None

    def __call__(self, key: str) -> str | None:
        if self._mac is None:
            return None
        mac = self._mac.copy()
        mac.update(key.encode("ascii"))
        return mac.hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | Outcome:
    """The key the request carries, or ``Outcome.MISSING`` / ``Outcome.MALFORMED``.

    ``apikey`` wins; ``Authorization`` is read only without it (then it must be ``Bearer <key>``).
    """
    value = headers.get(KEY_HEADER)
    if value is None:
        authorization = headers.get("authorization")
        if authorization is None:
            return Outcome.MISSING
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return Outcome.MALFORMED
    key = value.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        return Outcome.MALFORMED
    return key


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    credential: Credential | None = None
    rate_limit: RateLimit | None = None
    counter: str = ""
    """The rate-limit counter (``<gw>/<env>/<credentialId>`` or ``<gw>/<env>/ip:<client>``)."""

    @property
    def admitted(self) -> bool:
        return self.outcome in (Outcome.ADMITTED, Outcome.OPEN)


def decide(table: AccessTable | None, hasher: KeyHasher, head: RequestHead) -> Decision:
    """Who is calling and whether they may (no I/O; the rate limit is counted by the gate)."""
    if table is None:
        return Decision(Outcome.LOADING)
    scope = f"{table.gateway_id}/{table.environment}"
    if table.auth_type is AuthType.NONE:
        return Decision(Outcome.OPEN, None, table.rate_limit, f"{scope}/ip:{head.client or 'unknown'}")
    key = presented_key(head.headers)
    if isinstance(key, Outcome):
        return Decision(key)
    lookup_hash = hasher(key)
    credential = table.credentials.get(lookup_hash) if lookup_hash is not None else None
    if credential is None:
        return Decision(Outcome.UNKNOWN)
    if not credential.active:
        return Decision(Outcome.INACTIVE, credential)
    if credential.environment != table.environment:
        return Decision(Outcome.WRONG_ENVIRONMENT, credential)
    limit = credential.rate_limit or table.rate_limit
    return Decision(Outcome.ADMITTED, credential, limit, f"{scope}/{credential.credential_id}")


class KeyAuthGate:
    """The supervisor's ``RequestGate`` in a replica: ``decide``, then the rate limit, then answers."""

    def __init__(
        self, gateway_id: str, environment: str, pepper: bytes, limiter: RateLimiter | None = None
    ) -> None:
        self.gateway_id = gateway_id
        self.environment = environment
        self._hasher = KeyHasher(pepper)
        self._limiter = limiter
        self._table: AccessTable | None = None
        self._warned_unlimited = False
        self.stats: collections.Counter[str] = collections.Counter()
        """Requests per ``Outcome`` value, plus ``rate_limited`` and ``rate_limit_unavailable``."""
        if not self._hasher.configured:
            logger.warning(
                "%s/%s: no API-key pepper configured: every key is refused (authType none still serves)",
                gateway_id,
                environment,
            )

    @property
    def table(self) -> AccessTable | None:
        return self._table

    def update(self, access: AccessDocuments) -> None:
        table, problems = AccessTable.from_documents(self.gateway_id, self.environment, access)
        for problem in problems:
            logger.error("%s/%s: access configuration: %s", self.gateway_id, self.environment, problem)
        self._table = table

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None:
        decision = decide(self._table, self._hasher, head)
        self.stats[decision.outcome] += 1
        if not decision.admitted:
            return self._refusal(decision, request_id)
        if decision.rate_limit is None:
            return None
        if self._limiter is None:
            if not self._warned_unlimited:
                self._warned_unlimited = True
                logger.warning("%s/%s: rate limits are set but no Redis is configured", *self._scope)
            return None
        verdict = await self._limiter.hit(decision.counter, decision.rate_limit)
        if verdict.fail_open:
            self.stats["rate_limit_unavailable"] += 1
        if verdict.allowed:
            return None
        self.stats["rate_limited"] += 1
        limit = decision.rate_limit
        who = "this API key" if decision.credential is not None else "this client"
        response = error_response(
            429,
            "rate_limited",
            f"Rate limit exceeded: {limit.count} requests per {limit.window_seconds:g} s for {who}. "
            f"Retry after {verdict.retry_after_s} s.",
            request_id,
        )
        response.headers.update(
            {
                "retry-after": str(verdict.retry_after_s),
                "x-ratelimit-limit": str(limit.count),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(verdict.retry_after_s),
            }
        )
        return response

    async def close(self) -> None:
        if self._limiter is not None:
            await self._limiter.close()

    @property
    def _scope(self) -> tuple[str, str]:
        return self.gateway_id, self.environment

    def _refusal(self, decision: Decision, request_id: str) -> HttpResponse:
        outcome = decision.outcome
        if outcome is Outcome.LOADING:
            response = error_response(
                503,
                "unavailable",
                "The access configuration of this environment is still loading; retry shortly.",
                request_id,
            )
            response.headers["retry-after"] = "1"
            return response
        if outcome is Outcome.WRONG_ENVIRONMENT:
            assert decision.credential is not None
            granted = decision.credential.environment
            return error_response(
                403,
                "forbidden",
                f"This API key is granted for environment '{granted}', not '{self.environment}' of "
                f"gateway '{self.gateway_id}'. Call '{granted}', or create a grant for "
                f"'{self.environment}' and use its key.",
                request_id,
                {"credentialId": decision.credential.credential_id, "grantedEnvironment": granted},
            )
        message = _UNAUTHORIZED[outcome]
        response = error_response(401, "unauthorized", message, request_id)
        challenge = f'Bearer realm="{self.gateway_id}/{self.environment}"'
        if outcome is not Outcome.MISSING:
            challenge += ', error="invalid_token"'
        response.headers["www-authenticate"] = challenge
        return response


_INVALID_KEY: Final = (
    "The API key is not valid: it is unknown, revoked, or was replaced by a regenerated key. "
    "Check the key, or create a new grant."
)
_UNAUTHORIZED: Final = {
    Outcome.MISSING: (
        "This environment requires an API key: send it in the `apikey` header "
        "(or as `Authorization: Bearer <key>`)."
    ),
    Outcome.MALFORMED: (
        "The API key header is malformed: send `apikey: <key>` or `Authorization: Bearer <key>` "
        "with the key exactly as it was issued."
    ),
    Outcome.UNKNOWN: _INVALID_KEY,
    Outcome.INACTIVE: _INVALID_KEY,  # a revoked key tells the caller nothing more than an unknown one
}
