"""Environment variables at rest and in a replica: AES-256-GCM envelopes bound to where they belong.

Both sides of ``imp.env`` use this module, so the envelope is defined once. The control plane seals
each value (``seal_value``) with the variables key (``MasterKey.derive("environment-variables")``,
see ``imprun.security.variables``) under a fresh 96-bit nonce, with associated data naming the key
version, gateway, environment and variable, so a ciphertext copied to another variable or
environment does not open. The system database stores only ``{nonce, ciphertext, keyVersion}``;
the reload hub hands those documents to the replicas unopened, and each replica's supervisor opens
them with the key from its runtime configuration (``VariableOpener``) just before the values go down
the pipe to its jailed workers. Plaintext therefore never crosses MongoDB, the Ray object store or
a log line; ``VariableSet.secrets`` lets the supervisor redact secret values from function logs.
"""

from __future__ import annotations

import logging
import secrets as _random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "VariableOpener",
    "VariableSet",
    "VariableUnreadable",
    "open_value",
    "seal_value",
]

logger = logging.getLogger(__name__)

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
REDACTED: Final = "••••"
"""What a secret value is replaced with in function logs."""
_MIN_REDACTED_LENGTH: Final = 4
"""Shorter secret values are not redacted from logs (they would blank out ordinary words)."""


class VariableUnreadable(Exception):
    """A sealed value does not authenticate: wrong key, tampered, or moved to another variable."""


def _associated_data(version: int, gateway_id: str, environment: str, name: str) -> bytes:
    return f"imprun:env-var:v{version}:gw={gateway_id}:env={environment}:name={name}".encode()


def seal_value(
    key: bytes, value: str, *, version: int, gateway_id: str, environment: str, name: str
) -> tuple[bytes, bytes]:
    """``(nonce, ciphertext)`` of ``value`` under ``key``, bound to the variable's place."""
    nonce = _random.token_bytes(NONCE_BYTES)
    aad = _associated_data(version, gateway_id, environment, name)
    return nonce, AESGCM(key).encrypt(nonce, value.encode(), aad)


def open_value(
    key: bytes,
    nonce: bytes,
    ciphertext: bytes,
    *,
    version: int,
    gateway_id: str,
    environment: str,
    name: str,
) -> str:
    """The plaintext of a sealed value; ``VariableUnreadable`` when it does not authenticate."""
    aad = _associated_data(version, gateway_id, environment, name)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
        raise VariableUnreadable(f"variable {name} of {gateway_id}/{environment} does not open") from exc


@dataclass(frozen=True)
class VariableSet:
    """An environment's opened variables: ``values`` for ``imp.env``, ``secrets`` for redaction."""

    values: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def redact(self, message: str) -> str:
        """``message`` with every secret value (of at least four characters) replaced by ``••••``."""
        for secret in self.secrets:
            if len(secret) >= _MIN_REDACTED_LENGTH and secret in message:
                message = message.replace(secret, REDACTED)
        return message

    def __repr__(self) -> str:
        return f"VariableSet(<{len(self.values)} values redacted>)"


class VariableOpener:
    """Opens the sealed documents the reload hub delivers, with this replica's variables key.

    ``keys`` maps a key version to its 32 bytes; a document sealed with an unknown version, or one
    that does not authenticate, is left out of ``imp.env`` and logged by name (never by value).
    """

    def __init__(self, gateway_id: str, environment: str, keys: Mapping[int, bytes]) -> None:
        if any(len(k) != KEY_BYTES for k in keys.values()):
            raise ValueError("variables keys must be 32 bytes (AES-256)")
        self._gateway_id = gateway_id
        self._environment = environment
        self._keys = dict(keys)

    def open(self, documents: Iterable[Mapping[str, Any]]) -> VariableSet:
        values: dict[str, str] = {}
        secret_values: set[str] = set()
        for document in documents:
            name = str(document.get("name"))
            try:
                version = int(document["keyVersion"])
                key = self._keys.get(version)
                if key is None:
                    raise VariableUnreadable(f"no variables key of version {version}")
                value = open_value(
                    key,
                    bytes(document["nonce"]),
                    bytes(document["ciphertext"]),
                    version=version,
                    gateway_id=self._gateway_id,
                    environment=self._environment,
                    name=name,
                )
            except (KeyError, TypeError, ValueError, VariableUnreadable) as exc:
                logger.error(
                    "%s/%s: variable %s left out of imp.env: %s",
                    self._gateway_id,
                    self._environment,
                    name,
                    exc,
                )
                continue
            values[name] = value
            if document.get("secret"):
                secret_values.add(value)
        return VariableSet(values, frozenset(secret_values))

    def __repr__(self) -> str:
        return f"VariableOpener({self._gateway_id}/{self._environment}, <keys redacted>)"
