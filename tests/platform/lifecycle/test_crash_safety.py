"""Crash safety: SIGKILL the control plane at every step boundary of creation and deletion, restart it.

Each case runs a control plane armed with ``IMPRUN_FAULT_CRASH_AT`` as the *only* control plane,
drives a gateway into the armed boundary (creating it, or deleting one a clean control plane brought
to Started), checks that the process died of SIGKILL right there (its log names the boundary and,
for ``after`` boundaries, the event log holds the step it had just finished), then starts a clean
control plane and checks convergence: the right final phase, exactly one of each resource (gateway
record, three environment records, the gateway database, three running Serve apps) or nothing at
all after deletion, and an event log with one Transition event per real transition — the expected
path, no duplicates.

The control planes are real ``uvicorn`` child processes (``control_plane_process``) on a private
system database, with a 2 s lease: only one of them runs at a time here, so a short lease only
shortens how long the clean one waits for the killed one's claim to run out. The clean control plane
is kept between cases and stopped only while a faulty one runs.

Every case runs with both cluster drivers: the local Ray Serve driver on the session's Ray head, and
the KubeRay driver (``IMPRUN_CLUSTER_DRIVER=kuberay``) against the Kubernetes API stand-in with its
fake operator, served from this process on a free port whose URL the children get as
``IMPRUN_KUBERAY_API_URL``. With KubeRay, "one of each resource" also means the gateway's namespace
and one RayService per environment, and "nothing at all" that the namespace is gone. The stand-in
makes the KubeRay half quick apart from process start-up: two control-plane starts per boundary
(the armed one and its clean successor) account for most of its time. Run one half with
``-k local`` or ``-k kuberay``; only the local half starts the session's Ray head.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pymongo.collection import Collection

from imprun.domain.naming import ENVIRONMENT_NAMES, gateway_db_name, serve_app_name
from imprun.domain.observations import AppStatus
from imprun.drivers.cluster import ClusterDriver
from imprun.drivers.k8s_objects import namespace_name
from imprun.drivers.kuberay import KubeRayDriver, open_api_client
from imprun.store.events import Event, EventLog
from imprun.store.mongo import Document, Mongo, connect_mongo
from runtime_actors.shared.names import CONSUMERS, PUBLISHED_FUNCTIONS
from tests.fixtures.k8s_standin import CORE, Cluster, kuberay_settings, running_cluster
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices
from tests.platform.drivers.k8s_schemas import assert_valid
from tests.platform.lifecycle.conftest import SMALL_BUNDLE
from tests.platform.lifecycle.control_plane_process import (
    ControlPlaneProcess,
    kuberay_environment,
    register_owner,
    start_control_plane,
    wait_for_phase,
    wait_gone,
)

LEASE_SECONDS = 2

CREATION_BOUNDARIES = [
    "gateway:CreateDatabase:after",
    "gateway:CreateEnvironments:after",
    "gateway:Transition-Created:after",
    "gateway:Transition-Starting:after",
    "gateway:Transition-Started:after",
    "environment:Transition-Created:after",
    "environment:Transition-Starting:after",
    "environment:DeployApp:after",
    "environment:Transition-Started:after",
]
DELETION_BOUNDARIES = [
    "gateway:Transition-Deleting:after",
    "gateway:SetEnvironmentsDesired:after",
    "gateway:DropDatabase:after",
    "gateway:DeleteEnvironmentRecords:after",
    "gateway:Transition-Deleted:after",
    "gateway:DeleteGatewayRecord:before",
    "environment:Transition-Deleting:after",
    "environment:DeleteApp:after",
    "environment:Transition-Deleted:after",
]

CREATION_PATH = [("Creating", "Created"), ("Created", "Starting"), ("Starting", "Started")]
DELETION_PATH = [*CREATION_PATH, ("Started", "Deleting"), ("Deleting", "Deleted")]
_PHASE_ORDER = ["Creating", "Created", "Starting", "Started", "Deleting", "Deleted"]


@dataclass
class CrashHarness:
    """The session's services seen from this module: a private system database, the clean control
    plane (started on demand, stopped while a faulty one runs) and the user owning every gateway.

    ``driver`` is this process's view of the cluster the control planes drive: the local driver on
    the Ray head, or a ``KubeRayDriver`` on the stand-in ``cluster`` (``driver_env`` selects it in
    the children).
    """

    services: RunningServices
    ray_head: RunningRayHead | None
    driver: ClusterDriver
    log_dir: Path
    mongo: Mongo
    cluster: Cluster | None = None
    driver_env: dict[str, str] = field(default_factory=dict)
    sys_db_name: str = field(default_factory=lambda: f"imprun_crash_{uuid.uuid4().hex[:8]}")
    clean: ControlPlaneProcess | None = None
    owner: dict[str, str] = field(default_factory=dict)

    def start(self, crash_at: str | None = None) -> ControlPlaneProcess:
        return start_control_plane(
            self.services,
            self.ray_head,
            log_dir=self.log_dir,
            sys_db_name=self.sys_db_name,
            lease_seconds=LEASE_SECONDS,
            crash_at=crash_at,
            driver_env=self.driver_env,
        )

    def clean_plane(self) -> ControlPlaneProcess:
        if self.clean is None or not self.clean.alive():
            self.clean = self.start()
        if not self.owner:
            self.owner = register_owner(self.clean.client)
        return self.clean

    def stop_clean(self) -> None:
        if self.clean is not None:
            self.clean.stop()
            self.clean = None

    @contextlib.contextmanager
    def faulty(self, crash_at: str, gw: str) -> Iterator[ControlPlaneProcess]:
        """A control plane armed with ``crash_at``, the only one running; killed on the way out.

        No other gateway may exist meanwhile, so only ``gw`` can be the one reaching the boundary.
        """
        others = self.mongo[self.sys_db_name].api_gateways.count_documents({"_id": {"$ne": gw}})
        assert others == 0, f"{others} gateway(s) left by an earlier case; the boundary would be ambiguous"
        self.stop_clean()
        plane = self.start(crash_at)
        try:
            yield plane
        finally:
            plane.stop(grace=5)

    def events_of(self, gw: str) -> list[Event]:
        return EventLog(self.mongo[self.sys_db_name]).of_gateway(gw, limit=1000)

    def remove_gateways(self, *gws: str) -> None:
        """Delete these gateways (all, when none are named) if they still exist; wait until gone."""
        gateways = self.mongo[self.sys_db_name].api_gateways
        query = {"_id": {"$in": list(gws)}} if gws else {}
        left = [str(doc["_id"]) for doc in gateways.find(query, {"_id": 1})]
        if not left:
            return
        plane = self.clean_plane()
        for gw in left:
            plane.client.delete(f"/v1/api-gateways/{gw}", headers=self.owner)
        assert eventually(lambda: gateways.count_documents(query) == 0, timeout=120, interval=0.5), (
            f"gateways {left} were not removed\n{plane.log_tail()}"
        )


@contextlib.contextmanager
def _cluster_of(request: pytest.FixtureRequest, services: RunningServices) -> Iterator[CrashHarness]:
    """A harness without its control planes: on the session's Ray head, or on a fresh stand-in."""
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    log_dir = request.getfixturevalue("tmp_path_factory").mktemp(f"crash-safety-{request.param}")
    try:
        if request.param == "local":  # the Ray head starts only when a local case runs
            ray_head = request.getfixturevalue("ray_head")
            driver = request.getfixturevalue("ray_driver")
            yield CrashHarness(
                services=services, ray_head=ray_head, driver=driver, log_dir=log_dir, mongo=mongo
            )
            return
        with running_cluster() as cluster:
            settings = kuberay_settings(services.settings, cluster)
            kuberay = KubeRayDriver(
                open_api_client(settings),
                settings,
                runtime_args=lambda gw: {},
                gateway_mongo_url=lambda gw: "",
                shared_runtime_mongo_url=lambda: "",
            )
            try:
                yield CrashHarness(
                    services=services,
                    ray_head=None,
                    driver=kuberay,
                    log_dir=log_dir,
                    mongo=mongo,
                    cluster=cluster,
                    driver_env=kuberay_environment(cluster.api.url),
                )
            finally:
                kuberay.close()
    finally:
        mongo.close()


@pytest.fixture(scope="module", params=["local", "kuberay"])
def harness(request: pytest.FixtureRequest, services: RunningServices) -> Iterator[CrashHarness]:
    with _cluster_of(request, services) as crash:
        try:
            crash.clean_plane()
            yield crash
        finally:
            try:
                crash.remove_gateways()
            finally:
                crash.stop_clean()
                crash.mongo.drop_database(crash.sys_db_name)
        if crash.cluster is not None:  # every object the killed and the clean planes wrote
            for written in crash.cluster.api.written:
                assert_valid(written)


@pytest.fixture
def gw(harness: CrashHarness) -> Iterator[str]:
    """A fresh gateway id; whatever a failed case left of that gateway is removed afterwards."""
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    yield gateway_id
    harness.remove_gateways(gateway_id)


def _create(plane: ControlPlaneProcess, owner: dict[str, str], gw: str) -> None:
    body = {"name": f"crash {gw}", "gatewayId": gw, "bundle": SMALL_BUNDLE}
    created = plane.client.post("/v1/api-gateways", json=body, headers=owner)
    assert created.status_code == 202, created.text


def _gateway_apps(driver: ClusterDriver, gw: str) -> list[str]:
    return [name for name in driver.list_apps() if name.startswith(f"{gw}-")]


# --- what the killed process left behind ------------------------------------------------------------


def assert_killed_at_boundary(harness: CrashHarness, faulty: ControlPlaneProcess, gw: str) -> None:
    """The faulty plane died of SIGKILL at its armed boundary, having done the step for ``after``."""
    crash_at = faulty.crash_at
    assert crash_at is not None
    faulty.wait_killed()
    assert f"fault injection: SIGKILL at {crash_at}" in faulty.log_text(), faulty.log_tail()
    kind, step, where = crash_at.split(":")
    if where != "after":
        return
    done_by_faulty = [
        event
        for event in harness.events_of(gw)
        if faulty.owns(event.actor)
        and event.kind == kind
        and (event.step == step or (event.reason == "Transition" and f"Transition-{event.to_phase}" == step))
    ]
    assert done_by_faulty, f"no {kind} event for {step} by the killed control plane {faulty.actor_prefix}"


# --- what convergence must look like -----------------------------------------------------------------


def transition_paths(events: list[Event]) -> dict[str, list[tuple[str, str]]]:
    """Per resource, its Transition events as ``(from, to)`` pairs in the order they happened."""
    transitions = sorted(
        (e for e in events if e.reason == "Transition"),
        key=lambda e: (e.at, _PHASE_ORDER.index(e.from_phase or "Creating")),
    )
    paths: dict[str, list[tuple[str, str]]] = {}
    for event in transitions:
        assert event.from_phase is not None and event.to_phase is not None, event
        paths.setdefault(event.resource, []).append((event.from_phase, event.to_phase))
    return paths


def assert_transition_log(harness: CrashHarness, gw: str, expected: list[tuple[str, str]]) -> None:
    """One Transition event per real transition of the gateway and of each environment; no duplicates."""
    paths = transition_paths(harness.events_of(gw))
    resources = [gw, *(f"{gw}/{env}" for env in ENVIRONMENT_NAMES)]
    assert sorted(paths) == sorted(resources), f"transitions recorded for {sorted(paths)}"
    for resource in resources:
        path = paths[resource]
        duplicates = {pair for pair in path if path.count(pair) > 1}
        assert not duplicates, f"{resource}: duplicate transition events {duplicates} in {path}"
        assert path == expected, f"{resource}: transitions {path}, expected {expected}"


def assert_created_exactly_once(harness: CrashHarness, gw: str) -> None:
    sys_db = harness.mongo[harness.sys_db_name]
    assert sys_db.api_gateways.count_documents({"_id": gw}) == 1
    gateway = sys_db.api_gateways.find_one({"_id": gw})
    assert gateway is not None and gateway["phase"] == "Started" and gateway["conditions"] == []
    environments = list(sys_db.environments.find({"gatewayId": gw}))
    assert sorted(e["name"] for e in environments) == sorted(ENVIRONMENT_NAMES), environments
    assert all(e["phase"] == "Started" and e["state"] == "Running" for e in environments), environments
    assert all(e["conditions"] == [] for e in environments), environments

    db_name = gateway_db_name(gw)
    assert db_name in harness.mongo.list_database_names()
    gateway_db = harness.mongo[db_name]
    assert {PUBLISHED_FUNCTIONS, CONSUMERS} <= set(gateway_db.list_collection_names())
    assert _unique_keys(gateway_db[PUBLISHED_FUNCTIONS]) == {("name", "environment")}
    assert _unique_keys(gateway_db[CONSUMERS]) == {("environment", "lookupHash"), ("credentialId",)}

    expected_apps = sorted(serve_app_name(gw, env) for env in ENVIRONMENT_NAMES)
    assert _gateway_apps(harness.driver, gw) == expected_apps
    for env in ENVIRONMENT_NAMES:
        assert harness.driver.observe(gw, env).status is AppStatus.RUNNING, env
    if harness.cluster is not None:
        assert harness.cluster.api.get((CORE, "namespaces"), "", namespace_name(gw)) is not None


def _unique_keys(collection: Collection[Document]) -> set[tuple[str, ...]]:
    """The key fields of the collection's unique indexes (nx-27017 names indexes its own way)."""
    return {
        tuple(name for name, _ in index["key"])
        for index in collection.index_information().values()
        if index.get("unique")
    }


def assert_nothing_left(harness: CrashHarness, gw: str) -> None:
    sys_db = harness.mongo[harness.sys_db_name]
    assert sys_db.api_gateways.count_documents({"_id": gw}) == 0
    assert sys_db.environments.count_documents({"gatewayId": gw}) == 0
    assert gateway_db_name(gw) not in harness.mongo.list_database_names()
    assert _gateway_apps(harness.driver, gw) == []
    for env in ENVIRONMENT_NAMES:
        assert harness.driver.observe(gw, env).status is AppStatus.MISSING, env
    if harness.cluster is not None:
        assert harness.cluster.api.get((CORE, "namespaces"), "", namespace_name(gw)) is None


# --- the cases ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("crash_at", CREATION_BOUNDARIES)
def test_crash_during_creation_converges(harness: CrashHarness, crash_at: str, gw: str) -> None:
    with harness.faulty(crash_at, gw) as faulty:
        _create(faulty, harness.owner, gw)
        assert_killed_at_boundary(harness, faulty, gw)

    clean = harness.clean_plane()
    wait_for_phase(clean, harness.owner, gw, "Started")
    assert_created_exactly_once(harness, gw)
    assert_transition_log(harness, gw, CREATION_PATH)

    assert clean.client.delete(f"/v1/api-gateways/{gw}", headers=harness.owner).status_code == 202
    wait_gone(clean, harness.owner, gw)
    assert_nothing_left(harness, gw)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("crash_at", DELETION_BOUNDARIES)
def test_crash_during_deletion_converges(harness: CrashHarness, crash_at: str, gw: str) -> None:
    clean = harness.clean_plane()
    _create(clean, harness.owner, gw)
    wait_for_phase(clean, harness.owner, gw, "Started")

    with harness.faulty(crash_at, gw) as faulty:
        deleted = faulty.client.delete(f"/v1/api-gateways/{gw}", headers=harness.owner)
        assert deleted.status_code == 202, deleted.text
        assert_killed_at_boundary(harness, faulty, gw)

    clean = harness.clean_plane()
    wait_gone(clean, harness.owner, gw)
    assert_nothing_left(harness, gw)
    assert_transition_log(harness, gw, DELETION_PATH)
