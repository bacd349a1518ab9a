"""``KeyVault``: key format and entropy, the peppered lookup hash, AES-256-GCM sealing bound to its
grant and environment, key versions across a master-key rotation, and nothing secret in a repr."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import re
import secrets
import string

import pytest

from imprun.errors import Invalid
from imprun.security import api_keys
from imprun.security.api_keys import (
    KeyVault,
    SealedKey,
    SealedKeyUnreadable,
    api_key_pepper,
    is_well_formed,
    key_prefix,
)
from imprun.security.master_key import MasterKey

KEY_SHAPE = re.compile(r"^imp_(dev|staging|prod)_[0-9A-Za-z]{43}$")
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def master(seed: int = 1) -> MasterKey:
    return MasterKey(bytes([seed]) * 32)


@pytest.fixture
def vault() -> KeyVault:
    return KeyVault.from_master_key(master())


def random_part(key: str) -> str:
    return key.split("_", 2)[2]


def decode_base62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + BASE62.index(char)
    return value


# --- format and entropy ----------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_keys_read_imp_env_random(vault: KeyVault, environment: str) -> None:
    key = vault.generate(environment)
    assert KEY_SHAPE.match(key) and key.startswith(f"imp_{environment}_")
    assert is_well_formed(key)
    assert not is_well_formed(key + "\n")
    assert key_prefix(key) == key[: len(f"imp_{environment}_") + 4]


def test_every_one_of_256_random_bits_from_secrets_reaches_the_key(
    vault: KeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    drawn = secrets.token_bytes(32)

    def token_bytes(n: int) -> bytes:
        asked.append(n)
        return drawn

    monkeypatch.setattr(api_keys.secrets, "token_bytes", token_bytes)
    key = vault.generate("dev")
    assert asked == [32]  # 256 bits, asked of `secrets`
    assert decode_base62(random_part(key)) == int.from_bytes(drawn, "big")  # and none of them lost
    # The extremes encode too (fixed width, leading zeros kept).
    for extreme in (b"\x00" * 32, b"\xff" * 32):
        drawn = extreme
        assert decode_base62(random_part(vault.generate("dev"))) == int.from_bytes(extreme, "big")


def test_keys_are_unique_and_their_digits_look_uniform(vault: KeyVault) -> None:
    keys = [vault.generate("prod") for _ in range(5000)]
    assert len(set(keys)) == len(keys)
    assert len({random_part(k)[:8] for k in keys}) == len(keys)  # even 8 digits (~48 bits) never repeat
    counts = collections.Counter(char for key in keys for char in random_part(key)[1:])
    expected = 5000 * 42 / 62
    assert set(counts) == set(BASE62)
    assert all(abs(count - expected) < expected * 0.2 for count in counts.values()), counts


def test_unknown_environments_get_no_key(vault: KeyVault) -> None:
    with pytest.raises(Invalid, match="unknown environment"):
        vault.generate("qa")
    assert not is_well_formed("imp_qa_" + "a" * 43)
    assert not is_well_formed("imp_dev_short")


# --- lookup hash -----------------------------------------------------------------------------------


def test_the_lookup_hash_is_a_deterministic_hmac_under_the_master_key_pepper(vault: KeyVault) -> None:
    key = vault.generate("dev")
    pepper = api_key_pepper(master())
    assert len(pepper) == 32 and pepper == master().derive("api-key-lookup")
    expected = hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()
    assert vault.lookup_hash(key) == expected == KeyVault.from_master_key(master()).lookup_hash(key)
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert vault.verify(key, expected)
    assert not vault.verify(vault.generate("dev"), expected)
    assert not vault.verify(key, expected[:-1] + ("0" if expected[-1] != "0" else "1"))


def test_the_lookup_hash_depends_on_the_pepper(vault: KeyVault) -> None:
    key = vault.generate("dev")
    other = KeyVault.from_master_key(master(2))
    assert other.lookup_hash(key) != vault.lookup_hash(key)
    assert hashlib.sha256(key.encode()).hexdigest() != vault.lookup_hash(key)  # not a bare hash either


# --- sealing ---------------------------------------------------------------------------------------


def test_a_sealed_key_round_trips_and_hides_the_key(vault: KeyVault) -> None:
    key = vault.generate("staging")
    sealed = vault.seal(key, grant_id="grant_a", environment="staging")
    assert sealed.version == vault.current_version == 1
    assert len(sealed.nonce) == 12 and len(sealed.ciphertext) == len(key) + 16  # GCM tag
    assert key.encode() not in sealed.ciphertext and random_part(key).encode() not in sealed.ciphertext
    assert vault.unseal(sealed, grant_id="grant_a", environment="staging") == key
    again = vault.seal(key, grant_id="grant_a", environment="staging")
    assert again.nonce != sealed.nonce and again.ciphertext != sealed.ciphertext  # random nonce


def test_tampering_with_a_sealed_key_is_detected(vault: KeyVault) -> None:
    key = vault.generate("dev")
    sealed = vault.seal(key, grant_id="grant_a", environment="dev")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    for bad in (
        SealedKey(sealed.version, sealed.nonce, flipped),
        SealedKey(sealed.version, bytes(12), sealed.ciphertext),
        SealedKey(sealed.version, sealed.nonce, sealed.ciphertext[:-1]),
    ):
        with pytest.raises(SealedKeyUnreadable) as caught:
            vault.unseal(bad, grant_id="grant_a", environment="dev")
        assert key not in caught.value.message and random_part(key) not in str(caught.value)


@pytest.mark.parametrize(
    ("grant_id", "environment"), [("grant_b", "dev"), ("grant_a", "prod"), ("grant_b", "staging")]
)
def test_a_sealed_key_opens_only_for_its_grant_and_environment(
    vault: KeyVault, grant_id: str, environment: str
) -> None:
    sealed = vault.seal(vault.generate("dev"), grant_id="grant_a", environment="dev")
    with pytest.raises(SealedKeyUnreadable, match="does not authenticate"):
        vault.unseal(sealed, grant_id=grant_id, environment=environment)


def test_the_key_version_survives_a_master_key_rotation() -> None:
    old = KeyVault.from_master_key(master(1))
    key = old.generate("prod")
    sealed_v1 = old.seal(key, grant_id="g", environment="prod")
    rotated = KeyVault.from_master_key(master(2), version=2, retired={1: master(1)})
    assert rotated.current_version == 2
    assert rotated.unseal(sealed_v1, grant_id="g", environment="prod") == key
    sealed_v2 = rotated.seal(key, grant_id="g", environment="prod")
    assert sealed_v2.version == 2 and rotated.unseal(sealed_v2, grant_id="g", environment="prod") == key
    # Material that is gone, or a version number that lies, never yields a key.
    with pytest.raises(SealedKeyUnreadable, match="version 2"):
        old.unseal(sealed_v2, grant_id="g", environment="prod")
    with pytest.raises(SealedKeyUnreadable):
        rotated.unseal(SealedKey(2, sealed_v1.nonce, sealed_v1.ciphertext), grant_id="g", environment="prod")


def test_nothing_secret_shows_in_a_repr(vault: KeyVault) -> None:
    key = vault.generate("dev")
    sealed = vault.seal(key, grant_id="g", environment="dev")
    pepper = api_key_pepper(master())
    texts = [repr(vault), repr(sealed), str(sealed)]
    for text in texts:
        assert pepper.hex() not in text and base64.b64encode(pepper).decode() not in text
        assert repr(sealed.ciphertext) not in text and repr(sealed.nonce) not in text
    assert "redacted" in repr(vault)


def test_weak_material_is_refused() -> None:
    with pytest.raises(Invalid):
        KeyVault(pepper=b"short", encryption_keys={1: bytes(32)}, current_version=1)
    with pytest.raises(Invalid):
        KeyVault(pepper=bytes(32), encryption_keys={1: bytes(16)}, current_version=1)
    with pytest.raises(Invalid):
        KeyVault(pepper=bytes(32), encryption_keys={1: bytes(32)}, current_version=2)
