"""The objects ``k8s_objects`` renders: valid against the upstream schemas, hardened, sized from the bundle."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
import yaml

from imprun.drivers.cluster import AppSpec, AppStatus, PlatformAppSpec
from imprun.drivers.k8s_objects import (
    FUNCTION_DEPLOYMENT,
    MONGO_SECRET,
    SHARED_MONGO_SECRET,
    RayPods,
    gateway_objects,
    render_platform_rayservice,
    render_rayservice,
    render_resource_quota,
    shared_runtime_objects,
)
from imprun.drivers.kuberay_status import CHANGED_AT, AppChange, change_of, observed_app
from imprun.errors import Invalid
from tests.platform.drivers.k8s_schemas import assert_valid

PODS = RayPods(image="ghcr.io/imprun/runtime:1.0", runtime_class="gvisor")
SPEC = AppSpec("orders-api", "dev", min_replicas=1, max_replicas=3, cpu=0.5, memory_mb=256)
ARGS = {"mongo_url": "mongodb://gw:pw@mongo:27017/?authSource=admin", "redis_url": "redis://redis:6379/0"}
BEHIND_APISIX = replace(PODS, ingress_proxies=("10.244.0.0/16", "fd00:10:244::/56"))
PLATFORM = PlatformAppSpec("ai-gateway", "ray_apps.ai_gateway:build_app", "/", args={"a": 1}, replicas=2)
SHARED = PlatformAppSpec("shared-runtime", "ray_apps.shared_runtime:build_app", "/", args={"runtime": {}})
SHARED_URL = "mongodb://imprun-shared-runtime:pw@mongo:27017/?authSource=admin"


def rendered() -> list[dict[str, Any]]:
    return [
        *gateway_objects(SPEC, PODS, ARGS["mongo_url"]),
        render_rayservice(SPEC, ARGS, PODS),
        render_rayservice(
            replace(SPEC, environment="prod", min_replicas=2, max_replicas=2), ARGS, RayPods("img")
        ),
        render_platform_rayservice(PLATFORM, PODS),
        render_rayservice(replace(SPEC, resources={"gpu_node": 1.0}), ARGS, PODS),
        render_rayservice(replace(SPEC, environment="staging"), ARGS, BEHIND_APISIX),
        *shared_runtime_objects(PODS, SHARED_URL),
        render_platform_rayservice(SHARED, PODS),
    ]


@pytest.mark.parametrize("resource", rendered(), ids=lambda r: f"{r['kind']}-{r['metadata']['name']}")
def test_every_rendered_object_validates_against_its_upstream_schema(resource: dict[str, Any]) -> None:
    assert_valid(resource)


def test_the_validation_catches_misspelled_fields() -> None:
    service = render_rayservice(SPEC, ARGS, PODS)
    service["spec"]["rayClusterConfig"]["headGroupSpec"]["templat"] = {}
    policy = gateway_objects(SPEC, PODS, "m")[2]
    policy["spec"]["egres"] = policy["spec"].pop("egress")
    for broken in (service, policy):
        with pytest.raises(AssertionError):
            assert_valid(broken)


def test_the_rayservice_serves_the_environment_app_with_its_runtime_arguments() -> None:
    service = render_rayservice(SPEC, ARGS, PODS)
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == (
        "orders-api-dev",
        "imprun-orders-api",
    )
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app["name"] == "orders-api-dev" and app["route_prefix"] == "/orders-api/dev"
    assert app["import_path"] == "ray_apps.environment:build_app"
    assert app["args"] == {"gateway_id": "orders-api", "environment": "dev", **ARGS}
    (deployment,) = app["deployments"]
    assert deployment["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3}
    assert deployment["ray_actor_options"] == {
        "num_cpus": 0.5,
        "memory": 256 * 1024 * 1024,
        "runtime_env": {
            "env_vars": {
                "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
                "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "ray_apps.replica_http:middlewares",
            }
        },
    }
    (workers,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert (workers["minReplicas"], workers["maxReplicas"]) == (1, 3)


def test_the_serve_config_builds_with_the_real_application_builder() -> None:
    from ray_apps.environment import DEPLOYMENT_NAME, build_app

    assert FUNCTION_DEPLOYMENT == DEPLOYMENT_NAME
    (app,) = yaml.safe_load(render_rayservice(SPEC, ARGS, PODS)["spec"]["serveConfigV2"])["applications"]
    assert build_app(app["args"]) is not None


def test_custom_resources_are_asked_by_replicas_and_offered_by_workers() -> None:
    service = render_rayservice(replace(SPEC, resources={"tpu": 2.0}), ARGS, PODS)
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app["deployments"][0]["ray_actor_options"]["resources"] == {"tpu": 2.0}
    (workers,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert json.loads(json.loads(workers["rayStartParams"]["resources"])) == {"tpu": 2.0}


def test_ray_pods_are_hardened_and_read_the_mongo_url_from_the_secret() -> None:
    cluster = render_rayservice(SPEC, ARGS, PODS)["spec"]["rayClusterConfig"]
    templates = [cluster["headGroupSpec"]["template"], cluster["workerGroupSpecs"][0]["template"]]
    for template in templates:
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["runtimeClassName"] == "gvisor"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["image"] == PODS.image
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"]["requests"] == container["resources"]["limits"]
        (env,) = container["env"]
        assert env["valueFrom"]["secretKeyRef"]["name"] == MONGO_SECRET
    assert "runtimeClassName" not in json.dumps(render_rayservice(SPEC, ARGS, RayPods("img")))


def containers(service: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [container for group in groups for container in group["template"]["spec"]["containers"]]


def test_serves_proxies_believe_the_client_address_from_the_ingress_only() -> None:
    """Serve's proxy runs on every node, so every Ray container names the ingress's addresses."""
    services = [
        render_rayservice(SPEC, ARGS, BEHIND_APISIX),
        render_platform_rayservice(PLATFORM, BEHIND_APISIX),
    ]
    for container in [c for service in services for c in containers(service)]:
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["FORWARDED_ALLOW_IPS"] == "10.244.0.0/16,fd00:10:244::/56"
    for container in containers(render_rayservice(SPEC, ARGS, PODS)):  # not set: uvicorn's loopback default
        assert "FORWARDED_ALLOW_IPS" not in json.dumps(container)
    with pytest.raises(Invalid, match="IMPRUN_KUBERAY_INGRESS_PROXIES: 'apisix' is not an address"):
        RayPods("img", ingress_proxies=("apisix",))


def test_the_namespace_objects_isolate_the_gateway() -> None:
    namespace, quota, policy, secret = gateway_objects(SPEC, PODS, ARGS["mongo_url"])
    assert namespace["metadata"]["name"] == "imprun-orders-api"
    assert {o["metadata"]["namespace"] for o in (quota, policy, secret)} == {"imprun-orders-api"}
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert egress_ports == {53, 27017, 6379}
    allowed = {
        (peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
        for port in rule["ports"]
    }
    # the ingress and the control plane call Serve; the KubeRay operator manages it through the dashboard
    assert allowed == {("apisix", 8000), ("imprun-system", 8000), ("kuberay-system", 8265)}
    assert base64.b64decode(secret["data"]["mongo-url"]).decode() == ARGS["mongo_url"]


def test_the_shared_runtime_is_isolated_like_a_gateway_with_a_login_of_its_own() -> None:
    namespace, policy, secret = shared_runtime_objects(PODS, SHARED_URL)
    assert namespace["metadata"]["name"] == "imprun-shared"
    assert {o["metadata"]["namespace"] for o in (policy, secret)} == {"imprun-shared"}
    gateway_policy = gateway_objects(SPEC, PODS, ARGS["mongo_url"])[2]
    assert policy["spec"] == gateway_policy["spec"]  # the same default-deny rules
    assert base64.b64decode(secret["data"]["mongo-url"]).decode() == SHARED_URL
    service = render_platform_rayservice(SHARED, PODS)
    assert service["metadata"]["namespace"] == "imprun-shared"
    for container in containers(service):
        (env,) = container["env"]
        assert env["valueFrom"]["secretKeyRef"]["name"] == SHARED_MONGO_SECRET
    ai_gateway = render_platform_rayservice(PLATFORM, PODS)  # platform code: the system namespace
    assert ai_gateway["metadata"]["namespace"] == "imprun-system"
    assert all("env" not in container for container in containers(ai_gateway))
    elsewhere = replace(PODS, shared_namespace="tenants")
    assert render_platform_rayservice(SHARED, elsewhere)["metadata"]["namespace"] == "tenants"


def test_the_quota_has_room_for_three_environments_at_their_largest() -> None:
    hard = render_resource_quota(SPEC, RayPods("img", head_cpu=1, head_memory_mb=1024))["spec"]["hard"]
    # 3 * (head 1 CPU + 3 workers * 0.5 CPU); 3 * (1024 + 3 * (256 + 512)) MiB; 3 * (1 + 3) pods
    assert hard == {
        "pods": "12",
        "requests.cpu": "7500m",
        "limits.cpu": "7500m",
        "requests.memory": "9984Mi",
        "limits.memory": "9984Mi",
    }


def test_bad_pod_settings_and_platform_names_are_invalid() -> None:
    with pytest.raises(Invalid, match="image"):
        RayPods(image="")
    with pytest.raises(Invalid, match="Kubernetes name"):
        render_platform_rayservice(replace(PLATFORM, name="AI_Gateway"), PODS)


def test_rendering_is_deterministic() -> None:
    assert rendered() == rendered()


# --- reading RayServices ---------------------------------------------------------------------------


def _service(
    status: dict[str, Any] | None = None, changed_at: str = "2030-01-01T00:00:00+00:00"
) -> dict[str, Any]:
    service = render_rayservice(SPEC, ARGS, PODS)
    service["metadata"]["annotations"] = {CHANGED_AT: changed_at}
    if status is not None:
        service["status"] = status
    return service


def _status(ready: str, app: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}],
        "activeServiceStatus": {"applicationStatuses": {"orders-api-dev": {"status": app}}},
    }


def test_readiness_needs_the_ready_condition_and_a_running_application() -> None:
    from datetime import UTC, datetime

    now = datetime(2030, 1, 1, 0, 1, tzinfo=UTC)
    read = lambda s: observed_app(s, "orders-api-dev", now=now, ready_timeout=600)  # noqa: E731
    assert read(None).status is AppStatus.MISSING
    assert read(_service()).status is AppStatus.DEPLOYING
    assert read(_service(_status("True", "RUNNING"))).status is AppStatus.RUNNING
    assert read(_service(_status("False", "RUNNING"))).status is AppStatus.DEPLOYING
    failed = read(_service({"activeServiceStatus": {"applicationStatuses": {"orders-api-dev": {
        "status": "DEPLOY_FAILED", "message": "ImportError: no module"}}}}))  # fmt: skip
    assert (failed.status, failed.message) == (AppStatus.DEPLOY_FAILED, "ImportError: no module")
    assert read(_service(_status("True", "UNHEALTHY"))).status is AppStatus.UNHEALTHY
    deleting = _service(_status("True", "RUNNING"))
    deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:30Z"
    assert read(deleting).status is AppStatus.DELETING


def test_not_ready_past_the_timeout_is_a_failure_with_the_operators_reason() -> None:
    from datetime import UTC, datetime

    service = _service(_status("False", "DEPLOYING", "WaitingForPods", "0/3 nodes are available"))
    within = observed_app(
        service, "orders-api-dev", now=datetime(2030, 1, 1, 0, 9, tzinfo=UTC), ready_timeout=600
    )
    assert within.status is AppStatus.DEPLOYING
    late = observed_app(
        service, "orders-api-dev", now=datetime(2030, 1, 1, 0, 11, tzinfo=UTC), ready_timeout=600
    )
    assert late.status is AppStatus.DEPLOY_FAILED
    assert "WaitingForPods: 0/3 nodes are available" in late.message and "600 s" in late.message


def test_changes_are_told_apart() -> None:
    current = render_rayservice(SPEC, ARGS, PODS)
    assert change_of(current, render_rayservice(SPEC, ARGS, PODS)) is AppChange.UNCHANGED
    more_replicas = render_rayservice(replace(SPEC, max_replicas=5), ARGS, PODS)
    assert change_of(current, more_replicas) is AppChange.IN_PLACE_UPDATE  # serve config + worker bounds
    new_args = render_rayservice(SPEC, {**ARGS, "redis_url": "redis://other:6379/0"}, PODS)
    assert change_of(current, new_args) is AppChange.IN_PLACE_UPDATE
    bigger = render_rayservice(replace(SPEC, memory_mb=1024), ARGS, PODS)
    assert change_of(current, bigger) is AppChange.CLUSTER_UPGRADE  # pod resources change
    new_image = render_rayservice(SPEC, ARGS, replace(PODS, image="ghcr.io/imprun/runtime:1.1"))
    assert change_of(current, new_image) is AppChange.CLUSTER_UPGRADE
    relabelled = render_rayservice(SPEC, ARGS, PODS)
    current["metadata"]["labels"]["imprun.io/gateway"] = "edited"
    assert change_of(current, relabelled) is AppChange.REPAIRED
