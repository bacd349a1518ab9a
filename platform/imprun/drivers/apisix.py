"""``ApisixDriver``: the ``IngressDriver`` that configures APISIX through its Admin API (v3).

Per environment it keeps an upstream (the environment's Serve ingress) and a route on host
``{gw}.{env}.<domain>``, both with id ``imprun-<gw>-<env>``: ``key-auth`` reading ``apikey`` and
hiding it from the upstream (unless the environment is public), ``proxy-rewrite`` of ``/…`` to
``/{gw}/{env}/…``, and with a rate limit ``limit-count`` on Redis answering 429, counted per consumer
(per client address on public environments). Per grant it keeps one consumer
``imprun_<gw>_<env>_<credentialId>`` carrying the plaintext key (``key-auth``), a
``consumer-restriction`` to its environment's route (a key of ``dev`` gets 403 on ``prod``) and, when
the grant has its own limit, a ``limit-count`` that replaces the environment's for that consumer.

Only ``PUT`` (create or replace) with these deterministic ids and ``DELETE`` are used, so every call
may be repeated and an object deleted behind our back is recreated by the next ``apply_*``. The
upstream is written before the route and deleted after it, so a route never points at a missing
upstream; an upstream this call created is removed again when its route cannot be written. Errors
are translated here: unreachable Admin API, timeouts, 5xx and a rejected admin key →
``Unavailable`` (the reconciler retries with back-off and records an event); a configuration APISIX
refuses → ``Invalid``. Messages and logs never contain the admin key, the Redis password or an API
key, even when APISIX echoes them. Calls block; async callers run them in a worker thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Final

import httpx
from pydantic import SecretStr

from imprun.domain.environment import RateLimit
from imprun.drivers.apisix_crds import (
    AUTH_KEY,
    RedisCounters,
    consumer_username,
    environment_host,
    environment_object_id,
    key_auth_route_config,
    limit_count_config,
    object_labels,
    proxy_rewrite_config,
    route_limit_key,
    validate_domain,
    validate_route,
)
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid, Unavailable

__all__ = ["ApisixDriver"]

log = logging.getLogger(__name__)

_ADMIN_PREFIX: Final = "/apisix/admin"
_REDACTED: Final = "***"
_DESC_MAX: Final = 256
_PROBLEM_MAX: Final = 500
# 400 answers that clear on their own: APISIX checks references against its workers' cached view,
# which lags behind etcd for a moment after a write or delete.
_TRANSIENT_REFERENCE_ERRORS: Final = ("is still using it now", "failed to fetch upstream info")


class ApisixDriver:
    """Routes, upstreams and consumers on the APISIX Admin API at ``admin_url``.

    ``admin_url`` is the Admin API's base (``http://apisix-admin:9180``, with or without
    ``/apisix/admin``). ``transport`` replaces httpx's network transport (tests).
    """

    needs_plaintext_keys: bool = True

    def __init__(
        self,
        admin_url: str,
        admin_key: str | SecretStr,
        domain: str,
        redis_host: str,
        redis_port: int,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        redis_password: str | SecretStr | None = None,
        redis_database: int = 0,
    ) -> None:
        self._admin_key = _reveal(admin_key)
        if not self._admin_key:
            raise Invalid("The APISIX admin key is empty: set IMPRUN_APISIX_ADMIN_KEY.")
        self._redis_password = _reveal(redis_password) if redis_password is not None else None
        self._domain = validate_domain(domain)
        self._redis = RedisCounters(redis_host, redis_port, redis_database)
        if not timeout > 0:
            raise Invalid(f"The APISIX Admin API timeout must be positive, got {timeout}.")
        self._timeout = timeout
        self._base_url = _admin_base_url(admin_url)
        self._client = httpx.Client(
            base_url=self._base_url,
            headers={"X-API-KEY": self._admin_key},
            timeout=timeout,
            transport=transport,
        )

    # IngressDriver ------------------------------------------------------------------------------

    def apply_environment(self, route: EnvironmentRoute) -> None:
        object_id = environment_object_id(route.gateway_id, route.environment)
        upstream, route_body = self._upstream_body(route), self._route_body(route)
        created = self._put(f"/upstreams/{object_id}", upstream, f"writing upstream {object_id}")
        try:
            self._put(f"/routes/{object_id}", route_body, f"writing route {object_id}")
        except (Unavailable, Invalid):
            if created:
                self._discard_new_upstream(object_id)
            raise
        log.debug("APISIX route %s serves %s", object_id, route_body["host"])

    def delete_environment(self, gateway_id: str, environment: str) -> None:
        object_id = environment_object_id(gateway_id, environment)
        self._delete(f"/routes/{object_id}", f"deleting route {object_id}")
        self._delete(f"/upstreams/{object_id}", f"deleting upstream {object_id}")

    def apply_consumer(self, credential: ConsumerCredential) -> None:
        username = consumer_username(credential.gateway_id, credential.environment, credential.credential_id)
        if not credential.active:  # a revoked key must stop working: its consumer goes
            self._delete(f"/consumers/{username}", f"deleting consumer {username} of a revoked grant")
            return
        if not credential.api_key:
            raise Invalid(
                f"Credential {credential.credential_id} has no plaintext key; APISIX needs it "
                "(ApisixDriver.needs_plaintext_keys)."
            )
        body = self._consumer_body(credential, username)
        self._put("/consumers", body, f"writing consumer {username}", secrets=(credential.api_key,))

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None:
        username = consumer_username(gateway_id, environment, credential_id)
        self._delete(f"/consumers/{username}", f"deleting consumer {username}")

    def close(self) -> None:
        self._client.close()

    # Admin API objects --------------------------------------------------------------------------

    def _upstream_body(self, route: EnvironmentRoute) -> dict[str, Any]:
        validate_route(route)
        gw, env = route.gateway_id, route.environment
        return {
            "name": environment_object_id(gw, env),
            "desc": f"Serve ingress of imprun gateway {gw}, environment {env}",
            "labels": object_labels(gw, env),
            "type": "roundrobin",
            "scheme": "http",
            "pass_host": "pass",
            "nodes": [{"host": route.upstream_host, "port": route.upstream_port, "weight": 1}],
        }

    def _route_body(self, route: EnvironmentRoute) -> dict[str, Any]:
        validate_route(route)
        gw, env = route.gateway_id, route.environment
        plugins: dict[str, Any] = {"proxy-rewrite": proxy_rewrite_config(gw, env)}
        if route.auth_type == AUTH_KEY:
            plugins["key-auth"] = key_auth_route_config()
        if route.rate_limit is not None:
            plugins["limit-count"] = self._limit(route.rate_limit, route_limit_key(route))
        object_id = environment_object_id(gw, env)
        return {
            "name": object_id,
            "desc": f"imprun gateway {gw}, environment {env}",
            "labels": object_labels(gw, env),
            "host": environment_host(gw, env, self._domain),
            "uri": "/*",
            "upstream_id": object_id,
            "plugins": plugins,
        }

    def _consumer_body(self, credential: ConsumerCredential, username: str) -> dict[str, Any]:
        gw, env = credential.gateway_id, credential.environment
        plugins: dict[str, Any] = {
            "key-auth": {"key": credential.api_key},
            "consumer-restriction": {
                "type": "route_id",
                "whitelist": [environment_object_id(gw, env)],
                "rejected_code": 403,
            },
        }
        if credential.rate_limit is not None:
            plugins["limit-count"] = self._limit(credential.rate_limit, "consumer_name")
        desc = f"imprun grant {credential.grant_id} of application {credential.application_id}"
        return {
            "username": username,
            "desc": desc[:_DESC_MAX],
            "labels": object_labels(gw, env),
            "plugins": plugins,
        }

    def _limit(self, limit: RateLimit, key: str) -> dict[str, Any]:
        return limit_count_config(limit, key=key, redis=self._redis, redis_password=self._redis_password)

    # HTTP ---------------------------------------------------------------------------------------

    def _put(self, path: str, body: dict[str, Any], what: str, *, secrets: Iterable[str] = ()) -> bool:
        """PUT one object; True when APISIX created it (201), False when it replaced one (200)."""
        response = self._request("PUT", path, what, body=body, secrets=secrets)
        if response.status_code == 404:
            raise Invalid(f"The APISIX Admin API at {self._base_url} has no such resource ({what}).")
        return response.status_code == 201

    def _delete(self, path: str, what: str) -> None:
        """DELETE one object; a missing one is already what we want."""
        self._request("DELETE", path, what)

    def _discard_new_upstream(self, object_id: str) -> None:
        """Best effort: remove an upstream created for a route that could not be written."""
        try:
            self._delete(f"/upstreams/{object_id}", f"removing upstream {object_id} again")
        except (Unavailable, Invalid) as exc:
            log.warning("Upstream %s stays until the next reconcile: %s", object_id, exc.message)

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: dict[str, Any] | None = None,
        secrets: Iterable[str] = (),
    ) -> httpx.Response:
        hidden = (*secrets, *self._secrets())
        where = f"APISIX Admin API at {self._base_url}"
        try:
            response = self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"The {where} did not answer within {self._timeout:g} s while {what}; retrying later.",
                details={"operation": what},
            ) from exc
        except httpx.TransportError as exc:
            reason = _redact(f"{type(exc).__name__}: {exc}", hidden)
            raise Unavailable(
                f"Cannot reach the {where} while {what} ({reason}); check that APISIX runs and "
                "IMPRUN_APISIX_ADMIN_URL.",
                details={"operation": what},
            ) from exc
        status = response.status_code
        log.debug("APISIX %s %s -> %d", method, path, status)
        if status < 300 or status == 404:  # 404: the caller knows whether missing is fine
            return response
        problem = _redact(_error_message(response), hidden)[:_PROBLEM_MAX]
        details = {"operation": what, "status": status}
        if status in (401, 403):
            raise Unavailable(
                f"The {where} refused the admin key (HTTP {status}) while {what}; set "
                "IMPRUN_APISIX_ADMIN_KEY to a key with the admin role. Retrying later.",
                details=details,
            )
        if status >= 500 or status == 429 or _is_transient(problem):
            raise Unavailable(
                f"The {where} failed while {what} (HTTP {status}: {problem}); retrying later.",
                details=details,
            )
        raise Invalid(f"APISIX refused {what} (HTTP {status}): {problem}", details=details)

    def _secrets(self) -> tuple[str, ...]:
        return (self._admin_key, self._redis_password or "")


def _reveal(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _admin_base_url(admin_url: str) -> str:
    try:
        url = httpx.URL(admin_url)
    except httpx.InvalidURL as exc:
        raise Invalid(f"APISIX admin URL {admin_url!r} is not a URL.") from exc
    if url.userinfo:
        raise Invalid("The APISIX admin URL must not carry credentials; set IMPRUN_APISIX_ADMIN_KEY instead.")
    if url.scheme not in ("http", "https") or not url.host:
        raise Invalid(f"APISIX admin URL {admin_url!r} must be http(s)://host[:port].")
    base = str(url.copy_with(query=None, fragment=None)).rstrip("/")
    return base if base.endswith(_ADMIN_PREFIX) else base + _ADMIN_PREFIX


def _error_message(response: httpx.Response) -> str:
    """APISIX says what is wrong in ``error_msg`` (or ``message``); fall back to the raw text."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for field in ("error_msg", "message"):
            if isinstance(payload.get(field), str):
                return str(payload[field])
    return response.text or response.reason_phrase


def _is_transient(problem: str) -> bool:
    return any(marker in problem for marker in _TRANSIENT_REFERENCE_ERRORS)


def _redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, also in its JSON-escaped spelling, before anything is cut short."""
    spellings = {form for secret in secrets if secret for form in (secret, json.dumps(secret)[1:-1])}
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelling, _REDACTED)
    return text
