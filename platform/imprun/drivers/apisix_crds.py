"""What imprun asks of APISIX, as data: object names, plugin configurations and custom resources.

Pure functions, no I/O. ``imprun.drivers.apisix`` sends the Admin API objects built from these
pieces; clusters that run the APISIX ingress controller get the same intent as custom resources
(``apisix.apache.org/v2``): per environment an ``ApisixRoute`` on host ``{gw}.{env}.<domain>`` with
``key-auth`` (``hide_credentials``), ``proxy-rewrite`` to ``/{gw}/{env}/…`` (with ``X-Forwarded-For``
set to the caller's address) and, with a rate limit, ``limit-count`` on Redis (429 when exceeded),
plus an ``ApisixUpstream`` named like the environment's Serve ``Service``; per grant an
``ApisixConsumer`` whose key stays in a Kubernetes ``Secret`` (``secretRef``; the plaintext never
appears in the custom resource). Names are deterministic, so rendering again yields the same objects.

Two controller facts shape the resources: it applies ``authentication.keyAuth`` after a rule's
``plugins`` (so a ``key-auth`` plugin there would lose ``hide_credentials``, and we configure
``key-auth`` as a plugin instead), and it picks up an ``ApisixUpstream`` by the backend Service's
name. Unlike the Admin API path, the custom resources cannot confine a consumer to its own
environment's route (the controller chooses the APISIX route ids), so in that mode a key of one
environment authenticates on the others; the function runtime must check ``X-Consumer-Username``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from imprun.domain.environment import RateLimit
from imprun.drivers.cluster import validate_app_ref
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid

__all__ = [
    "API_VERSION",
    "KEY_HEADER",
    "RedisCounters",
    "consumer_resource_name",
    "consumer_username",
    "environment_host",
    "environment_object_id",
    "key_auth_route_config",
    "limit_count_config",
    "object_labels",
    "proxy_rewrite_config",
    "render_consumer",
    "render_key_secret",
    "render_route",
    "render_upstream",
    "route_limit_key",
    "validate_domain",
    "validate_route",
]

API_VERSION: Final = "apisix.apache.org/v2"
KEY_HEADER: Final = "apikey"
"""The request header callers put their API key in (docs/api.md; also key-auth's default)."""
FORWARDED_FOR_HEADER: Final = "X-Forwarded-For"
"""Set by the route to the caller's address, which Serve's proxies believe from the ingress only."""

AUTH_KEY: Final = "key-auth"
AUTH_NONE: Final = "none"
REJECTED_CODE: Final = 429
RULE_NAME: Final = "serve"
MANAGED_BY: Final = "imprun"

_DOMAIN: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_HOST: Final = re.compile(r"[0-9A-Za-z._-]+")  # APISIX's host_def, without the wildcard
_CREDENTIAL_ID: Final = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*", re.IGNORECASE)  # e.g. ``cred_0a1b…``
_USERNAME_MAX: Final = 100
_RESOURCE_NAME_MAX: Final = 253


@dataclass(frozen=True, slots=True)
class RedisCounters:
    """Where ``limit-count`` keeps its counters (``policy: redis``), shared by every APISIX node."""

    host: str
    port: int = 6379
    database: int = 0

    def __post_init__(self) -> None:
        if not self.host or not _HOST.fullmatch(self.host):
            raise Invalid(f"Redis host {self.host!r} for APISIX rate limits is not a host name or address.")
        if not 1 <= self.port <= 65535:
            raise Invalid(f"Redis port for APISIX rate limits must be 1-65535, got {self.port}.")
        if self.database < 0:
            raise Invalid(f"Redis database for APISIX rate limits must be >= 0, got {self.database}.")


# Names -------------------------------------------------------------------------------------------


def validate_domain(domain: str) -> str:
    """Return ``domain`` if environment hosts can live under it, else raise ``Invalid``."""
    if len(domain) > 200 or not _DOMAIN.fullmatch(domain):
        raise Invalid(
            f"APISIX domain {domain!r} is not a lowercase DNS name such as 'api.example.com'; "
            "environments are served on '<gateway>.<environment>.<domain>'.",
            details={"field": "domain", "value": domain},
        )
    return domain


def environment_host(gateway_id: str, environment: str, domain: str) -> str:
    """The host one environment answers on: ``{gw}.{env}.<domain>``."""
    validate_app_ref(gateway_id, environment)
    return f"{gateway_id}.{environment}.{validate_domain(domain)}"


def environment_object_id(gateway_id: str, environment: str) -> str:
    """Id of an environment's APISIX route and upstream, and name of its custom resources.

    ``imprun-<gw>-<env>``: at most 55 characters of ``[a-z0-9-]``, valid as an Admin API id
    (``[a-zA-Z0-9-_.]``, 64 at most) and as a Kubernetes name; unambiguous because the environment,
    one of three fixed names without '-', always comes last.
    """
    validate_app_ref(gateway_id, environment)
    return f"{MANAGED_BY}-{gateway_id}-{environment}"


def consumer_username(gateway_id: str, environment: str, credential_id: str) -> str:
    """The Admin API consumer of one grant: ``imprun_<gw>_<env>_<credentialId>``.

    APISIX consumer usernames allow only ``[a-zA-Z0-9_]`` (100 at most), so the gateway id's '-'
    become '_' (gateway ids never contain '_'). A credential id made of letters and digits in
    '_'-separated words (the platform's ``cred_<hex>``) is kept; any other, or one too long, is
    replaced by ``x`` + 32 hex digits of its SHA-256. Two grants share a name only if one credential
    id ends with ``_<env>_`` + another one, which ids of one shape (``cred_<hex>``) never do.
    """
    validate_app_ref(gateway_id, environment)
    prefix = f"{MANAGED_BY}_{gateway_id.replace('-', '_')}_{environment}_"
    return prefix + _token(credential_id, "_", _USERNAME_MAX - len(prefix))


def consumer_resource_name(gateway_id: str, environment: str, credential_id: str) -> str:
    """The ``ApisixConsumer`` (and key ``Secret``) name of one grant: ``imprun-<gw>-<env>-<id>``.

    Like ``consumer_username`` with the credential id's '_' written '-' (``cred-0a1b…``), and ids
    with capitals hashed too, as Kubernetes names are lowercase. The controller derives the APISIX
    username ``<namespace>_<name>`` from it, which APISIX caps at 100 characters: keep gateway
    namespaces short.
    """
    prefix = environment_object_id(gateway_id, environment) + "-"
    return prefix + _token(credential_id, "-", _RESOURCE_NAME_MAX - len(prefix), lowercase=True)


def _token(credential_id: str, separator: str, room: int, *, lowercase: bool = False) -> str:
    """The credential id as a name part, or ``x`` + a digest when it cannot be one as it is."""
    if not credential_id:
        raise Invalid("A consumer credential needs a non-empty credential id.")
    plain = _CREDENTIAL_ID.fullmatch(credential_id) and len(credential_id) <= room
    if plain and not (lowercase and credential_id != credential_id.lower()):
        return credential_id.replace("_", separator)
    return "x" + hashlib.sha256(credential_id.encode()).hexdigest()[:32]


# Plugin configurations ---------------------------------------------------------------------------


def validate_route(route: EnvironmentRoute) -> None:
    """Raise ``Invalid`` unless ``route`` describes something APISIX can serve."""
    validate_app_ref(route.gateway_id, route.environment)
    if route.auth_type not in (AUTH_KEY, AUTH_NONE):
        raise Invalid(
            f"Unknown auth type {route.auth_type!r} for {route.gateway_id}/{route.environment}: "
            f"use '{AUTH_KEY}' or '{AUTH_NONE}'."
        )
    if not route.upstream_host or not _HOST.fullmatch(route.upstream_host):
        raise Invalid(f"Upstream host {route.upstream_host!r} is not a host name or address.")
    if not 1 <= route.upstream_port <= 65535:
        raise Invalid(f"Upstream port must be 1-65535, got {route.upstream_port}.")


def key_auth_route_config() -> dict[str, Any]:
    """Route side of ``key-auth``: the key comes in ``apikey`` and is not passed upstream."""
    return {"header": KEY_HEADER, "hide_credentials": True}


def proxy_rewrite_config(gateway_id: str, environment: str) -> dict[str, Any]:
    """``/{fn}…`` on the environment's host becomes ``/{gw}/{env}/{fn}…`` for the Serve ingress, and
    ``X-Forwarded-For`` becomes the address APISIX was called from, replacing what the caller sent
    (Serve's proxies believe it from the ingress only: ``IMPRUN_KUBERAY_INGRESS_PROXIES``)."""
    validate_app_ref(gateway_id, environment)
    return {
        "regex_uri": ["^/(.*)", f"/{gateway_id}/{environment}/$1"],
        "headers": {"set": {FORWARDED_FOR_HEADER: "$remote_addr"}},
    }


def limit_count_config(
    limit: RateLimit, *, key: str, redis: RedisCounters, redis_password: str | None = None
) -> dict[str, Any]:
    """``limit-count`` counting per ``key`` (an APISIX variable) in Redis, answering 429 when over
    (``RateLimit`` itself refuses a count or window below 1)."""
    config: dict[str, Any] = {
        "count": limit.count,
        "time_window": limit.window_seconds,
        "rejected_code": REJECTED_CODE,
        "key_type": "var",
        "key": key,
        "policy": "redis",
        "redis_host": redis.host,
        "redis_port": redis.port,
        "redis_database": redis.database,
    }
    if redis_password:
        config["redis_password"] = redis_password
    return config


def route_limit_key(route: EnvironmentRoute) -> str:
    """What a route's limit counts by: the consumer behind a key, or the client address."""
    return "consumer_name" if route.auth_type == AUTH_KEY else "remote_addr"


def object_labels(gateway_id: str, environment: str) -> dict[str, str]:
    """Labels on every object imprun writes for one environment (Admin API and Kubernetes)."""
    validate_app_ref(gateway_id, environment)
    return {"managed-by": MANAGED_BY, "imprun-gateway": gateway_id, "imprun-environment": environment}


# Custom resources --------------------------------------------------------------------------------


def _metadata(name: str, labels: dict[str, str], namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _plugin(name: str, config: dict[str, Any], secret_ref: str | None = None) -> dict[str, Any]:
    plugin: dict[str, Any] = {"name": name, "enable": True, "config": config}
    if secret_ref is not None:
        plugin["secretRef"] = secret_ref
    return plugin


def _limit_plugin(
    limit: RateLimit, key: str, redis: RedisCounters | None, redis_secret: str | None, what: str
) -> dict[str, Any]:
    if redis is None:
        raise Invalid(f"{what} has a rate limit, which needs the Redis that APISIX counts in.")
    # A Redis password comes from ``redis_secret`` (key ``redis_password``), never from the resource.
    return _plugin("limit-count", limit_count_config(limit, key=key, redis=redis), redis_secret)


def render_route(
    route: EnvironmentRoute,
    domain: str,
    upstream_service: str,
    *,
    namespace: str | None = None,
    ingress_class: str | None = None,
    redis: RedisCounters | None = None,
    redis_secret: str | None = None,
) -> dict[str, Any]:
    """The ``ApisixRoute`` serving one environment through the Kubernetes ``upstream_service``.

    ``redis`` is required when the route has a rate limit; ``redis_secret`` names a Secret whose
    ``redis_password`` key the controller merges into ``limit-count``.
    """
    validate_route(route)
    gw, env = route.gateway_id, route.environment
    plugins: list[dict[str, Any]] = []
    if route.auth_type == AUTH_KEY:
        plugins.append(_plugin("key-auth", key_auth_route_config()))
    plugins.append(_plugin("proxy-rewrite", proxy_rewrite_config(gw, env)))
    if route.rate_limit is not None:
        what = f"Environment {gw}/{env}"
        plugins.append(_limit_plugin(route.rate_limit, route_limit_key(route), redis, redis_secret, what))
    rule = {
        "name": RULE_NAME,
        "match": {"hosts": [environment_host(gw, env, domain)], "paths": ["/*"]},
        "backends": [{"serviceName": upstream_service, "servicePort": route.upstream_port}],
        "plugins": plugins,
    }
    spec: dict[str, Any] = {"http": [rule]}
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    name = environment_object_id(gw, env)
    return {
        "apiVersion": API_VERSION,
        "kind": "ApisixRoute",
        "metadata": _metadata(name, object_labels(gw, env), namespace),
        "spec": spec,
    }


def render_upstream(
    route: EnvironmentRoute,
    upstream_service: str,
    *,
    namespace: str | None = None,
    ingress_class: str | None = None,
) -> dict[str, Any]:
    """The ``ApisixUpstream`` for the environment's Serve ``Service`` (it must carry that name)."""
    validate_route(route)
    spec: dict[str, Any] = {"loadbalancer": {"type": "roundrobin"}, "scheme": "http", "passHost": "pass"}
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    return {
        "apiVersion": API_VERSION,
        "kind": "ApisixUpstream",
        "metadata": _metadata(
            upstream_service, object_labels(route.gateway_id, route.environment), namespace
        ),
        "spec": spec,
    }


def _require_publishable(credential: ConsumerCredential) -> None:
    if not credential.active:
        raise Invalid(
            f"Credential {credential.credential_id} is revoked: delete its ApisixConsumer and Secret "
            "instead of rendering them."
        )


def render_consumer(
    credential: ConsumerCredential,
    secret_name: str,
    *,
    namespace: str | None = None,
    ingress_class: str | None = None,
    redis: RedisCounters | None = None,
    redis_secret: str | None = None,
) -> dict[str, Any]:
    """The ``ApisixConsumer`` of one grant; its key is read from the Secret ``secret_name``."""
    _require_publishable(credential)
    gw, env = credential.gateway_id, credential.environment
    spec: dict[str, Any] = {"authParameter": {"keyAuth": {"secretRef": {"name": secret_name}}}}
    if credential.rate_limit is not None:
        what = f"Credential {credential.credential_id}"
        spec["plugins"] = [_limit_plugin(credential.rate_limit, "consumer_name", redis, redis_secret, what)]
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    name = consumer_resource_name(gw, env, credential.credential_id)
    return {
        "apiVersion": API_VERSION,
        "kind": "ApisixConsumer",
        "metadata": _metadata(name, object_labels(gw, env), namespace),
        "spec": spec,
    }


def render_key_secret(
    credential: ConsumerCredential, secret_name: str, *, namespace: str | None = None
) -> dict[str, Any]:
    """The ``Secret`` holding one grant's key under ``key``, where the controller reads it."""
    _require_publishable(credential)
    if not credential.api_key:
        raise Invalid(
            f"Credential {credential.credential_id} has no plaintext key; decrypt it before rendering "
            "the Secret APISIX reads it from."
        )
    encoded = base64.b64encode(credential.api_key.encode()).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(
            secret_name, object_labels(credential.gateway_id, credential.environment), namespace
        ),
        "data": {"key": encoded},
    }
