"""Reading a RayService: its readiness as an ``ObservedApp``, and what kind of change an update is.

Pure functions over the RayService dicts the API server returns. Readiness comes from
``status.conditions[type=Ready]`` and ``status.activeServiceStatus.applicationStatuses[<app>]``
(Serve's RUNNING / DEPLOYING / DEPLOY_FAILED / UNHEALTHY); a RayService being deleted is
``DELETING``; one that is still not Ready ``ready_timeout`` seconds after imprun last changed it (the
``imprun.io/changed-at`` annotation) is ``DEPLOY_FAILED`` with the operator's reason and message.
``change_of`` tells an in-place update (only ``serveConfigV2`` or worker replica bounds differ:
KubeRay redeploys the Serve apps or scales the running cluster) from a cluster upgrade (anything
else in ``rayClusterConfig`` differs: KubeRay builds a new Ray cluster and moves traffic once it is
ready). A RayService whose spec no longer holds what imprun wrote (``imprun.io/applied-spec``) was
edited by hand: it reads as ``DEPLOY_FAILED`` so the reconciler applies it again, which puts it back.
Comparisons ignore fields the API server adds (defaults): only what imprun set counts.
``unplaced_pods`` reads the pods of a RayService that is not Ready yet: a pod the scheduler could not
place (``PodScheduled`` False, reason ``Unschedulable``) makes the application ``INSUFFICIENT_CAPACITY``
when the scheduler found nodes short of room (``Insufficient cpu``, ``Insufficient memory``, …: room
may free, or the cluster autoscaler add a node) and ``UNSCHEDULABLE`` otherwise (no node matches its
selector, affinity or taints), quoting the pod's requests and the scheduler's message. The scheduler
does not say how much is free, and cannot tell a node too small from a full one: both are
"Insufficient".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from imprun.drivers.cluster import AppStatus, ObservedApp

__all__ = [
    "APPLIED_SPEC",
    "CHANGED_AT",
    "DRIFT_MESSAGE",
    "AppChange",
    "applied_spec",
    "change_of",
    "contains",
    "observed_app",
    "unplaced_pods",
]

CHANGED_AT: Final = "imprun.io/changed-at"
"""Annotation: when imprun last wrote the RayService's spec (ISO 8601, UTC)."""
APPLIED_SPEC: Final = "imprun.io/applied-spec"
"""Annotation: the spec imprun last wrote (JSON), to notice edits made by hand."""
DRIFT_MESSAGE: Final = "the RayService was changed outside imprun; the next apply puts it back"

_SERVE_STATUSES: Final = {
    "RUNNING": AppStatus.RUNNING,
    "DEPLOYING": AppStatus.DEPLOYING,
    "NOT_STARTED": AppStatus.DEPLOYING,
    "DEPLOY_FAILED": AppStatus.DEPLOY_FAILED,
    "UNHEALTHY": AppStatus.UNHEALTHY,
    "DELETING": AppStatus.DELETING,
}
_SCALING_FIELDS: Final = frozenset({"replicas", "minReplicas", "maxReplicas", "scaleStrategy"})


class AppChange(StrEnum):
    """What an ``apply`` did to a RayService."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    IN_PLACE_UPDATE = "in-place update"
    CLUSTER_UPGRADE = "cluster upgrade"
    REPAIRED = "repaired"
    """Only metadata (labels, annotations) differed: a hand edit put back."""


def contains(live: Any, wanted: Any) -> bool:
    """Whether ``live`` holds every field of ``wanted`` with its value: fields the API server added
    (defaults) do not count as differences, fields imprun set and someone changed do."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(
            k in live and contains(live[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(contains, live, wanted))
    return bool(live == wanted)


def change_of(current: Mapping[str, Any], desired: Mapping[str, Any]) -> AppChange:
    """How ``desired`` differs from the ``current`` RayService (specs and imprun's labels)."""
    old, new = current.get("spec") or {}, desired.get("spec") or {}
    if not contains(old, new):
        old_cluster, new_cluster = old.get("rayClusterConfig"), new.get("rayClusterConfig")
        if not contains(_cluster_shape(old_cluster), _cluster_shape(new_cluster)):
            return AppChange.CLUSTER_UPGRADE
        return AppChange.IN_PLACE_UPDATE
    wanted_labels = desired.get("metadata", {}).get("labels") or {}
    labels = current.get("metadata", {}).get("labels") or {}
    if not contains(labels, wanted_labels):
        return AppChange.REPAIRED
    return AppChange.UNCHANGED


def applied_spec(spec: Mapping[str, Any]) -> str:
    """The ``APPLIED_SPEC`` annotation of a RayService written with ``spec``."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _drifted(resource: Mapping[str, Any]) -> bool:
    recorded = ((resource.get("metadata") or {}).get("annotations") or {}).get(APPLIED_SPEC)
    if not recorded:
        return False
    try:
        wanted = json.loads(recorded)
    except ValueError:
        return True
    return not contains(resource.get("spec") or {}, wanted)


def _cluster_shape(config: Any) -> Any:
    """The cluster config without worker replica counts, which KubeRay scales in place (they are
    left out of the hash it compares to decide on a new cluster)."""
    if not isinstance(config, Mapping):
        return config
    groups = [
        {k: v for k, v in group.items() if k not in _SCALING_FIELDS}
        for group in config.get("workerGroupSpecs") or []
        if isinstance(group, Mapping)
    ]
    return {**config, "workerGroupSpecs": groups}


def _ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            found: Mapping[str, Any] = condition
            return found
    return None


def _operator_reason(status: Mapping[str, Any]) -> str:
    ready = _ready_condition(status)
    if ready is None:
        return "the operator has not reported a Ready condition"
    reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")
    return ": ".join(part for part in (reason, message) if part) or "Ready is False without a reason"


def _changed_at(resource: Mapping[str, Any]) -> datetime | None:
    metadata = resource.get("metadata") or {}
    stamp = (metadata.get("annotations") or {}).get(CHANGED_AT) or metadata.get("creationTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def observed_app(
    resource: Mapping[str, Any] | None, app_name: str, *, now: datetime, ready_timeout: float
) -> ObservedApp:
    """The status of Serve application ``app_name`` of the RayService ``resource`` (None: missing)."""
    if resource is None:
        return ObservedApp(AppStatus.MISSING)
    if (resource.get("metadata") or {}).get("deletionTimestamp"):
        return ObservedApp(AppStatus.DELETING, "the RayService is being deleted")
    if _drifted(resource):  # reported as failed, so the reconciler applies it again
        return ObservedApp(AppStatus.DEPLOY_FAILED, DRIFT_MESSAGE)
    status = resource.get("status") or {}
    applications = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    app = applications.get(app_name) or {}
    serve_status = _SERVE_STATUSES.get(str(app.get("status") or ""), AppStatus.DEPLOYING)
    message = str(app.get("message") or "")
    ready = _ready_condition(status)
    is_ready = ready is not None and ready.get("status") == "True"
    if serve_status in (AppStatus.DEPLOY_FAILED, AppStatus.UNHEALTHY):
        return ObservedApp(serve_status, message or _operator_reason(status))
    if is_ready and serve_status is AppStatus.RUNNING:
        return ObservedApp(AppStatus.RUNNING, message)
    changed = _changed_at(resource)
    if changed is not None and (now - changed).total_seconds() > ready_timeout:
        waited = f"not Ready {ready_timeout:g} s after the last change"
        return ObservedApp(AppStatus.DEPLOY_FAILED, f"{waited}: {_operator_reason(status)}")
    return ObservedApp(AppStatus.DEPLOYING, message or _operator_reason(status))


def unplaced_pods(pods: list[Mapping[str, Any]]) -> ObservedApp | None:
    """Why pods of an application wait for a node (``INSUFFICIENT_CAPACITY`` or ``UNSCHEDULABLE``), or None."""
    reasons = []
    short_of_room = False
    for pod in pods:
        waiting = _unscheduled(pod)
        if waiting is None:
            continue
        short_of_room = short_of_room or "Insufficient " in waiting
        name = str((pod.get("metadata") or {}).get("name") or "?")
        reasons.append(f"pod {name} (requests {_requests(pod)}) is not scheduled: {waiting}")
    if not reasons:
        return None
    status = AppStatus.INSUFFICIENT_CAPACITY if short_of_room else AppStatus.UNSCHEDULABLE
    return ObservedApp(status, "; ".join(reasons)[:_MESSAGE_MAX])


_MESSAGE_MAX: Final = 480


def _unscheduled(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    for condition in status.get("conditions") or []:
        scheduled = (condition.get("type"), condition.get("status"), condition.get("reason"))
        if scheduled == ("PodScheduled", "False", "Unschedulable"):
            return str(condition.get("message") or "the scheduler found no node for it").strip()
    return None


def _requests(pod: Mapping[str, Any]) -> str:
    wanted: dict[str, str] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for name, amount in ((container.get("resources") or {}).get("requests") or {}).items():
            wanted.setdefault(str(name), str(amount))
    return "{" + ", ".join(f"{name}: {amount}" for name, amount in sorted(wanted.items())) + "}"
