"""Gateway ids and the names derived from them: Serve apps, route prefixes, gateway databases.

A gateway id is a DNS-safe slug (``my-api``) because it ends up in a Ray Serve application name
(``<gw>-<env>``), an HTTP route prefix (``/<gw>/<env>``), a MongoDB database name (``gatewayid_<gw>``)
and, in production, a Kubernetes namespace and an APISIX host. ``validate_gateway_id`` says precisely
what is wrong with a bad id; ``slugify_gateway_id`` derives a valid one from a display name. The three
environments every gateway has are fixed: ``ENVIRONMENT_NAMES``. Pure string functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Final, Literal

from pydantic import AfterValidator

from imprun.errors import Invalid

EnvironmentName = Literal["dev", "staging", "prod"]
ENVIRONMENT_NAMES: Final[tuple[EnvironmentName, ...]] = ("dev", "staging", "prod")

GATEWAY_ID_MIN_LENGTH: Final = 3
GATEWAY_ID_MAX_LENGTH: Final = 40
GATEWAY_DB_PREFIX: Final = "gatewayid_"

RESERVED_GATEWAY_IDS: Final[frozenset[str]] = frozenset(
    {
        "ai-gateway",
        "api",
        "admin",
        "console",
        "healthz",
        "imprun",
        "mcp",
        "metrics",
        "readyz",
        "shared",
        "system",
    }
)
"""Ids that would collide with platform routes, Serve apps of the platform itself or, under KubeRay,
the platform's namespaces (``imprun-system``, ``imprun-shared``)."""

_NOT_SLUG_CHARACTERS: Final = re.compile(r"[^a-z0-9]+")
_FALLBACK_SLUG: Final = "gateway"
_SLUG_PREFIX: Final = "gw-"
_SLUG_PADDING: Final = "-gw"
_EXAMPLE: Final = "use lowercase letters, digits and '-', e.g. 'orders-api'"


def validate_gateway_id(value: str) -> str:
    """Return ``value`` if it is a valid gateway id, else raise ``Invalid`` saying what to change."""
    problem = gateway_id_problem(value)
    if problem is not None:
        raise Invalid(
            f"Invalid gateway id {value!r}: {problem}.",
            details={"field": "gatewayId", "value": value, "problem": problem},
        )
    return value


def _gateway_id_field(value: str) -> str:
    problem = gateway_id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


GatewayId = Annotated[str, AfterValidator(_gateway_id_field)]
"""A pydantic ``str`` field validated as a gateway id: a bad id fails validation with the problem."""


def is_valid_gateway_id(value: str) -> bool:
    return gateway_id_problem(value) is None


def gateway_id_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a gateway id, in words for the user; ``None`` if it is valid."""
    if not GATEWAY_ID_MIN_LENGTH <= len(value) <= GATEWAY_ID_MAX_LENGTH:
        return (
            f"it must be {GATEWAY_ID_MIN_LENGTH} to {GATEWAY_ID_MAX_LENGTH} characters long, not {len(value)}"
        )
    bad = sorted({character for character in value if not _is_slug_character(character)})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}; {_EXAMPLE}"
    if not value[0].isalpha():
        return f"it must start with a letter; {_EXAMPLE}"
    if value.endswith("-"):
        return "it must not end with '-'"
    if value in RESERVED_GATEWAY_IDS:
        return "it is reserved by the platform; choose another id"
    return None


def _is_slug_character(character: str) -> bool:
    return character == "-" or ("a" <= character <= "z") or ("0" <= character <= "9")


def slugify_gateway_id(name: str, suffix: str = "") -> str:
    """Derive a valid gateway id from a display name: ``"Orders API (v2)"`` → ``"orders-api-v2"``.

    ``suffix`` (e.g. a few random characters chosen by the caller when the plain slug is taken) is
    appended after a ``-`` and always kept whole; the name part is shortened to make room for it.
    """
    suffix_slug = _collapse(suffix)
    base = _collapse(name) or _FALLBACK_SLUG
    if not base[0].isalpha():
        base = _SLUG_PREFIX + base
    room = GATEWAY_ID_MAX_LENGTH - (len(suffix_slug) + 1 if suffix_slug else 0)
    if room < GATEWAY_ID_MIN_LENGTH:
        raise Invalid(
            f"Suffix {suffix!r} is too long for a gateway id; keep it under "
            f"{GATEWAY_ID_MAX_LENGTH - GATEWAY_ID_MIN_LENGTH} characters."
        )
    candidate = _join(base[:room], suffix_slug)
    if len(candidate) < GATEWAY_ID_MIN_LENGTH or candidate in RESERVED_GATEWAY_IDS:
        padded = base[: room - len(_SLUG_PADDING)].rstrip("-") + _SLUG_PADDING
        candidate = _join(padded, suffix_slug)
    return validate_gateway_id(candidate)


def _collapse(text: str) -> str:
    """Lowercase ASCII letters and digits, every other run of characters becoming one '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG_CHARACTERS.sub("-", ascii_text.lower()).strip("-")


def _join(base: str, suffix: str) -> str:
    base = base.rstrip("-")
    return f"{base}-{suffix}" if suffix else base


def serve_app_name(gateway_id: str, environment: str) -> str:
    """The Ray Serve application serving one environment of a gateway."""
    return f"{gateway_id}-{environment}"


def route_prefix(gateway_id: str, environment: str) -> str:
    """The HTTP path prefix under which one environment of a gateway answers."""
    return f"/{gateway_id}/{environment}"


def gateway_db_name(gateway_id: str) -> str:
    """The MongoDB database holding a gateway's published functions, consumers and tenant data."""
    return f"{GATEWAY_DB_PREFIX}{gateway_id}"
