"""What a replica needs besides its gateway and environment: ``RuntimeConfig``, JSON-able for ``serveConfigV2``.

The control plane's drivers build it and hand it to Serve as the application's ``args``; each replica
reads it back (``from_args``, which refuses unknown or malformed arguments) and derives what it opens
with: the API-key pepper and the key that opens the environment's sealed variables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

from runtime_actors.shared.sealing import VariableOpener

__all__ = ["RuntimeConfig"]


@dataclass(frozen=True)
class RuntimeConfig:
    """What a replica needs besides its gateway and environment; JSON-able for ``serveConfigV2``."""

    mongo_url: str | None = None
    redis_url: str | None = None
    sys_db_name: str = "imprun_sys"
    insecure_dev: bool = False
    max_request_bytes: int = 1_048_576
    worker_pool_size: int = 2
    egress_allow: tuple[str, ...] = ()
    egress_denied_ports: tuple[int, ...] = ()
    """The cluster's Ray ports the driver knows (GCS, dashboard); replicas add their node's own."""
    api_key_pepper: str = field(default="", repr=False)
    """Hex of the 32-byte HMAC key of API-key lookup hashes; empty: no key can match."""
    variables_key: str = field(default="", repr=False)
    """Hex of the 32-byte AES key that opens environment variables; empty: ``imp.env`` stays empty."""
    log_retention_entries: int = 10_000
    """Approximate cap of the environment's log stream (``XADD MAXLEN ~``)."""
    log_max_bytes: int = 4 * 1024 * 1024
    """Redis memory the environment's log stream may hold before its oldest entries are trimmed."""
    gateway_db_max_bytes: int = 256 * 1024 * 1024
    """Data and index bytes of the gateway's database past which ``imp.db()`` refuses writes."""

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> RuntimeConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown runtime argument(s) {unknown}; expected some of {sorted(known)}")
        values = dict(args)
        if "egress_allow" in values:
            values["egress_allow"] = tuple(values["egress_allow"] or ())
        if "egress_denied_ports" in values:
            values["egress_denied_ports"] = tuple(int(port) for port in values["egress_denied_ports"] or ())
        config = cls(**values)
        positive = (
            "max_request_bytes",
            "worker_pool_size",
            "log_retention_entries",
            "log_max_bytes",
            "gateway_db_max_bytes",
        )
        if any(getattr(config, name) < 1 for name in positive):
            raise ValueError(f"{', '.join(positive)} must be positive")
        config.pepper()
        config.variables_opener("", "")
        return config

    def to_args(self) -> dict[str, Any]:
        values = asdict(self)
        values["egress_allow"] = list(self.egress_allow)
        values["egress_denied_ports"] = list(self.egress_denied_ports)
        for name in (
            _OMITTED_AT_DEFAULT
        ):  # a field at its default stays out, so adding one changes no existing digest
            if values[name] == _DEFAULTS[name]:
                del values[name]
        return values

    def pepper(self) -> bytes:
        try:
            return bytes.fromhex(self.api_key_pepper)
        except ValueError:
            raise ValueError("api_key_pepper must be hex (or empty)") from None

    def variables_opener(self, gateway_id: str, environment: str) -> VariableOpener | None:
        """What opens the environment's sealed variables; None without a ``variables_key``."""
        try:
            key = bytes.fromhex(self.variables_key)
        except ValueError:
            raise ValueError("variables_key must be hex (or empty)") from None
        return VariableOpener(gateway_id, environment, {1: key}) if key else None

    def digest(self) -> str:
        """Changes whenever the configuration does (part of the deployment version: replicas restart)."""
        return hashlib.sha256(json.dumps(self.to_args(), sort_keys=True).encode()).hexdigest()[:12]


_DEFAULTS: Final = {f.name: f.default for f in fields(RuntimeConfig)} | {"egress_denied_ports": []}
_OMITTED_AT_DEFAULT: Final = (
    "api_key_pepper",
    "variables_key",
    "log_retention_entries",
    "egress_denied_ports",
    "gateway_db_max_bytes",
    "log_max_bytes",
)
