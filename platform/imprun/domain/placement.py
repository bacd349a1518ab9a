"""Where an environment's replicas can run: custom cluster resources and whether any node fits a replica.

A bundle may ask each replica to hold custom resources (``{"gpu_pool_a": 1}``) besides CPU and
memory; cluster nodes offer them (``ray start --resources``), which pins replicas to the nodes that
do. ``check_custom_resources`` is the one validation of such a mapping, shared by the API model and
the driver's ``AppSpec``. ``unschedulable_reason`` is the pure half of the "no node can ever hold a
replica" check: given what one replica requests and the total resources of every alive node, it
says why none fits (or None), so an environment shows an ``Unschedulable`` condition instead of
deploying forever. It compares against nodes' totals, not what is free right now: a busy node frees
up, a node too small never grows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "MAX_CUSTOM_RESOURCES",
    "check_custom_resources",
    "replica_request",
    "unschedulable_reason",
]

MAX_CUSTOM_RESOURCES: Final = 16

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# The cluster's built-in resources have their own bundle fields (cpu, memory) or are not ours to ask.
_RESERVED: Final = frozenset({"cpu", "gpu", "memory", "object_store_memory"})
_SMALLEST_AMOUNT: Final = 0.0001  # the cluster's resource granularity
_LARGEST_AMOUNT: Final = 1_000_000.0
_EPSILON: Final = 1e-9
_BUILT_IN_ORDER: Final = {"CPU": 0, "memory": 1}  # messages list these first, then custom ones by name
_MIB: Final = 1024 * 1024


def check_custom_resources(resources: Mapping[str, float]) -> dict[str, float]:
    """A plain copy of ``resources``, or ``ValueError`` saying which name or amount is wrong.

    Names are 1 to 64 letters, digits, ``_`` or ``-`` starting with a letter and not one of the
    built-in resources; amounts are finite, at least 0.0001 and at most one million.
    """
    if len(resources) > MAX_CUSTOM_RESOURCES:
        raise ValueError(f"at most {MAX_CUSTOM_RESOURCES} custom resources, got {len(resources)}")
    checked: dict[str, float] = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"custom resource name {name!r} must be 1-64 letters, digits, '_' or '-', starting with a letter"
            )
        if name.lower() in _RESERVED:
            raise ValueError(f"{name!r} is a built-in resource: use the bundle's cpu and memory fields")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise ValueError(f"custom resource {name!r} needs a number, got {amount!r}")
        if not math.isfinite(amount) or not _SMALLEST_AMOUNT <= amount <= _LARGEST_AMOUNT:
            raise ValueError(
                f"custom resource {name!r} must be between {_SMALLEST_AMOUNT} and {_LARGEST_AMOUNT:g}, "
                f"got {amount}"
            )
        checked[name] = float(amount)
    return checked


def replica_request(cpu: float, memory_bytes: float, custom: Mapping[str, float]) -> dict[str, float]:
    """What one replica asks of a node, in the cluster's resource names (zero amounts left out)."""
    request = {"CPU": cpu, "memory": memory_bytes, **custom}
    return {name: amount for name, amount in request.items() if amount > 0}


def unschedulable_reason(
    request: Mapping[str, float], node_totals: Sequence[Mapping[str, float]]
) -> str | None:
    """Why no node in ``node_totals`` (each alive node's total resources) can ever hold a replica
    needing ``request``; None when at least one can."""
    if any(_fits(request, total) for total in node_totals):
        return None
    wanted = _describe(request, request)
    if not node_totals:
        return f"Each replica needs {wanted} but no node of the cluster is alive."
    offers = "; ".join(_describe(request, total) for total in node_totals)
    nodes = (
        "the only alive node offers" if len(node_totals) == 1 else f"the {len(node_totals)} alive nodes offer"
    )
    return (
        f"Each replica needs {wanted} but no node offers that; {nodes} {offers}. "
        "Change the bundle or add a node that has it."
    )


def _fits(request: Mapping[str, float], total: Mapping[str, float]) -> bool:
    return all(total.get(name, 0.0) + _EPSILON >= amount for name, amount in request.items())


def _describe(request: Mapping[str, float], amounts: Mapping[str, float]) -> str:
    """``{CPU: 2, memory: 512 MiB, pool_a: 0}``: the requested names, with ``amounts``' values."""
    parts = []
    for name in sorted(
        request, key=lambda name: (name not in _BUILT_IN_ORDER, _BUILT_IN_ORDER.get(name, 0), name)
    ):
        amount = amounts.get(name, 0.0)
        shown = f"{amount / _MIB:.0f} MiB" if name == "memory" else f"{amount:g}"
        parts.append(f"{name}: {shown}")
    return "{" + ", ".join(parts) + "}"
