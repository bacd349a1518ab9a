"""API keys: how they are made, looked up, sealed at rest and checked — ``KeyVault``.

A key reads ``imp_<env>_<random>``: the environment it was issued for, then 43 base-62 digits of
32 bytes from ``secrets`` (62**43 > 2**256, so every bit survives). It is shown to its owner once,
when it is created or regenerated, and never stored, logged or put into an error message. At rest a
grant keeps two things instead: the **lookup hash**, an HMAC-SHA256 of the key under a pepper
derived from the master key (``api_key_pepper``; the pepper is never stored in MongoDB, so a stolen
database cannot be used to test guesses), which is what the embedded ingress compares; and the
**sealed key**, AES-256-GCM with a random 96-bit nonce and associated data binding it to its grant
and environment, kept only because APISIX must be given the plaintext. Every sealed key records the
version of the encryption key that sealed it, so a master-key rotation can keep the retired
material for unsealing while sealing with the new one. Rotating the master key also changes the
pepper: re-seal and re-hash every grant with the new vault and restart the replicas.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from imprun.domain.naming import ENVIRONMENT_NAMES
from imprun.errors import Internal, Invalid
from imprun.security.master_key import MasterKey

KEY_SCHEME = "imp"
RANDOM_BYTES = 32
RANDOM_DIGITS = 43
"""Base-62 digits of the random part: 62**43 ≥ 2**256, so 32 random bytes always fit."""
PREFIX_DIGITS = 4
"""Random digits shown in ``key_prefix`` (about 24 of the 256 bits): enough to tell keys apart."""
NONCE_BYTES = 12
PEPPER_LABEL = "api-key-lookup"
ENCRYPTION_LABEL = "api-key-encryption"

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_KEY_SHAPE = re.compile(rf"{KEY_SCHEME}_([a-z]+)_([0-9A-Za-z]{{{RANDOM_DIGITS}}})")


def api_key_pepper(master_key: MasterKey) -> bytes:
    """The 32-byte HMAC key of lookup hashes; replicas get it (hex) in their runtime config."""
    return master_key.derive(PEPPER_LABEL)


def lookup_hash(pepper: bytes, api_key: str) -> str:
    """Hex HMAC-SHA256 of ``api_key`` under ``pepper``: what ``__consumers`` stores and the ingress compares."""
    return hmac.new(pepper, api_key.encode(), hashlib.sha256).hexdigest()


def key_prefix(api_key: str) -> str:
    """``imp_dev_AbCd``: enough to recognise a key in a listing, far too little to use it."""
    scheme, environment, random_part = api_key.split("_", 2)
    return f"{scheme}_{environment}_{random_part[:PREFIX_DIGITS]}"


def _base62(value: int, digits: int) -> str:
    out = []
    for _ in range(digits):
        value, digit = divmod(value, 62)
        out.append(_BASE62[digit])
    if value:
        raise ValueError("value does not fit in the requested number of digits")
    return "".join(reversed(out))


@dataclass(frozen=True, slots=True)
class SealedKey:
    """An API key encrypted at rest: which encryption key version sealed it, its nonce, its ciphertext."""

    version: int
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


class SealedKeyUnreadable(Internal):
    """A sealed key does not authenticate: tampered, moved to another grant, or its key version is gone."""


def _associated_data(version: int, grant_id: str, environment: str) -> bytes:
    return f"imprun:api-key:v{version}:grant={grant_id}:env={environment}".encode()


class KeyVault:
    """Generates keys and turns them into what may be stored (lookup hash, sealed key) and back."""

    def __init__(self, *, pepper: bytes, encryption_keys: Mapping[int, bytes], current_version: int) -> None:
        if len(pepper) < 32:
            raise Invalid("the API-key pepper must be at least 32 bytes")
        if current_version not in encryption_keys:
            raise Invalid(f"no encryption key of version {current_version} was given")
        if any(len(k) != 32 for k in encryption_keys.values()):
            raise Invalid("API-key encryption keys must be 32 bytes (AES-256)")
        self._pepper = pepper
        self._ciphers = {version: AESGCM(key) for version, key in encryption_keys.items()}
        self._current = current_version

    @classmethod
    def from_master_key(
        cls, master_key: MasterKey, *, version: int = 1, retired: Mapping[int, MasterKey] | None = None
    ) -> KeyVault:
        """Seal with ``master_key`` as ``version``; unseal older keys with the ``retired`` material."""
        keys = {v: m.derive(ENCRYPTION_LABEL) for v, m in (retired or {}).items()}
        keys[version] = master_key.derive(ENCRYPTION_LABEL)
        return cls(pepper=api_key_pepper(master_key), encryption_keys=keys, current_version=version)

    @property
    def current_version(self) -> int:
        return self._current

    def generate(self, environment: str) -> str:
        if environment not in ENVIRONMENT_NAMES:
            raise Invalid(f"unknown environment {environment!r}: use one of {', '.join(ENVIRONMENT_NAMES)}")
        random_part = _base62(int.from_bytes(secrets.token_bytes(RANDOM_BYTES), "big"), RANDOM_DIGITS)
        return f"{KEY_SCHEME}_{environment}_{random_part}"

    def lookup_hash(self, api_key: str) -> str:
        return lookup_hash(self._pepper, api_key)

    def verify(self, api_key: str, expected_hash: str) -> bool:
        """Constant-time check of ``api_key`` against a stored lookup hash."""
        return hmac.compare_digest(self.lookup_hash(api_key).encode(), expected_hash.encode())

    def seal(self, api_key: str, *, grant_id: str, environment: str) -> SealedKey:
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = _associated_data(self._current, grant_id, environment)
        ciphertext = self._ciphers[self._current].encrypt(nonce, api_key.encode(), aad)
        return SealedKey(version=self._current, nonce=nonce, ciphertext=ciphertext)

    def unseal(self, sealed: SealedKey, *, grant_id: str, environment: str) -> str:
        """The plaintext key (for ingresses that need it); raises ``SealedKeyUnreadable`` otherwise."""
        cipher = self._ciphers.get(sealed.version)
        if cipher is None:
            raise SealedKeyUnreadable(
                f"grant {grant_id}'s key was sealed with encryption key version {sealed.version}, which "
                "this control plane no longer has; regenerate the key"
            )
        aad = _associated_data(sealed.version, grant_id, environment)
        try:
            return cipher.decrypt(sealed.nonce, sealed.ciphertext, aad).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
            raise SealedKeyUnreadable(
                f"grant {grant_id}'s sealed key does not authenticate (tampered or moved); regenerate the key"
            ) from exc

    def __repr__(self) -> str:
        return f"KeyVault(<redacted>, current_version={self._current})"


def is_well_formed(api_key: str) -> bool:
    """True for ``imp_<env>_<43 base-62 digits>`` with a known environment (no secret is consulted)."""
    match = _KEY_SHAPE.fullmatch(api_key)
    return match is not None and match.group(1) in ENVIRONMENT_NAMES


__all__ = [
    "KeyVault",
    "SealedKey",
    "SealedKeyUnreadable",
    "api_key_pepper",
    "is_well_formed",
    "key_prefix",
    "lookup_hash",
]
