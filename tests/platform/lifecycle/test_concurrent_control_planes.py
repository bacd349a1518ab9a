"""Two control planes at once against one database: never both on one resource, and all converges.

Two real control-plane processes (``control_plane_process``) share a private system database, the
session's Redis and Ray head. Gateways are created through alternating instances; once they run,
one is stopped and another deleted, still with both instances running, and everything must settle
where it was asked to. Then the event log is the witness: every step event carries its actor (the
lease holder), when it started and when it ended; every transition its actor and time. For each
resource, the intervals of different actors must never overlap — and both actors must have worked,
on at least one resource each of them touched, or the check would prove nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imprun.domain.naming import ENVIRONMENT_NAMES, gateway_db_name, serve_app_name
from imprun.domain.observations import AppStatus
from imprun.drivers.local_ray import LocalRayServeDriver
from imprun.store.events import Event, EventLog
from imprun.store.mongo import Mongo, connect_mongo
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices
from tests.platform.lifecycle.conftest import SMALL_BUNDLE
from tests.platform.lifecycle.control_plane_process import (
    ControlPlaneProcess,
    gateway_phase,
    register_owner,
    running_control_plane,
    wait_for_phase,
)

LEASE_SECONDS = 5
GATEWAYS = 4
API_REASONS = {"Created", "StateRequested", "DeleteRequested"}
"""Events the API records (actor: the user) rather than a reconciler."""


@dataclass(frozen=True)
class WorkInterval:
    """What one event says an actor was doing to one resource, and when (a point for transitions)."""

    actor: str
    start: datetime
    end: datetime
    what: str

    @classmethod
    def of(cls, event: Event) -> WorkInterval:
        what = f"{event.reason}:{event.step or event.to_phase or event.message}"
        return cls(actor=event.actor, start=event.started_at or event.at, end=event.at, what=what)

    def overlaps(self, other: WorkInterval) -> bool:
        return self.start < other.end and other.start < self.end


def overlapping_work(events: list[Event]) -> list[tuple[str, WorkInterval, WorkInterval]]:
    """Pairs of intervals of *different* actors on the same resource that overlap in time."""
    by_resource: dict[str, list[WorkInterval]] = defaultdict(list)
    for event in events:
        by_resource[event.resource].append(WorkInterval.of(event))
    return [
        (resource, a, b)
        for resource, intervals in by_resource.items()
        for a, b in itertools.combinations(intervals, 2)
        if a.actor != b.actor and a.overlaps(b)
    ]


def broken_transition_chains(events: list[Event]) -> dict[str, list[tuple[str | None, str | None]]]:
    """Resources whose Transition events do not link up into one path from Creating, each move taken
    once (a doubled, lost or forked move). Independent of the order timestamps give."""
    paths: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
    for event in events:
        if event.reason == "Transition":
            paths[event.resource].append((event.from_phase, event.to_phase))
    broken = {}
    for resource, path in paths.items():
        remaining, current = list(path), "Creating"
        while remaining:
            moves = [move for move in remaining if move[0] == current]
            if len(moves) != 1 or moves[0][1] is None:
                broken[resource] = path
                break
            remaining.remove(moves[0])
            current = moves[0][1]
    return broken


@contextlib.contextmanager
def private_system_database(mongo: Mongo) -> Iterator[str]:
    name = f"imprun_concurrent_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        mongo.drop_database(name)


def _apps_of(driver: LocalRayServeDriver, gw: str) -> list[str]:
    return [name for name in driver.list_apps() if name.startswith(f"{gw}-")]


@pytest.mark.timeout(420)
def test_two_control_planes_never_work_on_one_resource_at_once(
    services: RunningServices,
    ray_head: RunningRayHead,
    ray_driver: LocalRayServeDriver,
    tmp_path: Path,
) -> None:
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    with contextlib.ExitStack() as stack:
        stack.callback(mongo.close)
        sys_db_name = stack.enter_context(private_system_database(mongo))
        planes: list[ControlPlaneProcess] = [
            stack.enter_context(
                running_control_plane(
                    services, ray_head, log_dir=tmp_path, sys_db_name=sys_db_name, lease_seconds=LEASE_SECONDS
                )
            )
            for _ in range(2)
        ]
        a, b = planes
        owner = register_owner(a.client)
        gws = [f"gw-{uuid.uuid4().hex[:8]}" for _ in range(GATEWAYS)]
        sys_db = mongo[sys_db_name]

        def remove_gateways() -> None:
            for gw in gws:
                a.client.delete(f"/v1/api-gateways/{gw}", headers=owner)
            eventually(lambda: sys_db.api_gateways.count_documents({}) == 0, timeout=120, interval=0.5)

        stack.callback(remove_gateways)  # runs before the planes stop (LIFO)

        for index, gw in enumerate(gws):
            plane = planes[index % 2]
            body = {"name": f"concurrent {gw}", "gatewayId": gw, "bundle": SMALL_BUNDLE}
            created = plane.client.post("/v1/api-gateways", json=body, headers=owner)
            assert created.status_code == 202, created.text
        for index, gw in enumerate(gws):
            wait_for_phase(planes[(index + 1) % 2], owner, gw, "Started", timeout=180)

        running, stopped, deleted, also_running = gws
        patched = b.client.patch(f"/v1/api-gateways/{stopped}", json={"state": "Stopped"}, headers=owner)
        assert patched.status_code == 200, patched.text
        assert a.client.delete(f"/v1/api-gateways/{deleted}", headers=owner).status_code == 202

        def settled() -> bool:
            return (
                gateway_phase(a.client, owner, running) == "Started"
                and gateway_phase(b.client, owner, also_running) == "Started"
                and gateway_phase(a.client, owner, stopped) == "Stopped"
                and gateway_phase(b.client, owner, deleted) is None
            )

        assert eventually(settled, timeout=180, interval=0.3), [
            gateway_phase(a.client, owner, gw) for gw in gws
        ]
        assert a.alive() and b.alive(), "a control plane died while both ran"

        for gw in (running, also_running):
            assert _apps_of(ray_driver, gw) == sorted(serve_app_name(gw, env) for env in ENVIRONMENT_NAMES)
            assert all(ray_driver.observe(gw, env).status is AppStatus.RUNNING for env in ENVIRONMENT_NAMES)
            assert sys_db.environments.count_documents({"gatewayId": gw, "phase": "Started"}) == 3
        assert _apps_of(ray_driver, stopped) == []
        assert sys_db.environments.count_documents({"gatewayId": stopped, "phase": "Stopped"}) == 3
        assert gateway_db_name(stopped) in mongo.list_database_names()
        assert _apps_of(ray_driver, deleted) == []
        assert sys_db.environments.count_documents({"gatewayId": deleted}) == 0
        assert gateway_db_name(deleted) not in mongo.list_database_names()

        log = EventLog(sys_db)
        events = [event for gw in gws for event in log.of_gateway(gw, limit=1000)]
        work = [event for event in events if a.owns(event.actor) or b.owns(event.actor)]
        requests = {event.reason for event in events if event not in work}
        assert requests <= API_REASONS, f"events by someone other than the two control planes: {requests}"
        actors = {event.actor for event in work}
        assert len(actors) == 2, f"only {actors} did any work; the test cannot show mutual exclusion"
        shared = {
            resource
            for resource in {event.resource for event in work}
            if len({event.actor for event in work if event.resource == resource}) == 2
        }
        assert shared, "no resource was ever worked on by both control planes"

        overlaps = overlapping_work(work)
        assert not overlaps, "steps of two control planes overlapped on one resource:\n" + "\n".join(
            f"  {resource}: {x.actor} {x.what} [{x.start}..{x.end}] vs {y.actor} {y.what} [{y.start}..{y.end}]"
            for resource, x, y in overlaps[:10]
        )
        assert not broken_transition_chains(work), broken_transition_chains(work)


# --- the detectors themselves, on made-up events -----------------------------------------------------

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(
    resource: str, actor: str, at: float, *, began: float | None = None, to: str | None = None
) -> Event:
    transition = to is not None
    return Event(
        gateway_id="gw",
        kind="gateway",
        resource=resource,
        type="Normal",
        reason="Transition" if transition else "Step",
        message="",
        at=_T0 + timedelta(seconds=at),
        actor=actor,
        to_phase=to,
        step=None if transition else "DeployApp",
        started_at=None if began is None else _T0 + timedelta(seconds=began),
    )


def test_overlap_detector_flags_only_different_actors_overlapping_on_one_resource() -> None:
    events = [
        _event("r1", "a", 2.0, began=0.0),
        _event("r1", "b", 3.0, began=1.0),  # overlaps a's [0, 2]
        _event("r2", "a", 1.0, began=0.0),
        _event("r2", "b", 2.0, began=1.0),  # starts exactly when a's ends: a handover, not an overlap
        _event("r2", "a", 0.9, began=0.5),  # the same actor twice is not concurrency
        _event("r3", "b", 1.5, to="Started"),  # a transition is a point in time
        _event("r3", "a", 2.0, began=1.0),  # ...inside a's step
        _event("r4", "b", 1.5, began=0.0),  # another resource at the same time is fine
    ]
    found = {(resource, x.actor, y.actor) for resource, x, y in overlapping_work(events)}
    assert found == {("r1", "a", "b"), ("r3", "b", "a")}


def test_transition_chain_detector_flags_doubled_and_missing_moves() -> None:
    def moves(resource: str, *pairs: tuple[str, str]) -> list[Event]:
        events = []
        for index, (from_, to) in enumerate(pairs):
            event = _event(resource, "a", float(index), to=to)
            events.append(dataclasses.replace(event, from_phase=from_))
        return events

    good = moves("ok", ("Creating", "Created"), ("Created", "Starting"), ("Starting", "Started"))
    doubled = moves("doubled", ("Creating", "Created"), ("Creating", "Created"), ("Created", "Starting"))
    gap = moves("gap", ("Creating", "Created"), ("Starting", "Started"))
    assert set(broken_transition_chains(good + doubled + gap)) == {"doubled", "gap"}
