"""``KubeRayDriver`` against the Kubernetes API stand-in, through the real ``kubernetes`` client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from imprun.api.composition import data_plane_upstream
from imprun.drivers.cluster import AppSpec, AppStatus, PlatformAppSpec
from imprun.drivers.k8s_objects import WORKER_OVERHEAD_MB
from imprun.drivers.kuberay import AppChange, KubeRayDriver, open_api_client
from imprun.drivers.kuberay_status import DRIFT_MESSAGE
from imprun.errors import Invalid, Unavailable
from imprun.settings import Settings
from tests.fixtures.k8s_standin import CORE, NETWORKING, RAY, Cluster, Fault, kubernetes_cluster
from tests.fixtures.polling import eventually
from tests.platform.drivers.k8s_schemas import assert_valid

__all__ = ["kubernetes_cluster"]

SPEC = AppSpec("orders-api", "dev", min_replicas=1, max_replicas=2, cpu=0.5, memory_mb=256)
NS = "imprun-orders-api"
RAYSERVICES = (RAY, "rayservices")
GATEWAY_URL = "mongodb://gw_orders-api:secret@mongo:27017/?authSource=admin"
SHARED_URL = "mongodb://imprun-shared-runtime:secret@mongo:27017/?authSource=admin"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str | None, str, AppChange]] = []
        self.sleeps: list[float] = []


def make_driver(cluster: Cluster, recorder: Recorder, **settings: Any) -> KubeRayDriver:
    configured = Settings(
        **{"kuberay_api_url": cluster.api.url, "kuberay_request_timeout_seconds": 2.0, **settings}
    )
    return KubeRayDriver(
        open_api_client(configured),
        configured,
        runtime_args=lambda gw: {"mongo_url": GATEWAY_URL, "redis_url": "redis://redis:6379/0"},
        gateway_mongo_url=lambda gw: GATEWAY_URL,
        shared_runtime_mongo_url=lambda: SHARED_URL,
        on_change=lambda gw, name, change: recorder.changes.append((gw, name, change)),
        sleep=recorder.sleeps.append,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def driver(kubernetes_cluster: Cluster, recorder: Recorder) -> Iterator[KubeRayDriver]:
    driver = make_driver(kubernetes_cluster, recorder)
    yield driver
    driver.close()


def writes(cluster: Cluster) -> list[tuple[str, str, int]]:
    return [r for r in cluster.api.requests if r[0] in ("POST", "PUT", "DELETE")]


def test_apply_creates_the_namespace_objects_and_the_rayservice_which_becomes_running(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    driver.ping()
    assert driver.observe("orders-api", "dev").status is AppStatus.MISSING
    driver.apply(SPEC)
    api = kubernetes_cluster.api
    assert api.get((CORE, "namespaces"), "", NS) is not None
    assert api.get((CORE, "resourcequotas"), NS, "imprun-bundle") is not None
    assert api.get((NETWORKING, "networkpolicies"), NS, "imprun-default-deny") is not None
    assert api.get((CORE, "secrets"), NS, "imprun-gateway-mongo") is not None
    assert recorder.changes == [("orders-api", "orders-api-dev", AppChange.CREATED)]
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING)
    assert driver.list_apps() == ["orders-api-dev"]
    for written in api.written:
        assert_valid(written)


def test_applying_an_unchanged_spec_writes_nothing(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    driver.apply(SPEC)
    before = len(writes(kubernetes_cluster))
    driver.apply(SPEC)
    driver.apply(SPEC)
    assert len(writes(kubernetes_cluster)) == before


def test_updates_say_whether_they_are_in_place_or_a_cluster_upgrade(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    driver.apply(SPEC)
    driver.apply(replace(SPEC, max_replicas=4))
    driver.apply(replace(SPEC, max_replicas=4, memory_mb=512))
    assert [c[2] for c in recorder.changes] == [
        AppChange.CREATED,
        AppChange.IN_PLACE_UPDATE,
        AppChange.CLUSTER_UPGRADE,
    ]
    service = kubernetes_cluster.api.get(RAYSERVICES, NS, "orders-api-dev")
    assert service is not None and service["metadata"]["generation"] == 3
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app["deployments"][0]["autoscaling_config"]["max_replicas"] == 4
    for written in kubernetes_cluster.api.written:
        assert_valid(written)


def test_objects_changed_or_deleted_by_hand_are_put_back(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    driver.apply(SPEC)
    api = kubernetes_cluster.api
    original = api.get(RAYSERVICES, NS, "orders-api-dev")
    policy = api.get((NETWORKING, "networkpolicies"), NS, "imprun-default-deny")
    assert original is not None and policy is not None

    def open_everything(obj: dict[str, Any]) -> None:
        obj["spec"]["egress"] = [{}]

    def scale_by_hand(obj: dict[str, Any]) -> None:
        obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = 50
        obj["metadata"]["labels"]["team"] = "ops"

    api.edit((NETWORKING, "networkpolicies"), NS, "imprun-default-deny", open_everything)
    api.edit(RAYSERVICES, NS, "orders-api-dev", scale_by_hand)
    api.remove((CORE, "secrets"), NS, "imprun-gateway-mongo")
    drifted = driver.observe("orders-api", "dev")
    assert (drifted.status, drifted.message) == (AppStatus.DEPLOY_FAILED, DRIFT_MESSAGE)

    driver.apply(SPEC)

    repaired = api.get(RAYSERVICES, NS, "orders-api-dev")
    assert repaired is not None and repaired["spec"] == original["spec"]
    assert repaired["metadata"]["labels"]["team"] == "ops"  # labels imprun does not own are kept
    restored_policy = api.get((NETWORKING, "networkpolicies"), NS, "imprun-default-deny")
    assert restored_policy is not None and restored_policy["spec"] == policy["spec"]
    assert api.get((CORE, "secrets"), NS, "imprun-gateway-mongo") is not None
    assert recorder.changes[-1] == ("orders-api", "orders-api-dev", AppChange.IN_PLACE_UPDATE)
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING)


def test_fields_the_api_server_adds_are_not_differences(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    driver.apply(SPEC)
    api = kubernetes_cluster.api

    def default_fields(obj: dict[str, Any]) -> None:
        obj["spec"]["serviceUnhealthySecondThreshold"] = 900
        obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"

    api.edit(RAYSERVICES, NS, "orders-api-dev", default_fields)
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING)
    before = len(writes(kubernetes_cluster))
    driver.apply(SPEC)
    assert len(writes(kubernetes_cluster)) == before


def test_api_server_errors_are_retried_with_backoff(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    kubernetes_cluster.api.inject(Fault(method="POST", status=503, times=2))
    kubernetes_cluster.api.inject(Fault(method="GET", path_prefix="/apis/ray.io", status=500, times=1))
    driver.apply(SPEC)
    assert kubernetes_cluster.api.get(RAYSERVICES, NS, "orders-api-dev") is not None
    assert recorder.sleeps == [0.05, 0.1, 0.05]


def test_api_server_that_keeps_failing_is_unavailable(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    kubernetes_cluster.api.inject(Fault(status=502, times=100))
    with pytest.raises(Unavailable, match="HTTP 502") as raised:
        driver.apply(SPEC)
    assert raised.value.details["status"] == 502
    assert recorder.sleeps == [0.05, 0.1, 0.2]  # three retries (the default), doubling


def test_timeouts_are_retried_then_unavailable(kubernetes_cluster: Cluster, recorder: Recorder) -> None:
    # a stalled API server: the client gives up after 0.2 s
    driver = make_driver(kubernetes_cluster, recorder, kuberay_retries=1, kuberay_request_timeout_seconds=0.2)
    kubernetes_cluster.api.inject(Fault(method="GET", delay=1.0, times=1))
    driver.apply(SPEC)  # the first read times out, the retry succeeds
    assert recorder.sleeps == [0.05]
    kubernetes_cluster.api.inject(Fault(method="GET", delay=1.0, times=2))
    with pytest.raises(Unavailable, match="Cannot reach"):
        driver.observe("orders-api", "dev")
    driver.close()


def test_an_unreachable_api_server_is_unavailable(kubernetes_cluster: Cluster, recorder: Recorder) -> None:
    driver = make_driver(kubernetes_cluster, recorder, kuberay_retries=0)
    kubernetes_cluster.api.stop()
    with pytest.raises(Unavailable, match="Cannot reach"):
        driver.ping()


def test_a_rejected_object_is_invalid_and_a_forbidden_one_names_rbac(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    kubernetes_cluster.api.inject(Fault(method="POST", status=422, times=1))
    with pytest.raises(Invalid, match="HTTP 422"):
        driver.apply(SPEC)
    kubernetes_cluster.api.inject(Fault(method="POST", status=403, times=1))
    with pytest.raises(Unavailable, match="RBAC"):
        driver.apply(replace(SPEC, environment="prod"))


def test_a_rayservice_never_ready_fails_with_the_operators_reason(
    kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    kubernetes_cluster.operator.hold("orders-api-dev", "WaitingForPods", "0/2 nodes have enough memory")
    driver = make_driver(kubernetes_cluster, recorder, kuberay_ready_timeout_seconds=0.3)
    driver.apply(SPEC)
    assert eventually(
        lambda: driver.observe("orders-api", "dev").status is AppStatus.DEPLOY_FAILED, timeout=10
    )
    failed = driver.observe("orders-api", "dev")
    assert "WaitingForPods: 0/2 nodes have enough memory" in failed.message
    kubernetes_cluster.operator.release("orders-api-dev")
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING)
    driver.close()


@pytest.mark.parametrize(
    ("scheduler", "status"),
    [
        ("0/3 nodes are available: 3 Insufficient cpu.", AppStatus.INSUFFICIENT_CAPACITY),
        (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            AppStatus.UNSCHEDULABLE,
        ),
    ],
)
def test_worker_pods_the_scheduler_cannot_place_say_why_until_they_are_placed(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, scheduler: str, status: AppStatus
) -> None:
    kubernetes_cluster.operator.starve("orders-api-dev", scheduler)
    driver.apply(SPEC)
    driver.apply(replace(SPEC, environment="prod"))
    assert eventually(lambda: driver.observe("orders-api", "dev").status is status, timeout=10)
    observed = driver.observe("orders-api", "dev")
    assert observed.message == (
        f"pod orders-api-dev-worker-replicas-0 (requests {{cpu: 500m, memory: {256 + WORKER_OVERHEAD_MB}Mi}}) "
        f"is not scheduled: {scheduler}"
    )
    assert eventually(lambda: driver.observe("orders-api", "prod").status is AppStatus.RUNNING, timeout=10)

    kubernetes_cluster.operator.release("orders-api-dev")  # room freed: the pods are placed
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING, timeout=10)


def test_delete_and_release_are_idempotent(driver: KubeRayDriver, kubernetes_cluster: Cluster) -> None:
    driver.apply(SPEC)
    driver.apply(replace(SPEC, environment="prod"))
    assert driver.list_apps() == ["orders-api-dev", "orders-api-prod"]
    driver.delete("orders-api", "dev")
    driver.delete("orders-api", "dev")
    assert driver.observe("orders-api", "dev").status is AppStatus.MISSING
    assert driver.list_apps() == ["orders-api-prod"]
    assert kubernetes_cluster.api.get((CORE, "namespaces"), "", NS) is not None  # stopped, not gone
    driver.release_gateway("orders-api")
    driver.release_gateway("orders-api")
    assert kubernetes_cluster.api.get((CORE, "namespaces"), "", NS) is None
    assert driver.list_apps() == []
    driver.apply(SPEC)  # a later apply builds the namespace again
    assert eventually(lambda: driver.observe("orders-api", "dev").status is AppStatus.RUNNING)


def test_platform_apps_live_in_the_system_namespace(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    spec = PlatformAppSpec("ai-gateway", "ray_apps.ai_gateway:build_app", "/", args={"providers": []})
    driver.apply_platform_app(spec)
    driver.apply_platform_app(spec)
    service = kubernetes_cluster.api.get(RAYSERVICES, "imprun-system", "ai-gateway")
    assert service is not None
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert (app["import_path"], app["route_prefix"], app["args"]["providers"]) == (spec.import_path, "/", [])
    assert eventually(lambda: driver.observe_platform_app("ai-gateway").status is AppStatus.RUNNING)
    assert driver.list_apps() == []  # not an environment
    driver.delete_platform_app("ai-gateway")
    driver.delete_platform_app("ai-gateway")
    assert driver.observe_platform_app("ai-gateway").status is AppStatus.MISSING
    for written in kubernetes_cluster.api.written:
        assert_valid(written)


# --- the stand-in answers as the API server does ---------------------------------------------------


def test_the_standin_answers_conflicts_and_missing_objects_like_the_api_server(
    kubernetes_cluster: Cluster,
) -> None:
    settings = Settings(kuberay_api_url=kubernetes_cluster.api.url)
    core = k8s.CoreV1Api(open_api_client(settings))
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}
    core.create_namespace(k8s.V1Namespace.from_dict(body))
    with pytest.raises(ApiException) as exists:
        core.create_namespace(k8s.V1Namespace.from_dict(body))
    assert exists.value.status == 409
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("nope", "demo")
    assert missing.value.status == 404
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_secret("absent", k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="s")))
    assert no_namespace.value.status == 404
    current = core.read_namespace("demo")
    stale = k8s.V1Namespace.from_dict({**body, "metadata": {"name": "demo", "resourceVersion": "1"}})
    with pytest.raises(ApiException) as conflict:
        core.replace_namespace("demo", stale)
    assert conflict.value.status == 409
    assert current.metadata is not None and current.metadata.resource_version != "1"
    with pytest.raises(ApiException) as gone:
        core.delete_namespaced_secret("nope", "demo")
    assert gone.value.status == 404


def test_the_ingress_proxies_setting_reaches_every_ray_container(
    kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    driver = make_driver(kubernetes_cluster, recorder, kuberay_ingress_proxies=("10.244.0.0/16",))
    try:
        driver.apply(SPEC)
        service = kubernetes_cluster.api.get(RAYSERVICES, NS, SPEC.app_name)
        assert service is not None
        assert_valid(service)
        cluster = service["spec"]["rayClusterConfig"]
        groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
        for group in groups:
            (container,) = group["template"]["spec"]["containers"]
            assert {"name": "FORWARDED_ALLOW_IPS", "value": "10.244.0.0/16"} in container["env"]
    finally:
        driver.close()


def test_the_shared_runtime_gets_a_namespace_and_a_mongodb_login_of_its_own(
    driver: KubeRayDriver, kubernetes_cluster: Cluster, recorder: Recorder
) -> None:
    """It runs tenant code of many gateways: not in the system namespace, not with the platform's URL
    (and one an older release left in the system namespace goes)."""
    spec = PlatformAppSpec(
        "shared-runtime",
        "ray_apps.shared_runtime:build_app",
        "/",
        args={"runtime": {"mongo_url": SHARED_URL}},
    )
    api = kubernetes_cluster.api
    older = make_driver(kubernetes_cluster, recorder, kuberay_shared_namespace="imprun-system")
    older.apply_platform_app(spec)
    older.close()
    assert api.get(RAYSERVICES, "imprun-system", "shared-runtime") is not None
    driver.apply_platform_app(spec)
    driver.apply_platform_app(spec)
    assert api.get(RAYSERVICES, "imprun-system", "shared-runtime") is None
    service = api.get(RAYSERVICES, "imprun-shared", "shared-runtime")
    assert service is not None
    assert api.get((CORE, "namespaces"), "", "imprun-shared") is not None
    policy = api.get((NETWORKING, "networkpolicies"), "imprun-shared", "imprun-default-deny")
    assert policy is not None and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    secret = api.get((CORE, "secrets"), "imprun-shared", "imprun-shared-mongo")
    assert secret is not None
    assert base64.b64decode(secret["data"]["mongo-url"]).decode() == SHARED_URL
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "imprun-shared-mongo"
    assert eventually(lambda: driver.observe_platform_app("shared-runtime").status is AppStatus.RUNNING)
    driver.delete_platform_app("shared-runtime")
    assert driver.observe_platform_app("shared-runtime").status is AppStatus.MISSING
    assert api.get(RAYSERVICES, "imprun-shared", "shared-runtime") is None
    for written in api.written:
        assert_valid(written)


def test_a_gateway_cannot_take_a_platform_namespace(kubernetes_cluster: Cluster, recorder: Recorder) -> None:
    """The default ones are reserved gateway ids; namespaces an operator renamed are checked here."""
    for gateway_id in ("shared", "system"):
        with pytest.raises(Invalid, match="reserved by the platform"):
            replace(SPEC, gateway_id=gateway_id)
    settings = {"kuberay_shared_namespace": "imprun-tenants", "kuberay_system_namespace": "imprun-ops"}
    driver = make_driver(kubernetes_cluster, recorder, **settings)
    try:
        for gateway_id in ("tenants", "ops"):
            with pytest.raises(Invalid, match=f"namespace imprun-{gateway_id} with the platform"):
                driver.apply(replace(SPEC, gateway_id=gateway_id))
        assert kubernetes_cluster.api.get((CORE, "namespaces"), "", "imprun-tenants") is None
    finally:
        driver.close()


def test_the_ingress_reaches_each_tier_through_its_serve_service(driver: KubeRayDriver) -> None:
    """KubeRay names a RayService's Serve Service ``<name>-serve-svc``; the shared tier's is the shared
    runtime's, in its own namespace."""
    assert driver.serve_upstream("orders-api", "dev", "dedicated") == (
        f"orders-api-dev-serve-svc.{NS}.svc",
        8000,
    )
    assert driver.serve_upstream("orders-api", "dev", "shared") == (
        "shared-runtime-serve-svc.imprun-shared.svc",
        8000,
    )
    with pytest.raises(Invalid):
        driver.serve_upstream("orders-api", "dev/x", "dedicated")


def test_the_environment_routes_follow_the_driver_only_on_kuberay(
    driver: KubeRayDriver, kubernetes_cluster: Cluster
) -> None:
    on_kuberay = data_plane_upstream(
        Settings(cluster_driver="kuberay", kuberay_api_url=kubernetes_cluster.api.url), driver
    )
    assert callable(on_kuberay)
    assert on_kuberay("orders-api", "dev", "shared")[0].startswith("shared-runtime-serve-svc.")
    local = Settings(host="127.0.0.1", serve_port=8123)
    assert data_plane_upstream(local, driver) == ("127.0.0.1", 8123)  # one Serve ingress locally
