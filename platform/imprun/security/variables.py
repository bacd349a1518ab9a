"""The control plane's side of environment-variable encryption: ``VariableCipher``.

Variable values are sealed with AES-256-GCM under their own subkey of the master key
(``MasterKey.derive("environment-variables")``), never the API-key one, with associated data that
binds each ciphertext to its key version, gateway, environment and name. The envelope itself is
``runtime_actors.shared.sealing`` (replicas open what the control plane seals, so it is written once);
this module adds the key derivation and translates failures into ``imprun.errors``. Replicas get the
same key, hex-encoded, in their runtime configuration (``variables_key``), as they get the API-key
pepper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imprun.errors import Internal
from imprun.security.master_key import MasterKey
from runtime_actors.shared.sealing import VariableUnreadable, open_value, seal_value

__all__ = ["VARIABLES_LABEL", "SealedValue", "VariableCipher", "variables_key"]

VARIABLES_LABEL = "environment-variables"


def variables_key(master_key: MasterKey) -> bytes:
    """The 32-byte AES key of variable values; replicas get it (hex) in their runtime config."""
    return master_key.derive(VARIABLES_LABEL)


@dataclass(frozen=True, slots=True)
class SealedValue:
    version: int
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


class VariableCipher:
    """Seals and opens variable values of one key version."""

    def __init__(self, key: bytes, *, version: int = 1) -> None:
        if len(key) != 32:
            raise Internal("the variables key must be 32 bytes (AES-256)")
        self._key = key
        self.version = version

    @classmethod
    def from_master_key(cls, master_key: MasterKey) -> VariableCipher:
        return cls(variables_key(master_key))

    def seal(self, value: str, *, gateway_id: str, environment: str, name: str) -> SealedValue:
        nonce, ciphertext = seal_value(
            self._key, value, version=self.version, gateway_id=gateway_id, environment=environment, name=name
        )
        return SealedValue(self.version, nonce, ciphertext)

    def open(self, sealed: SealedValue, *, gateway_id: str, environment: str, name: str) -> str:
        if sealed.version != self.version:
            raise Internal(
                f"variable {name} was sealed with key version {sealed.version}, which this control "
                "plane does not have; set the variable again"
            )
        try:
            return open_value(
                self._key,
                sealed.nonce,
                sealed.ciphertext,
                version=sealed.version,
                gateway_id=gateway_id,
                environment=environment,
                name=name,
            )
        except VariableUnreadable as exc:
            raise Internal(
                f"variable {name} of {gateway_id}/{environment} does not authenticate (tampered or "
                "moved); set it again"
            ) from exc

    def __repr__(self) -> str:
        return f"VariableCipher(<redacted>, version={self.version})"
