"""The Kubernetes objects the KubeRay driver keeps, as plain dicts: pure rendering, no I/O.

Per gateway ``<gw>`` there is a Namespace ``imprun-<gw>`` holding a ResourceQuota sized for its three
environments from the bundle, a default-deny NetworkPolicy that lets through only DNS, MongoDB,
Redis, traffic inside the namespace and the ingress namespace's calls to the Serve port, and a Secret
``imprun-gateway-mongo`` with the gateway's MongoDB URL. Per environment there is a ``ray.io/v1``
RayService ``<gw>-<env>`` whose ``serveConfigV2`` names ``ray_apps.environment:build_app`` with the
gateway, the environment and the runtime arguments, and whose ``rayClusterConfig`` has a head (no
replicas on it) and one worker group sized from the bundle. Every Ray pod is hardened: non-root,
read-only root filesystem (writable ``/tmp`` and ``/dev/shm`` from ``emptyDir``), no privilege
escalation, all capabilities dropped, seccomp ``RuntimeDefault``, no service-account token, and an
optional ``runtimeClassName`` (gVisor, Kata). With ``ingress_proxies`` set, every Ray container has
``FORWARDED_ALLOW_IPS`` naming them: Serve's HTTP proxies (uvicorn) then take the client's address
from the ``X-Forwarded-For`` the ingress sets, and from nobody else. Platform-wide applications (the
AI gateway) get a RayService named after them in the system namespace, except the shared runtime,
which runs tenant code: it gets a namespace of its own (``imprun-shared`` by default) with the same
default-deny NetworkPolicy as a gateway's and a Secret ``imprun-shared-mongo`` holding its own MongoDB
URL. Rendering is deterministic, so the driver can compare what it would write with what the cluster
holds and repair hand edits.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml  # type: ignore[import-untyped]

from imprun.drivers.cluster import (
    ENVIRONMENT_REPLICA_ENV_VARS,
    AppSpec,
    PlatformAppSpec,
    replica_actor_options,
)
from imprun.errors import Invalid
from runtime_actors.shared.names import SHARED_RUNTIME_APP

__all__ = [
    "ENVIRONMENT_IMPORT_PATH",
    "ENVIRONMENT_LABEL",
    "GATEWAY_LABEL",
    "MANAGED_BY_LABEL",
    "MONGO_SECRET",
    "PLATFORM_APP_LABEL",
    "SHARED_MONGO_SECRET",
    "RayPods",
    "gateway_objects",
    "namespace_name",
    "platform_namespace",
    "render_mongo_secret",
    "render_namespace",
    "render_network_policy",
    "render_platform_rayservice",
    "render_rayservice",
    "render_resource_quota",
    "shared_runtime_objects",
]

ENVIRONMENT_IMPORT_PATH: Final = "ray_apps.environment:build_app"
FUNCTION_DEPLOYMENT: Final = "FunctionActor"  # ray_apps.environment.DEPLOYMENT_NAME (a test keeps them equal)
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
GATEWAY_LABEL: Final = "imprun.io/gateway"
ENVIRONMENT_LABEL: Final = "imprun.io/environment"
PLATFORM_APP_LABEL: Final = "imprun.io/platform-app"
MONGO_SECRET: Final = "imprun-gateway-mongo"  # noqa: S105  (a Secret's name)
SHARED_MONGO_SECRET: Final = "imprun-shared-mongo"  # noqa: S105  (a Secret's name)
MONGO_URL_KEY: Final = "mongo-url"
NETWORK_POLICY: Final = "imprun-default-deny"
RESOURCE_QUOTA: Final = "imprun-bundle"
SERVE_PORT: Final = 8000
DASHBOARD_PORT: Final = 8265
RAY_VERSION: Final = "2.60.0"
WORKER_OVERHEAD_MB: Final = 512
"""Memory of a worker pod beyond its replica's: raylet, object store, the node's reload hub."""

_ENVIRONMENTS_PER_GATEWAY: Final = 3
_RUN_AS: Final = 1000
_DNS_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class RayPods:
    """How Ray pods are built: image, sandbox runtime class, head size, who may call them."""

    image: str
    runtime_class: str | None = None
    head_cpu: float = 1.0
    head_memory_mb: int = 2048
    ingress_namespace: str = "apisix"
    operator_namespace: str = "kuberay-system"
    """Where the KubeRay operator runs: it manages Serve through each head's dashboard port."""
    system_namespace: str = "imprun-system"
    shared_namespace: str = "imprun-shared"
    """Where the shared runtime (tenant code of many gateways) runs, apart from the platform."""
    mongo_port: int = 27017
    redis_port: int = 6379
    ingress_proxies: tuple[str, ...] = ()
    """Addresses or CIDRs the ingress connects from; their ``X-Forwarded-For`` names the client."""

    def __post_init__(self) -> None:
        if not self.image or any(c.isspace() for c in self.image):
            raise Invalid(
                f"Ray pod image {self.image!r} is not an image reference; set IMPRUN_KUBERAY_IMAGE."
            )
        for proxy in self.ingress_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise Invalid(
                    f"IMPRUN_KUBERAY_INGRESS_PROXIES: {proxy!r} is not an address or CIDR "
                    "(e.g. 10.244.0.0/16, the ingress pods' network)."
                ) from None
        if self.head_cpu <= 0 or self.head_memory_mb < 1:
            raise Invalid("The Ray head needs a positive CPU and memory size.")


def namespace_name(gateway_id: str) -> str:
    return f"imprun-{gateway_id}"


def platform_namespace(name: str, pods: RayPods) -> str:
    """The namespace of the platform application ``name``: its own for the shared runtime, which runs
    tenant code; the system namespace for the others."""
    return pods.shared_namespace if name == SHARED_RUNTIME_APP else pods.system_namespace


def _labels(gateway_id: str | None = None, environment: str | None = None) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: "imprun"}
    if gateway_id is not None:
        labels[GATEWAY_LABEL] = gateway_id
    if environment is not None:
        labels[ENVIRONMENT_LABEL] = environment
    return labels


def _metadata(name: str, gateway_id: str, namespace: str | None = None, **extra: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": _labels(gateway_id, extra.get("environment"))}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(mib: int) -> str:
    return f"{mib}Mi"


# --- per gateway -----------------------------------------------------------------------------------


def render_namespace(gateway_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _metadata(namespace_name(gateway_id), gateway_id),
    }


def render_resource_quota(spec: AppSpec, pods: RayPods) -> dict[str, Any]:
    """Room for all three environments at their largest: a head and ``max_replicas`` workers each."""
    worker_cpu, worker_memory = spec.cpu, spec.memory_mb + WORKER_OVERHEAD_MB
    cpu = _ENVIRONMENTS_PER_GATEWAY * (pods.head_cpu + spec.max_replicas * worker_cpu)
    memory = _ENVIRONMENTS_PER_GATEWAY * (pods.head_memory_mb + spec.max_replicas * worker_memory)
    hard = {
        "pods": str(_ENVIRONMENTS_PER_GATEWAY * (1 + spec.max_replicas)),
        "requests.cpu": _cpu(cpu),
        "limits.cpu": _cpu(cpu),
        "requests.memory": _memory(memory),
        "limits.memory": _memory(memory),
    }
    gw = spec.gateway_id
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(RESOURCE_QUOTA, gw, namespace_name(gw)),
        "spec": {"hard": hard},
    }


def render_network_policy(gateway_id: str, pods: RayPods) -> dict[str, Any]:
    """The gateway namespace's ``_default_deny``."""
    return _default_deny(_metadata(NETWORK_POLICY, gateway_id, namespace_name(gateway_id)), pods)


def _default_deny(metadata: dict[str, Any], pods: RayPods) -> dict[str, Any]:
    """Deny everything but DNS, MongoDB, Redis, the namespace itself, the ingress and the system
    namespace (the control plane) on the Serve port, and the KubeRay operator on the dashboard's."""

    def namespace_peer(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    same_namespace: dict[str, Any] = {"podSelector": {}}
    egress = [
        {"to": [same_namespace]},
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {
            "ports": [
                {"protocol": "TCP", "port": pods.mongo_port},
                {"protocol": "TCP", "port": pods.redis_port},
            ]
        },
    ]
    ingress = [
        {"from": [same_namespace]},
        {
            "from": [namespace_peer(pods.ingress_namespace), namespace_peer(pods.system_namespace)],
            "ports": [{"protocol": "TCP", "port": SERVE_PORT}],
        },
        {
            "from": [namespace_peer(pods.operator_namespace)],
            "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}],
        },
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def render_mongo_secret(gateway_id: str, mongo_url: str) -> dict[str, Any]:
    """The gateway's MongoDB URL (its own user's credentials in production)."""
    return _mongo_secret(_metadata(MONGO_SECRET, gateway_id, namespace_name(gateway_id)), mongo_url)


def _mongo_secret(metadata: dict[str, Any], mongo_url: str) -> dict[str, Any]:
    encoded = base64.b64encode(mongo_url.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {MONGO_URL_KEY: encoded},
    }


def gateway_objects(spec: AppSpec, pods: RayPods, mongo_url: str) -> list[dict[str, Any]]:
    """Everything a gateway's namespace holds besides RayServices, namespace first."""
    gw = spec.gateway_id
    return [
        render_namespace(gw),
        render_resource_quota(spec, pods),
        render_network_policy(gw, pods),
        render_mongo_secret(gw, mongo_url),
    ]


def shared_runtime_objects(pods: RayPods, mongo_url: str) -> list[dict[str, Any]]:
    """The shared runtime's namespace, isolated like a gateway's, with its own MongoDB URL (its own
    user's in production), namespace first."""
    namespace = pods.shared_namespace
    labels = {**_labels(), PLATFORM_APP_LABEL: SHARED_RUNTIME_APP}

    def metadata(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(labels)}},
        _default_deny(metadata(NETWORK_POLICY), pods),
        _mongo_secret(metadata(SHARED_MONGO_SECRET), mongo_url),
    ]


# --- RayServices -----------------------------------------------------------------------------------


def _serve_config(application: Mapping[str, Any]) -> str:
    text: str = yaml.safe_dump({"applications": [dict(application)]}, sort_keys=True)
    return text


def _container(
    pods: RayPods, name: str, cpu: float, memory_mb: int, env: list[dict[str, Any]]
) -> dict[str, Any]:
    resources = {"cpu": _cpu(cpu), "memory": _memory(memory_mb)}
    container: dict[str, Any] = {
        "name": name,
        "image": pods.image,
        "resources": {"requests": resources, "limits": dict(resources)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  (an emptyDir of the pod's own)
            {"name": "shm", "mountPath": "/dev/shm"},  # noqa: S108
        ],
    }
    if pods.ingress_proxies:  # read by the uvicorn of Serve's proxy on each node
        env = [*env, {"name": "FORWARDED_ALLOW_IPS", "value": ",".join(pods.ingress_proxies)}]
    if env:
        container["env"] = env
    return container


def _pod_template(
    pods: RayPods, labels: dict[str, str], container: dict[str, Any], ports: list[dict[str, Any]]
) -> dict[str, Any]:
    if ports:
        container = {**container, "ports": ports}
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": _RUN_AS,
            "runAsGroup": _RUN_AS,
            "fsGroup": _RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "shm", "emptyDir": {"medium": "Memory"}},
        ],
    }
    if pods.runtime_class:
        spec["runtimeClassName"] = pods.runtime_class
    return {"metadata": {"labels": labels}, "spec": spec}


def _cluster_config(
    pods: RayPods,
    labels: dict[str, str],
    worker: tuple[float, int, int, int],
    env: list[dict[str, Any]],
    resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A head that runs no replicas and one worker group ``(cpu, memory MiB, min, max)`` whose nodes
    offer the replicas' custom ``resources``."""
    cpu, memory_mb, min_replicas, max_replicas = worker
    worker_params = {"num-cpus": str(max(1, math.ceil(cpu)))}
    if resources:
        worker_params["resources"] = json.dumps(json.dumps(dict(sorted(resources.items()))))
    head_ports = [
        {"name": "gcs", "containerPort": 6379},
        {"name": "dashboard", "containerPort": DASHBOARD_PORT},
        {"name": "serve", "containerPort": SERVE_PORT},
    ]
    head = _container(pods, "ray-head", pods.head_cpu, pods.head_memory_mb, env)
    workers = _container(pods, "ray-worker", cpu, memory_mb + WORKER_OVERHEAD_MB, env)
    return {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": True,
        "headGroupSpec": {
            "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
            "template": _pod_template(pods, labels, head, head_ports),
        },
        "workerGroupSpecs": [
            {
                "groupName": "replicas",
                "replicas": min_replicas,
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "rayStartParams": worker_params,
                "template": _pod_template(pods, labels, workers, []),
            }
        ],
    }


def _mongo_env(secret: str = MONGO_SECRET) -> list[dict[str, Any]]:
    ref = {"secretKeyRef": {"name": secret, "key": MONGO_URL_KEY}}
    return [{"name": "IMPRUN_MONGO_URL", "valueFrom": ref}]


def render_rayservice(spec: AppSpec, runtime_args: Mapping[str, Any], pods: RayPods) -> dict[str, Any]:
    """The RayService ``<gw>-<env>`` in ``imprun-<gw>``; ``runtime_args`` are ``RuntimeConfig.to_args()``."""
    if {"gateway_id", "environment"} & set(runtime_args):
        raise Invalid("runtime arguments must not set gateway_id or environment.")
    deployment: dict[str, Any] = {
        "name": FUNCTION_DEPLOYMENT,
        "ray_actor_options": replica_actor_options(
            spec.cpu, spec.memory_mb, spec.resources, env_vars=ENVIRONMENT_REPLICA_ENV_VARS
        ),
    }
    if spec.autoscaling:
        deployment["autoscaling_config"] = {
            "min_replicas": spec.min_replicas,
            "max_replicas": spec.max_replicas,
        }
    else:
        deployment["num_replicas"] = spec.min_replicas
    application = {
        "name": spec.app_name,
        "import_path": ENVIRONMENT_IMPORT_PATH,
        "route_prefix": spec.route_prefix,
        "args": {"gateway_id": spec.gateway_id, "environment": spec.environment, **runtime_args},
        "deployments": [deployment],
    }
    gw, env = spec.gateway_id, spec.environment
    labels = _labels(gw, env)
    worker = (spec.cpu, spec.memory_mb, spec.min_replicas, spec.max_replicas)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": _metadata(spec.app_name, gw, namespace_name(gw), environment=env),
        "spec": {
            "serveConfigV2": _serve_config(application),
            "rayClusterConfig": _cluster_config(pods, labels, worker, _mongo_env(), spec.resources),
        },
    }


def render_platform_rayservice(spec: PlatformAppSpec, pods: RayPods) -> dict[str, Any]:
    """A platform-wide application as the RayService ``<name>`` in its ``platform_namespace``."""
    if not _DNS_LABEL.fullmatch(spec.name):
        raise Invalid(
            f"Platform application name {spec.name!r} is not a Kubernetes name (e.g. 'ai-gateway')."
        )
    args = {
        **spec.args,
        "version": spec.digest(),
        "ray_actor_options": replica_actor_options(spec.cpu, spec.memory_mb, env_vars=spec.env_vars),
        "num_replicas": spec.replicas,
    }
    application = {
        "name": spec.name,
        "import_path": spec.import_path,
        "route_prefix": spec.route_prefix,
        "args": args,
    }
    labels = {**_labels(), PLATFORM_APP_LABEL: spec.name}
    worker = (spec.cpu, spec.memory_mb, spec.replicas, spec.replicas)
    env = _mongo_env(SHARED_MONGO_SECRET) if spec.name == SHARED_RUNTIME_APP else []
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": spec.name, "namespace": platform_namespace(spec.name, pods), "labels": labels},
        "spec": {
            "serveConfigV2": _serve_config(application),
            "rayClusterConfig": _cluster_config(pods, labels, worker, env),
        },
    }
