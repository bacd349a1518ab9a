"""``KubeRayDriver``: the ``ClusterDriver`` that runs gateway environments as KubeRay RayServices.

It talks to the Kubernetes API server with the official ``kubernetes`` client and keeps the objects
``imprun.drivers.k8s_objects`` renders: ``apply`` first makes sure the gateway's namespace
``imprun-<gw>`` holds its ResourceQuota, default-deny NetworkPolicy and MongoDB Secret, then writes
the RayService ``<gw>-<env>``; ``observe`` reads the RayService's readiness (``kuberay_status``)
and, while it is not Ready, its pods: one the scheduler cannot place makes the application
``INSUFFICIENT_CAPACITY`` or ``UNSCHEDULABLE`` with the scheduler's reason;
``delete`` removes the RayService and ``release_gateway`` the whole namespace once the gateway is
gone. Platform-wide applications are RayServices in the system namespace; the shared runtime's is in
a namespace of its own, made like a gateway's (network policy, its own MongoDB Secret).

Every write is create-or-replace: read the object; create it when missing (409: someone was faster,
read again); otherwise compare what imprun owns (spec, data, imprun's labels) with what is there and
replace it with the read ``resourceVersion`` when they differ (409: it changed meanwhile, read
again). Applying twice changes nothing, and an object edited or deleted by hand is put back on the
next apply. Each RayService write is reported as created, in-place update (only ``serveConfigV2``
changed) or cluster upgrade (``rayClusterConfig`` changed) through ``on_change`` and the log.
API-server 5xx, 429, timeouts and refused connections are retried with exponential back-off and
then raised as ``Unavailable``; a rejected object (400/422) is ``Invalid``; 401/403 are
``Unavailable`` naming the missing permission. Calls block; async callers run them in a thread.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from imprun.domain.gateway import Tier
from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import AppSpec, AppStatus, ObservedApp, PlatformAppSpec, validate_app_ref
from imprun.drivers.k8s_objects import (
    ENVIRONMENT_LABEL,
    GATEWAY_LABEL,
    MANAGED_BY_LABEL,
    PLATFORM_APP_LABEL,
    SERVE_PORT,
    RayPods,
    gateway_objects,
    namespace_name,
    platform_namespace,
    render_platform_rayservice,
    render_rayservice,
    shared_runtime_objects,
)
from imprun.drivers.kuberay_status import (
    APPLIED_SPEC,
    CHANGED_AT,
    DRIFT_MESSAGE,
    AppChange,
    applied_spec,
    change_of,
    contains,
    observed_app,
    unplaced_pods,
)
from imprun.errors import Invalid, Unavailable
from imprun.settings import Settings
from runtime_actors.shared.names import SHARED_RUNTIME_APP

__all__ = [
    "AppChange",
    "ChangeListener",
    "KubeRayDriver",
    "open_api_client",
    "open_kuberay_driver",
    "ray_pods",
]

log = logging.getLogger(__name__)

ChangeListener = Callable[[str | None, str, AppChange], None]
"""Told ``(gateway id or None for platform apps, application name, change)`` after each RayService write."""

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayservices"
_CONFLICT_ATTEMPTS: Final = 5
_MAX_BACKOFF_S: Final = 5.0
_PROBLEM_MAX: Final = 500
# Statuses of a RayService whose pods may be waiting for a node (DEPLOY_FAILED: not Ready in time).
_MAYBE_UNPLACED: Final = frozenset({AppStatus.DEPLOYING, AppStatus.UNHEALTHY, AppStatus.DEPLOY_FAILED})


class _Missing(Exception):
    """404 from the API server."""


class _Conflicted(Exception):
    """409 from the API server (exists already, or a stale resourceVersion)."""


def open_api_client(settings: Settings) -> k8s.ApiClient:
    """A client for ``IMPRUN_KUBERAY_API_URL``, else the pod's service account, else the kubeconfig.

    urllib3's own retries are off: ``KubeRayDriver`` retries with back-off and says what failed.
    """
    configuration = k8s.Configuration()
    if settings.kuberay_api_url:
        configuration.host = settings.kuberay_api_url.rstrip("/")
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            try:
                k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except (k8s_config.ConfigException, OSError) as exc:
                raise Invalid(
                    "No Kubernetes API to talk to: set IMPRUN_KUBERAY_API_URL, run in a pod, or provide a "
                    f"kubeconfig ({exc})."
                ) from exc
    configuration.retries = False
    return k8s.ApiClient(configuration)


def ray_pods(settings: Settings) -> RayPods:
    return RayPods(
        image=settings.kuberay_image,
        runtime_class=settings.kuberay_runtime_class,
        head_cpu=settings.kuberay_head_cpu,
        head_memory_mb=settings.kuberay_head_memory_mb,
        ingress_namespace=settings.kuberay_ingress_namespace,
        operator_namespace=settings.kuberay_operator_namespace,
        system_namespace=settings.kuberay_system_namespace,
        shared_namespace=settings.kuberay_shared_namespace,
        ingress_proxies=settings.kuberay_ingress_proxies,
    )


def open_kuberay_driver(
    settings: Settings,
    *,
    api_key_pepper: bytes,
    variables_key: bytes,
    gateway_mongo_url: Callable[[str], str],
    gateway_redis_url: Callable[[str], str | None],
    shared_runtime_mongo_url: Callable[[], str],
    on_change: ChangeListener | None = None,
) -> KubeRayDriver:
    """The driver for ``IMPRUN_CLUSTER_DRIVER=kuberay``: replicas get the local driver's runtime
    configuration (``local_ray.runtime_config``) with their gateway's own MongoDB URL and, unless
    ``gateway_redis_url`` gives None, Redis URL (the shared runtime gets its own)."""
    from imprun.drivers.local_ray import runtime_config  # imports ray: only for this driver

    shared = runtime_config(settings, api_key_pepper, variables_key).to_args()

    def runtime_args(gateway_id: str) -> dict[str, Any]:
        redis_url = gateway_redis_url(gateway_id)
        return {
            **shared,
            "mongo_url": gateway_mongo_url(gateway_id),
            **({"redis_url": redis_url} if redis_url is not None else {}),
        }

    return KubeRayDriver(
        open_api_client(settings),
        settings,
        runtime_args=runtime_args,
        gateway_mongo_url=gateway_mongo_url,
        shared_runtime_mongo_url=shared_runtime_mongo_url,
        on_change=on_change,
    )


class KubeRayDriver:
    """Gateway environments as RayServices on the cluster ``api_client`` talks to.

    ``runtime_args(gateway_id)`` gives the replicas' ``RuntimeConfig`` arguments (``mongo_url`` the
    gateway's own); ``gateway_mongo_url(gateway_id)`` what goes into the gateway's Secret, and
    ``shared_runtime_mongo_url()`` into the shared runtime's.
    """

    def __init__(
        self,
        api_client: k8s.ApiClient,
        settings: Settings,
        *,
        runtime_args: Callable[[str], Mapping[str, Any]],
        gateway_mongo_url: Callable[[str], str],
        shared_runtime_mongo_url: Callable[[], str],
        on_change: ChangeListener | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api_client
        self._core = k8s.CoreV1Api(api_client)
        self._networking = k8s.NetworkingV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self._pods = ray_pods(settings)
        self._timeout = settings.kuberay_request_timeout_seconds
        self._retries = settings.kuberay_retries
        self._ready_timeout = settings.kuberay_ready_timeout_seconds
        self._runtime_args = runtime_args
        self._gateway_mongo_url = gateway_mongo_url
        self._shared_runtime_mongo_url = shared_runtime_mongo_url
        self._leftover_removed = False
        self._on_change = on_change
        self._clock = clock
        self._sleep = sleep
        self._where = str(api_client.configuration.host)

    # ClusterDriver ----------------------------------------------------------------------------

    def apply(self, spec: AppSpec) -> None:
        gw = spec.gateway_id
        if namespace_name(gw) in (self._pods.system_namespace, self._pods.shared_namespace):
            raise Invalid(
                f"Gateway {gw!r} would share the namespace {namespace_name(gw)} with the platform; "
                "rename the gateway or set IMPRUN_KUBERAY_SYSTEM_NAMESPACE / IMPRUN_KUBERAY_SHARED_NAMESPACE."
            )
        for resource in gateway_objects(spec, self._pods, self._gateway_mongo_url(gw)):
            self._ensure(resource)
        self._ensure_rayservice(gw, render_rayservice(spec, self._runtime_args(gw), self._pods))

    def observe(self, gateway_id: str, environment: str) -> ObservedApp:
        validate_app_ref(gateway_id, environment)
        name = serve_app_name(gateway_id, environment)
        pods = f"{MANAGED_BY_LABEL}=imprun,{GATEWAY_LABEL}={gateway_id},{ENVIRONMENT_LABEL}={environment}"
        return self._observe(namespace_name(gateway_id), name, pods)

    def delete(self, gateway_id: str, environment: str) -> None:
        validate_app_ref(gateway_id, environment)
        self._delete_rayservice(namespace_name(gateway_id), serve_app_name(gateway_id, environment))

    def list_apps(self) -> list[str]:
        selector = f"{MANAGED_BY_LABEL}=imprun,{ENVIRONMENT_LABEL}"
        listing = self._call(
            "listing RayServices",
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, label_selector=selector, _request_timeout=self._timeout
            ),
        )
        return sorted(str(item["metadata"]["name"]) for item in listing.get("items", []))

    def apply_platform_app(self, spec: PlatformAppSpec) -> None:
        if spec.name == SHARED_RUNTIME_APP:  # tenant code: a namespace and a MongoDB login of its own
            for resource in shared_runtime_objects(self._pods, self._shared_runtime_mongo_url()):
                self._ensure(resource)
            if not self._leftover_removed and self._pods.shared_namespace != self._pods.system_namespace:
                # older releases ran it in the system namespace, logged in as the platform
                self._delete_rayservice(self._pods.system_namespace, SHARED_RUNTIME_APP)
                self._leftover_removed = True
        else:
            system = self._pods.system_namespace
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": system, "labels": {}}}
            self._ensure(namespace)
        self._ensure_rayservice(None, render_platform_rayservice(spec, self._pods))

    def observe_platform_app(self, name: str) -> ObservedApp:
        return self._observe(
            platform_namespace(name, self._pods),
            name,
            f"{MANAGED_BY_LABEL}=imprun,{PLATFORM_APP_LABEL}={name}",
        )

    def delete_platform_app(self, name: str) -> None:
        self._delete_rayservice(platform_namespace(name, self._pods), name)

    def serve_upstream(self, gateway_id: str, environment: str, tier: str) -> tuple[str, int]:
        """Where the ingress reaches an environment: the Serve Service KubeRay makes for its
        RayService (``<name>-serve-svc``), or the shared runtime's on the shared tier."""
        validate_app_ref(gateway_id, environment)
        if tier == Tier.SHARED:
            namespace = platform_namespace(SHARED_RUNTIME_APP, self._pods)
            return f"{SHARED_RUNTIME_APP}-serve-svc.{namespace}.svc", SERVE_PORT
        name = serve_app_name(gateway_id, environment)
        return f"{name}-serve-svc.{namespace_name(gateway_id)}.svc", SERVE_PORT

    def ping(self) -> None:
        self._call("answering a ping", lambda: k8s.VersionApi(self._api).get_code(**self._raw))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # Beyond the Protocol ----------------------------------------------------------------------

    def release_gateway(self, gateway_id: str) -> None:
        """Delete the gateway's namespace and everything in it (a missing one is fine, and so is one
        already Terminating: the API server answers 409 while it empties it)."""
        name = namespace_name(gateway_id)
        try:
            self._call(f"deleting namespace {name}", lambda: self._core.delete_namespace(name, **self._raw))
        except (_Missing, _Conflicted):
            pass

    # RayServices ------------------------------------------------------------------------------

    def _observe(self, namespace: str, name: str, pod_selector: str) -> ObservedApp:
        """The RayService's status; while it deploys, why its pods have no node, if that is why."""
        try:
            resource = self._call(
                f"reading RayService {namespace}/{name}",
                lambda: self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self._timeout
                ),
            )
        except _Missing:
            resource = None
        observed = observed_app(resource, name, now=self._clock(), ready_timeout=self._ready_timeout)
        if observed.status not in _MAYBE_UNPLACED or observed.message == DRIFT_MESSAGE:
            return observed
        listing = self._call(
            f"listing the pods of {namespace}/{name}",
            lambda: _json(
                self._core.list_namespaced_pod(namespace, label_selector=pod_selector, **self._raw)
            ),
        )
        return unplaced_pods(listing.get("items") or []) or observed

    def _delete_rayservice(self, namespace: str, name: str) -> None:
        try:
            self._call(
                f"deleting RayService {namespace}/{name}",
                lambda: self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self._timeout
                ),
            )
        except _Missing:
            pass

    def _ensure_rayservice(self, gateway_id: str | None, resource: dict[str, Any]) -> None:
        annotations = resource["metadata"].setdefault("annotations", {})
        annotations[CHANGED_AT] = self._clock().isoformat()
        annotations[APPLIED_SPEC] = applied_spec(resource["spec"])
        change = self._ensure(resource)
        name = resource["metadata"]["name"]
        if change is not AppChange.UNCHANGED:
            log.info("RayService %s/%s: %s", resource["metadata"]["namespace"], name, change.value)
            if self._on_change is not None:
                self._on_change(gateway_id, name, change)

    # Create-or-replace ------------------------------------------------------------------------

    @property
    def _raw(self) -> dict[str, Any]:
        return {"_request_timeout": self._timeout, "_preload_content": False}

    def _ensure(self, resource: dict[str, Any]) -> AppChange:
        what = f"{resource['kind']} {_path(resource)}"
        for _ in range(_CONFLICT_ATTEMPTS):
            try:
                current = self._call(f"reading {what}", lambda: self._read(resource))
            except _Missing:
                current = None
            try:
                if current is None:
                    self._call(f"creating {what}", lambda: self._write(resource, None))
                    return AppChange.CREATED
                if _terminating(current):
                    raise Unavailable(f"{what} is being deleted; it is recreated once it is gone.")
                change = _difference(current, resource)
                if change is AppChange.UNCHANGED:
                    return change
                self._replace(what, current, resource, keep_changed_at=change is AppChange.REPAIRED)
                return change
            except _Conflicted:
                continue  # created or changed meanwhile: read again
            except _Missing as exc:
                _missing_parent(what, exc)
        raise Unavailable(f"{what} kept changing while imprun wrote it; retrying later.")

    def _replace(
        self, what: str, current: dict[str, Any], desired: dict[str, Any], *, keep_changed_at: bool
    ) -> None:
        replacement = _replacement(current, desired, keep_changed_at=keep_changed_at)
        self._call(f"replacing {what}", lambda: self._write(replacement, current))

    def _read(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        kind, name, namespace = (
            resource["kind"],
            resource["metadata"]["name"],
            resource["metadata"].get("namespace"),
        )
        if kind == "RayService":
            found: dict[str, Any] = self._custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self._timeout
            )
            return found
        readers: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self._core.read_namespace(name, **self._raw),
            "ResourceQuota": lambda: self._core.read_namespaced_resource_quota(name, namespace, **self._raw),
            "NetworkPolicy": lambda: self._networking.read_namespaced_network_policy(
                name, namespace, **self._raw
            ),
            "Secret": lambda: self._core.read_namespaced_secret(name, namespace, **self._raw),
        }
        return _json(readers[kind]())

    def _write(self, body: dict[str, Any], current: Mapping[str, Any] | None) -> None:
        """Create ``body`` (``current`` None) or replace ``current`` with it."""
        kind, name, namespace = body["kind"], body["metadata"]["name"], body["metadata"].get("namespace")
        if kind == "RayService":
            if current is None:
                self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body, _request_timeout=self._timeout
                )
            else:
                self._custom.replace_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, body, _request_timeout=self._timeout
                )
            return
        model = _MODELS[kind].from_dict(body)
        creators: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self._core.create_namespace(model, **self._raw),
            "ResourceQuota": lambda: self._core.create_namespaced_resource_quota(
                namespace, model, **self._raw
            ),
            "NetworkPolicy": lambda: self._networking.create_namespaced_network_policy(
                namespace, model, **self._raw
            ),
            "Secret": lambda: self._core.create_namespaced_secret(namespace, model, **self._raw),
        }
        replacers: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self._core.replace_namespace(name, model, **self._raw),
            "ResourceQuota": lambda: self._core.replace_namespaced_resource_quota(
                name, namespace, model, **self._raw
            ),
            "NetworkPolicy": lambda: self._networking.replace_namespaced_network_policy(
                name, namespace, model, **self._raw
            ),
            "Secret": lambda: self._core.replace_namespaced_secret(name, namespace, model, **self._raw),
        }
        (creators if current is None else replacers)[kind]()

    # Errors and retries -----------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one API call, retrying 5xx/429/timeouts with back-off; translate what remains."""
        attempt = 0
        while True:
            try:
                with self._translated(what):
                    return call()
            except Unavailable as exc:
                if not exc.details.get("retryable") or attempt >= self._retries:
                    raise
            delay = min(_MAX_BACKOFF_S, 0.05 * 2**attempt)
            attempt += 1
            log.debug("Kubernetes API failed while %s; retry %d in %.2f s", what, attempt, delay)
            self._sleep(delay)

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        where = f"the Kubernetes API at {self._where}"
        try:
            yield
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 404:
                raise _Missing(_problem(exc)) from exc
            if status == 409:
                raise _Conflicted(_problem(exc)) from exc
            details: dict[str, Any] = {"operation": what, "status": status}
            if status in (401, 403):
                raise Unavailable(
                    f"{where} refused {what} (HTTP {status}: {_problem(exc)}); give the control plane's "
                    "service account the RBAC rules of manifests/base. Retrying later.",
                    details=details,
                ) from exc
            if status >= 500 or status == 429 or status == 0:
                raise Unavailable(
                    f"{where} failed while {what} (HTTP {status}: {_problem(exc)}); retrying later.",
                    details={**details, "retryable": True},
                ) from exc
            raise Invalid(
                f"{where} refused {what} (HTTP {status}): {_problem(exc)}", details=details
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(
                f"Cannot reach {where} while {what} ({type(exc).__name__}); check IMPRUN_KUBERAY_API_URL "
                "and that the API server runs. Retrying later.",
                details={"operation": what, "retryable": True},
            ) from exc


def _json(response: Any) -> dict[str, Any]:
    """The body of a ``_preload_content=False`` response."""
    decoded: dict[str, Any] = json.loads(response.data)
    return decoded


def _path(resource: Mapping[str, Any]) -> str:
    metadata = resource["metadata"]
    return (
        f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else str(metadata["name"])
    )


def _problem(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:_PROBLEM_MAX]
    return str(exc.reason or exc.body or "no reason given")[:_PROBLEM_MAX]


def _missing_parent(what: str, exc: _Missing) -> NoReturn:
    raise Unavailable(f"Cannot write {what}: {exc}; it is retried once its namespace exists.") from exc


def _terminating(current: Mapping[str, Any]) -> bool:
    metadata = current.get("metadata") or {}
    phase = (current.get("status") or {}).get("phase")
    return bool(metadata.get("deletionTimestamp")) or phase == "Terminating"


_OWNED_FIELDS: Final = ("spec", "data", "type")
_MODELS: Final[dict[str, Any]] = {
    "Namespace": k8s.V1Namespace,
    "ResourceQuota": k8s.V1ResourceQuota,
    "NetworkPolicy": k8s.V1NetworkPolicy,
    "Secret": k8s.V1Secret,
}
"""The client's model of each core kind: rendered dicts are validated into them before sending."""


def _difference(current: Mapping[str, Any], desired: Mapping[str, Any]) -> AppChange:
    if desired["kind"] == "RayService":
        return change_of(current, desired)
    if any(field in desired and not contains(current.get(field), desired[field]) for field in _OWNED_FIELDS):
        return AppChange.REPAIRED
    wanted = desired["metadata"].get("labels") or {}
    labels = (current.get("metadata") or {}).get("labels") or {}
    return AppChange.UNCHANGED if contains(labels, wanted) else AppChange.REPAIRED


def _replacement(
    current: Mapping[str, Any], desired: Mapping[str, Any], *, keep_changed_at: bool
) -> dict[str, Any]:
    """``desired`` with ``current``'s resourceVersion, foreign labels and annotations kept."""
    body = copy.deepcopy(dict(desired))
    old = current.get("metadata") or {}
    metadata = body["metadata"]
    metadata["resourceVersion"] = old.get("resourceVersion")
    metadata["labels"] = {**(old.get("labels") or {}), **(metadata.get("labels") or {})}
    annotations = {**(old.get("annotations") or {}), **(metadata.get("annotations") or {})}
    if keep_changed_at and CHANGED_AT in (old.get("annotations") or {}):
        annotations[CHANGED_AT] = old["annotations"][CHANGED_AT]
    if annotations:
        metadata["annotations"] = annotations
    return body
