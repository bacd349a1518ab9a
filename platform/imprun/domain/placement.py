"""Where an environment's replicas can run: custom cluster resources and whether any node fits a replica.

A bundle may ask each replica to hold custom resources (``{"gpu_pool_a": 1}``) besides CPU and
memory; cluster nodes offer them (``ray start --resources``), which pins replicas to the nodes that
do. ``check_custom_resources`` is the one validation of such a mapping, shared by the API model and
the driver's ``AppSpec``. ``placement_problem`` is the pure half of "why is this replica not
placed": given what one replica requests, every alive node's total and free resources, how many of
the app's replicas still wait for a node and the request shapes the cluster reports as pending, it
answers ``UNSCHEDULABLE`` when no node could ever hold a replica (compared with nodes' totals: a
node too small never grows), ``INSUFFICIENT_CAPACITY`` when a replica waits for room that some node
has in total but none has free (the cluster holds it once room frees), each with a message naming
what is asked, what is free and what is short, or None. A replica counts as waiting for room only
while the cluster itself lists its request as pending, so one whose worker is merely starting is
not mistaken for one that cannot be placed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from imprun.domain.observations import AppStatus

__all__ = [
    "MAX_CUSTOM_RESOURCES",
    "NodeResources",
    "PlacementProblem",
    "check_custom_resources",
    "placement_problem",
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


@dataclass(frozen=True, slots=True)
class NodeResources:
    """One alive node's resources, in the cluster's names: all it has, and what is free right now."""

    total: Mapping[str, float]
    available: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class PlacementProblem:
    """Why a replica is not placed: ``status`` is ``UNSCHEDULABLE`` or ``INSUFFICIENT_CAPACITY``."""

    status: AppStatus
    message: str


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


def placement_problem(
    request: Mapping[str, float],
    nodes: Sequence[NodeResources],
    *,
    waiting: int,
    pending: Sequence[Mapping[str, float]],
) -> PlacementProblem | None:
    """Why replicas needing ``request`` are not placed on ``nodes`` (the alive ones), or None.

    ``waiting`` is how many of the app's replicas have no node yet; ``pending`` the resource
    requests the cluster reports as waiting for room (one entry per shape)."""
    never = unschedulable_reason(request, [node.total for node in nodes])
    if never is not None:
        return PlacementProblem(AppStatus.UNSCHEDULABLE, never)
    if waiting < 1 or not any(_same_shape(request, shape) for shape in pending):
        return None
    if any(_fits(request, node.available) for node in nodes):
        return None  # room appeared since the cluster reported the request pending: placed any moment
    replicas = "1 replica waits" if waiting == 1 else f"{waiting} replicas wait"
    free = "; ".join(_describe(request, node.available) for node in nodes)
    where = "the only alive node has" if len(nodes) == 1 else f"the {len(nodes)} alive nodes have"
    return PlacementProblem(
        AppStatus.INSUFFICIENT_CAPACITY,
        f"{replicas} for room: each needs {_describe(request, request)}, {where} {free} free "
        f"({_shortfall(request, nodes)}).",
    )


def _same_shape(request: Mapping[str, float], shape: Mapping[str, float]) -> bool:
    wanted = {name for name, amount in request.items() if amount > 0}
    given = {name for name, amount in shape.items() if amount > 0}
    return wanted == given and all(abs(shape[name] - request[name]) <= _EPSILON for name in wanted)


def _shortfall(request: Mapping[str, float], nodes: Sequence[NodeResources]) -> str:
    """``short of CPU by 0.3``: each resource no node has enough of free, by how much the roomiest
    node misses it; or that no single node has all of it free at once."""
    short = []
    for name in _ordered(request):
        most_free = max((node.available.get(name, 0.0) for node in nodes), default=0.0)
        if most_free + _EPSILON < request[name]:
            short.append(f"{name} by {_amount(name, request[name] - most_free)}")
    if not short:
        return "no single node has all of it free at once"
    return "short of " + ", ".join(short)


def _fits(request: Mapping[str, float], total: Mapping[str, float]) -> bool:
    return all(total.get(name, 0.0) + _EPSILON >= amount for name, amount in request.items())


def _describe(request: Mapping[str, float], amounts: Mapping[str, float]) -> str:
    """``{CPU: 2, memory: 512 MiB, pool_a: 0}``: the requested names, with ``amounts``' values."""
    return (
        "{"
        + ", ".join(f"{name}: {_amount(name, amounts.get(name, 0.0))}" for name in _ordered(request))
        + "}"
    )


def _ordered(request: Mapping[str, float]) -> list[str]:
    return sorted(request, key=lambda name: (name not in _BUILT_IN_ORDER, _BUILT_IN_ORDER.get(name, 0), name))


def _amount(name: str, amount: float) -> str:
    return f"{amount / _MIB:.0f} MiB" if name == "memory" else f"{amount:g}"
