"""Per-user quotas, checked where a request would add to a user's footprint.

``Quotas`` reads its limits from the settings (``IMPRUN_QUOTA_*``) and raises ``QuotaExceeded`` —
403 ``quota_exceeded`` with the quota's name, its limit and the current use (or the amount asked
for, for a bundle's maxima) in ``details`` — before the request changes anything: a new gateway
(count and bundle), a new function (count per gateway), code over the size quota. Variables per
environment are counted by ``VariableService`` and history versions are trimmed by the store, with
the limits the composition root hands them.
"""

from __future__ import annotations

from imprun.domain.gateway import Bundle
from imprun.errors import QuotaExceeded
from imprun.settings import Settings

__all__ = ["Quotas"]

_ASK = "ask the operator for a higher quota"


class Quotas:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def check_new_gateway(self, owned: int, bundle: Bundle | None) -> None:
        limits = self._settings
        _count("gateways", owned, limits.quota_gateways, "gateways; delete one first")
        if bundle is not None:
            self.check_bundle(bundle)

    def check_bundle(self, bundle: Bundle) -> None:
        limits = self._settings
        _at_most("bundle cpu", bundle.cpu, limits.quota_bundle_cpu, "CPUs per replica")
        _at_most("bundle memory", bundle.memory_mb, limits.quota_bundle_memory_mb, "MiB per replica")
        _at_most(
            "bundle replicas", bundle.max_replicas, limits.quota_bundle_replicas, "replicas (maxReplicas)"
        )
        for name, amount in bundle.resources.items():
            _at_most("bundle resources", amount, limits.quota_bundle_resources, f"of the resource {name!r}")

    def check_new_function(self, existing: int) -> None:
        limit = self._settings.quota_functions_per_gateway
        _count("functions per gateway", existing, limit, "functions in this gateway; delete one first")

    def check_code(self, code: str | None) -> None:
        if code is not None:
            size, limit = len(code.encode()), self._settings.quota_code_bytes
            if size > limit:
                raise QuotaExceeded(
                    f"the code is {size} bytes, over your quota of {limit}; split it or {_ASK}",
                    quota="code bytes",
                    limit=limit,
                    used=size,
                )


def _count(quota: str, used: int, limit: int, what: str) -> None:
    if used + 1 > limit:
        raise QuotaExceeded(
            f"you already have {used} of your {limit} {what}, or {_ASK}", quota=quota, limit=limit, used=used
        )


def _at_most(quota: str, asked: float, limit: float, what: str) -> None:
    if asked > limit:
        raise QuotaExceeded(
            f"the bundle asks for {asked:g} {what}, over your quota of {limit:g}; ask for less or {_ASK}",
            quota=quota,
            limit=limit,
            used=asked,
        )
