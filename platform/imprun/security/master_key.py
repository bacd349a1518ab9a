"""The master key material: from ``IMPRUN_MASTER_KEY`` or generated once into ``<data_dir>/master.key``.

All platform-held secrets (the API-key pepper, the AES-256-GCM keys for stored credentials and
variables) are derived from it with HKDF, each with its own label, so one setting covers them all.
The generated file is created with mode 0600 atomically; it is never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from imprun.errors import Invalid
from imprun.settings import Settings

MASTER_KEY_FILE = "master.key"
KEY_BYTES = 32


class MasterKey:
    """32 bytes of key material; ``derive(label)`` gives an independent 32-byte subkey."""

    def __init__(self, material: bytes) -> None:
        if len(material) < KEY_BYTES:
            raise Invalid(f"the master key must be at least {KEY_BYTES} bytes (base64-encoded)")
        self._material = material

    def derive(self, label: str, *, length: int = KEY_BYTES) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=f"imprun:{label}".encode())
        return hkdf.derive(self._material)

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid("IMPRUN_MASTER_KEY must be base64 (e.g. `openssl rand -base64 32`)") from exc


def load_master_key(settings: Settings) -> MasterKey:
    """The configured key, else the one in the data dir, else a new one written there (0600)."""
    if settings.master_key is not None:
        return MasterKey(_decode(settings.master_key.get_secret_value()))
    path = Path(settings.data_dir) / MASTER_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded + b"\n")
    if path.stat().st_mode & 0o077:
        raise Invalid(f"{path} is readable by other users; run `chmod 600 {path}`")
    return MasterKey(_decode(path.read_text()))
