"""``LocalRayServeDriver`` against the session's real Ray head: deploy, observe, scale, delete, route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.schema import ReplicaDetails, ServeInstanceDetails

from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import ENVIRONMENT_REPLICA_ENV_VARS, AppSpec, AppStatus, ClusterDriver
from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.errors import Invalid, Unavailable
from imprun.settings import Settings
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import free_port

pytestmark = pytest.mark.ray

DEPLOY_TIMEOUT = 90.0  # replicas start in ~2 s; generous for a loaded 2-core CI machine


def spec(gateway_id: str, replicas: int = 1) -> AppSpec:
    return AppSpec(gateway_id, "dev", min_replicas=replicas, max_replicas=replicas, cpu=0.1, memory_mb=64)


def status_of(driver: ClusterDriver, gateway_id: str) -> AppStatus:
    return driver.observe(gateway_id, "dev").status


def get(ray_head: RunningRayHead, path: str) -> httpx.Response:
    return httpx.get(f"{ray_head.serve_url}{path}", timeout=10)


def running_replicas(gateway_id: str) -> list[ReplicaDetails]:
    """The app's running replicas, read from Serve directly (the driver does not expose them)."""
    client = _get_global_client()
    assert client is not None
    details = ServeInstanceDetails(**client.get_serve_details())
    app = details.applications.get(serve_app_name(gateway_id, "dev"))
    deployment = app.deployments.get("FunctionActor") if app is not None else None
    replicas = deployment.replicas if deployment is not None else []
    return [replica for replica in replicas if replica.state == "RUNNING"]


def running_replica_ids(gateway_id: str) -> set[str]:
    return {replica.replica_id for replica in running_replicas(gateway_id)}


@pytest.fixture
def gateway_id(request: pytest.FixtureRequest, ray_driver: LocalRayServeDriver) -> Iterator[str]:
    """A gateway id of this test's own; its dev app is deleted afterwards."""
    name = "t-" + request.node.name.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    yield name
    ray_driver.delete(name, "dev")


def test_apply_returns_before_replicas_run_and_the_app_then_serves_health(
    ray_driver: LocalRayServeDriver, ray_head: RunningRayHead, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))

    assert status_of(ray_driver, gateway_id) in {AppStatus.DEPLOYING, AppStatus.RUNNING}
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    # HAProxy picks up the new route right after Serve reports RUNNING.
    assert eventually(lambda: get(ray_head, f"/{gateway_id}/dev/_health").status_code == 200, timeout=15)
    health = get(ray_head, f"/{gateway_id}/dev/_health")
    assert health.json() == {"gateway": gateway_id, "environment": "dev", "status": "ok"}
    assert serve_app_name(gateway_id, "dev") in ray_driver.list_apps()


def test_replicas_run_their_code_on_the_main_loop_without_a_disconnect_watch(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    assert eventually(lambda: len(running_replicas(gateway_id)) == 1, timeout=DEPLOY_TIMEOUT)

    (replica,) = running_replicas(gateway_id)
    assert replica.pid is not None
    environ = Path(f"/proc/{replica.pid}/environ").read_bytes().split(b"\0")
    for name, value in ENVIRONMENT_REPLICA_ENV_VARS.items():
        assert f"{name}={value}".encode() in environ


def test_unknown_path_in_an_environment_is_404_in_the_api_error_shape(
    ray_driver: LocalRayServeDriver, ray_head: RunningRayHead, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    assert eventually(
        lambda: get(ray_head, f"/{gateway_id}/dev/_health").status_code == 200, timeout=DEPLOY_TIMEOUT
    )

    response = get(ray_head, f"/{gateway_id}/dev/no-such-function")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "/no-such-function" in error["message"]


def test_apply_again_with_more_replicas_scales_in_place(
    ray_driver: LocalRayServeDriver, ray_head: RunningRayHead, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id, replicas=1))
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    [first_replica] = running_replica_ids(gateway_id)

    ray_driver.apply(spec(gateway_id, replicas=2))

    assert eventually(lambda: len(running_replica_ids(gateway_id)) == 2, timeout=DEPLOY_TIMEOUT)
    assert first_replica in running_replica_ids(gateway_id)  # scaled, not redeployed
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    assert get(ray_head, f"/{gateway_id}/dev/_health").status_code == 200


def test_applying_an_unchanged_spec_restarts_nothing(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    before = running_replica_ids(gateway_id)

    ray_driver.apply(spec(gateway_id))

    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    assert running_replica_ids(gateway_id) == before


def test_delete_removes_the_app_and_its_route(
    ray_driver: LocalRayServeDriver, ray_head: RunningRayHead, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    assert eventually(
        lambda: get(ray_head, f"/{gateway_id}/dev/_health").status_code == 200, timeout=DEPLOY_TIMEOUT
    )

    ray_driver.delete(gateway_id, "dev")

    assert status_of(ray_driver, gateway_id) in {AppStatus.DELETING, AppStatus.MISSING}
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.MISSING, timeout=DEPLOY_TIMEOUT)
    assert serve_app_name(gateway_id, "dev") not in ray_driver.list_apps()
    assert eventually(lambda: get(ray_head, f"/{gateway_id}/dev/_health").status_code == 404, timeout=15)
    ray_driver.delete(gateway_id, "dev")  # deleting what is gone is fine


def test_applying_while_the_app_is_being_deleted_brings_it_back(
    ray_driver: LocalRayServeDriver, ray_head: RunningRayHead, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    ray_driver.delete(gateway_id, "dev")

    ray_driver.apply(spec(gateway_id))

    assert eventually(lambda: status_of(ray_driver, gateway_id) is AppStatus.RUNNING, timeout=DEPLOY_TIMEOUT)
    assert eventually(lambda: get(ray_head, f"/{gateway_id}/dev/_health").status_code == 200, timeout=15)


def test_an_app_never_deployed_is_missing_and_deleting_it_is_fine(ray_driver: LocalRayServeDriver) -> None:
    assert ray_driver.observe("never-deployed", "prod").status is AppStatus.MISSING
    ray_driver.delete("never-deployed", "prod")
    assert "never-deployed-prod" not in ray_driver.list_apps()


def test_list_apps_ignores_serve_apps_that_are_not_environments(
    ray_driver: LocalRayServeDriver, gateway_id: str
) -> None:
    ray_driver.apply(spec(gateway_id))
    # Named and routed like an environment, but not running FunctionActor: not ours.
    lookalike = serve.deployment(name="Other", ray_actor_options={"num_cpus": 0.1})(lambda request: "other")
    serve.run(lookalike.bind(), name="lookalike-dev", route_prefix="/lookalike/dev")
    try:
        apps = ray_driver.list_apps()
    finally:
        serve.delete("lookalike-dev", _blocking=False)
    assert serve_app_name(gateway_id, "dev") in apps
    assert "lookalike-dev" not in apps


def test_bad_names_are_invalid_before_reaching_ray(ray_driver: LocalRayServeDriver) -> None:
    with pytest.raises(Invalid):
        ray_driver.observe("Not A Gateway", "dev")
    with pytest.raises(Invalid):
        ray_driver.delete("valid-gateway", "qa")


def test_ping_answers_while_ray_runs(ray_driver: LocalRayServeDriver) -> None:
    ray_driver.ping()


def test_an_address_that_is_not_host_and_port_is_invalid() -> None:
    with pytest.raises(Invalid, match="host:port"):
        LocalRayServeDriver("auto", Settings())


def test_an_unreachable_ray_address_is_unavailable() -> None:
    driver = LocalRayServeDriver(f"127.0.0.1:{free_port()}", Settings())
    with pytest.raises(Unavailable, match="not reachable"):
        driver.ping()
    with pytest.raises(Unavailable, match="not reachable"):
        driver.observe("some-gateway", "dev")
    with pytest.raises(Unavailable):
        driver.apply(spec("some-gateway"))
    with pytest.raises(Unavailable):
        driver.list_apps()
