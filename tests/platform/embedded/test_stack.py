"""``EmbeddedStack``, ``stop_embedded`` and ``embedded_status`` against real nx-27017 and redis-server.

Every test gets its own data dir and free ports (``service_settings``), so the stacks started here
never meet the session's services; Ray is left out (``with_ray=False``) or configured by URL.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imprun.embedded.mongo import mongo_service
from imprun.embedded.process import port_open
from imprun.embedded.redis import redis_service
from imprun.embedded.stack import (
    MONGO,
    RAY,
    REDIS,
    EmbeddedStack,
    StackEvent,
    StepState,
    embedded_ray_address,
    embedded_status,
    redact_url,
    stop_embedded,
)
from imprun.errors import Unavailable
from imprun.settings import Settings
from imprun.store.mongo import mongo_reachable
from imprun.store.redis import redis_reachable
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices, free_port, service_settings

pytestmark = pytest.mark.services


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    # A port of its own for the Ray head too: stop_embedded stops the head recorded for that port.
    base = service_settings(tmp_path / "data", embedded_ray_port=free_port())
    yield base
    stop_embedded(base)  # whatever a failed test left running


def states(events: list[StackEvent]) -> list[tuple[str, StepState]]:
    return [(event.service, event.state) for event in events]


def pid_files(settings: Settings) -> set[str]:
    return {path.name for path in (settings.data_dir / "run").glob("*.pid")}


def test_starts_mongo_and_redis_and_fills_in_their_urls(settings: Settings) -> None:
    events: list[StackEvent] = []
    stack = EmbeddedStack(settings, with_ray=False, on_progress=events.append)
    effective = stack.start()

    assert effective.mongo_url == f"mongodb://127.0.0.1:{settings.embedded_mongo_port}/?directConnection=true"
    assert effective.redis_url == f"redis://127.0.0.1:{settings.embedded_redis_port}/0"
    assert effective.ray_address is None
    assert effective.api_port == settings.api_port  # everything else is carried over
    assert mongo_reachable(effective.mongo_url) and redis_reachable(effective.redis_url)
    assert states(events) == [
        (MONGO, StepState.STARTING),
        (MONGO, StepState.STARTED),
        (REDIS, StepState.STARTING),
        (REDIS, StepState.STARTED),
        (RAY, StepState.DISABLED),
    ]
    assert stack.started == [MONGO, REDIS] and stack.reused == []
    assert pid_files(settings) >= {f"{MONGO}.pid", f"{REDIS}.pid"}

    events.clear()
    assert stack.stop() == [REDIS, MONGO]  # newest first
    assert states(events) == [
        (REDIS, StepState.STOPPING),
        (REDIS, StepState.STOPPED),
        (MONGO, StepState.STOPPING),
        (MONGO, StepState.STOPPED),
    ]
    assert not port_open("127.0.0.1", settings.embedded_mongo_port)
    assert not port_open("127.0.0.1", settings.embedded_redis_port)
    assert pid_files(settings) & {f"{MONGO}.pid", f"{REDIS}.pid"} == set()
    assert stack.stop() == []  # nothing left to stop


def start_in_another_process(settings: Settings) -> None:
    """Start a stack the way ``imprun up`` does, from a process that then exits (as after a crash)."""
    script = (
        "import sys; from imprun.settings import Settings; from imprun.embedded.stack import EmbeddedStack; "
        "EmbeddedStack(Settings.model_validate_json(sys.argv[1]), with_ray=False).start()"
    )
    subprocess.run([sys.executable, "-c", script, settings.model_dump_json()], check=True, timeout=120)


def test_second_stack_reuses_running_services_and_stop_embedded_stops_them(settings: Settings) -> None:
    start_in_another_process(settings)
    try:
        started = {row.name: row for row in embedded_status(settings)}

        events: list[StackEvent] = []
        second = EmbeddedStack(settings, with_ray=False, on_progress=events.append)
        effective = second.start()
        assert (MONGO, StepState.REUSED) in states(events) and (REDIS, StepState.REUSED) in states(events)
        assert second.started == [] and second.reused == [MONGO, REDIS]
        assert second.stop() == []  # a reused service belongs to whoever started it
        assert effective.mongo_url is not None and mongo_reachable(effective.mongo_url)
        assert effective.redis_url is not None and redis_reachable(effective.redis_url)

        assert started[MONGO].running and started[MONGO].pid is not None and not started[MONGO].external
        assert started[REDIS].running and started[REDIS].pid is not None
        assert started[MONGO].url == effective.mongo_url and started[REDIS].url == effective.redis_url
        assert not started[RAY].running and started[RAY].url == f"127.0.0.1:{settings.embedded_ray_port}"

        # Another process's view: only the pid files under the data dir.
        assert stop_embedded(settings) == [REDIS, MONGO]
        assert not mongo_reachable(effective.mongo_url) and not redis_reachable(effective.redis_url)
        stopped = {row.name: row for row in embedded_status(settings)}
        assert not stopped[MONGO].running and stopped[MONGO].pid is None
        assert not stopped[REDIS].running and stopped[REDIS].pid is None
        assert pid_files(settings) == set()
        assert stop_embedded(settings) == []  # idempotent
    finally:
        stop_embedded(settings)  # never leave the other process's services running


def test_configured_urls_are_used_as_they_are(tmp_path: Path, services: RunningServices) -> None:
    configured = service_settings(
        tmp_path,
        mongo_url=services.settings.mongo_url,
        redis_url=services.settings.redis_url,
        ray_address="127.0.0.1:1",
    )
    events: list[StackEvent] = []
    stack = EmbeddedStack(configured, on_progress=events.append)
    assert stack.start() == configured
    assert states(events) == [
        (MONGO, StepState.CONFIGURED),
        (REDIS, StepState.CONFIGURED),
        (RAY, StepState.CONFIGURED),
    ]
    assert stack.started == [] and not (tmp_path / "run").exists()

    rows = {row.name: row for row in embedded_status(configured)}
    assert all(row.external and row.pid is None for row in rows.values())
    assert rows[MONGO].running and rows[REDIS].running
    assert not rows[RAY].running  # nothing listens on port 1
    assert stop_embedded(configured) == []  # configured services are never ours to stop
    assert services.mongo.recorded_pid() is not None and services.redis.recorded_pid() is not None


def test_a_failed_start_stops_what_it_had_started(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, startup_timeout_seconds=2.0)
    with socket.socket() as squatter:  # accepts connections on redis's port but never speaks Redis
        squatter.bind(("127.0.0.1", settings.embedded_redis_port))
        squatter.listen()
        stack = EmbeddedStack(settings, with_ray=False)
        with pytest.raises(Unavailable, match="not a working redis-server"):
            stack.start()
    assert stack.started == []
    assert not port_open("127.0.0.1", settings.embedded_mongo_port)
    assert pid_files(settings) == set()


def test_stop_embedded_clears_a_stale_pid_file(settings: Settings) -> None:
    run = settings.data_dir / "run"
    run.mkdir(parents=True)
    (run / f"{REDIS}.pid").write_text("999999999")  # above any pid_max: no such process
    assert stop_embedded(settings) == []
    assert pid_files(settings) == set()


def test_pid_file_names_match_the_services(settings: Settings) -> None:
    assert mongo_service(settings).name == MONGO
    assert redis_service(settings).name == REDIS


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("mongodb://imp:s3cret@db.example:27017/x?tls=true") == (
        "mongodb://imp:***@db.example:27017/x?tls=true"
    )
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("127.0.0.1:6380") == "127.0.0.1:6380"


@pytest.mark.ray
def test_a_running_ray_head_is_reused_and_never_stopped(ray_head: RunningRayHead, tmp_path: Path) -> None:
    head_settings: Settings = ray_head.settings
    settings = service_settings(
        tmp_path,
        mongo_url="mongodb://127.0.0.1:1/",  # only Ray matters here
        redis_url="redis://127.0.0.1:1/0",
        embedded_ray_port=head_settings.embedded_ray_port,
        dashboard_port=head_settings.dashboard_port,
        serve_port=head_settings.serve_port,
    )
    events: list[StackEvent] = []
    stack = EmbeddedStack(settings, on_progress=events.append)
    effective = stack.start()
    assert effective.ray_address == ray_head.address == embedded_ray_address(settings)
    assert (RAY, StepState.REUSED) in states(events)
    assert stack.reused == [RAY] and stack.started == []
    assert stack.ray_dashboard_url == f"http://127.0.0.1:{head_settings.dashboard_port}"
    assert stack.stop() == []
    ray_row = next(row for row in embedded_status(settings) if row.name == RAY)
    assert ray_row.running and not ray_row.external
