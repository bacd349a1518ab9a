"""A real control plane in a child process, for tests that kill it or run two of them at once.

``start_control_plane`` launches ``uvicorn --factory imprun.api.app:app_from_env`` against the
session's embedded services and Ray head, configured only through ``IMPRUN_*`` variables (short
lease, fast reconcile interval, optional ``IMPRUN_FAULT_CRASH_AT``), waits for ``/readyz`` with a
deadline and returns a ``ControlPlaneProcess``. Without a Ray head, ``driver_env`` selects another
cluster driver: ``kuberay_environment`` points one at a Kubernetes API stand-in's URL. Its output goes to a log file, quoted in every
failure. ``stop`` ends it (SIGTERM, then SIGKILL); ``wait_killed`` waits for a fault-injected death
and checks it was SIGKILL. ``register_owner`` signs a new user up and returns their auth headers
(sessions live in the shared Redis, so the token is good on every control plane of the session);
``gateway_phase``, ``wait_for_phase`` and ``wait_gone`` poll a gateway through any plane's API.

Tests give each control plane a private ``sys_db_name`` so the reconcilers of the in-process control
plane (``lifecycle_client``) never see, let alone work on, these resources.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from imprun.embedded.ray_head import ray_auth_token_path
from tests.fixtures.polling import eventually
from tests.fixtures.ray import RunningRayHead
from tests.fixtures.services import RunningServices, free_port

PASSWORD = "correct-horse-battery"
_LOG_TAIL_CHARS = 6000


@dataclass
class ControlPlaneProcess:
    """One control-plane child process; ``url`` is its HTTP API."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    crash_at: str | None = None
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def actor_prefix(self) -> str:
        """How this process's reconcilers sign events: ``<hostname>:<pid>:<random>``."""
        return f"{socket.gethostname()}:{self.pid}:"

    def owns(self, actor: str) -> bool:
        return actor.startswith(self.actor_prefix)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0)
        return self._client

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        """The end of the log without the access lines of the tests' own polling."""
        lines = [line for line in self.log_text().splitlines() if "imprun.access:" not in line]
        return (
            f"--- {self.log_path} (tail, access lines left out) ---\n" + "\n".join(lines)[-_LOG_TAIL_CHARS:]
        )

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM, and SIGKILL if it has not exited within ``grace`` seconds. Idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def wait_killed(self, *, timeout: float = 90.0) -> None:
        """Wait until the process has died of SIGKILL (the fault injector's way out)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"control plane {self.pid} armed with {self.crash_at!r} was still alive after "
                f"{timeout:.0f} s: the step boundary was never reached\n{self.log_tail()}"
            ) from None
        assert code == -signal.SIGKILL, (
            f"control plane {self.pid} exited with {code}, not by SIGKILL\n{self.log_tail()}"
        )


def kuberay_environment(api_url: str) -> dict[str, str]:
    """``driver_env`` for a control plane whose ``KubeRayDriver`` talks to the API server at ``api_url``."""
    return {
        "IMPRUN_CLUSTER_DRIVER": "kuberay",
        "IMPRUN_KUBERAY_API_URL": api_url,
        "IMPRUN_KUBERAY_REQUEST_TIMEOUT_SECONDS": "2",
    }


def control_plane_environment(
    services: RunningServices,
    ray_head: RunningRayHead | None,
    *,
    port: int,
    sys_db_name: str,
    lease_seconds: int,
    crash_at: str | None,
    driver_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """This process's environment without any ``IMPRUN_*`` of its own, plus the control plane's.

    ``ray_head`` gives the local driver its cluster; ``driver_env`` adds (or overrides) settings,
    e.g. ``kuberay_environment``'s.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMPRUN_")}
    settings = services.settings
    assert settings.mongo_url is not None and settings.redis_url is not None
    if ray_head is not None:
        env["IMPRUN_RAY_ADDRESS"] = ray_head.address
        env["IMPRUN_SERVE_PORT"] = str(ray_head.settings.serve_port)
        # That head's own token (which may not exist yet: a head started after the control plane).
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN_PATH"] = str(ray_auth_token_path(ray_head.settings))
    env.update(
        {
            "IMPRUN_MONGO_URL": settings.mongo_url,
            "IMPRUN_REDIS_URL": settings.redis_url,
            "IMPRUN_DATA_DIR": str(settings.data_dir),
            "IMPRUN_SYS_DB_NAME": sys_db_name,
            "IMPRUN_API_PORT": str(port),
            "IMPRUN_RECONCILE_INTERVAL_SECONDS": "0.2",
            "IMPRUN_RECONCILE_RESYNC_SECONDS": "10",  # as tests/conftest.py sets for in-process ones
            "IMPRUN_LEASE_SECONDS": str(lease_seconds),
            "IMPRUN_LOG_JSON": "false",
            # The cluster's one ai-gateway and shared-runtime apps belong to no test control plane
            # (see tests/conftest.py), and its gateways are dedicated unless a test asks otherwise.
            "IMPRUN_AI_GATEWAY": "false",
            "IMPRUN_SHARED_RUNTIME": "false",
            "IMPRUN_DEFAULT_TIER": "dedicated",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(driver_env or {})
    if crash_at is not None:
        env["IMPRUN_FAULT_CRASH_AT"] = crash_at
    return env


def start_control_plane(
    services: RunningServices,
    ray_head: RunningRayHead | None,
    *,
    log_dir: Path,
    sys_db_name: str,
    lease_seconds: int = 5,
    crash_at: str | None = None,
    ready_timeout: float = 60.0,
    wait_path: str = "/readyz",
    driver_env: Mapping[str, str] | None = None,
) -> ControlPlaneProcess:
    """Launch a control plane and return once ``wait_path`` answers 200 (killing it on failure).

    ``wait_path="/healthz"`` starts one whose dependencies (say, Ray) are not reachable yet.
    """
    port = free_port()
    env = control_plane_environment(
        services,
        ray_head,
        port=port,
        sys_db_name=sys_db_name,
        lease_seconds=lease_seconds,
        crash_at=crash_at,
        driver_env=driver_env,
    )
    label = (crash_at or "clean").replace(":", "_")
    log_path = log_dir / f"control-plane-{label}-{uuid.uuid4().hex[:6]}.log"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "imprun.api.app:app_from_env",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log_dir,
            start_new_session=True,  # a Ctrl-C of the test run is not delivered to it twice
        )
    plane = ControlPlaneProcess(
        process=process, url=f"http://127.0.0.1:{port}", log_path=log_path, crash_at=crash_at
    )
    try:
        _wait_ready(plane, ready_timeout, wait_path)
    except BaseException:
        plane.stop(grace=5)
        raise
    return plane


def _wait_ready(plane: ControlPlaneProcess, timeout: float, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not plane.alive():
            raise AssertionError(
                f"control plane exited with {plane.process.returncode} while starting\n{plane.log_tail()}"
            )
        try:
            response = httpx.get(f"{plane.url}{path}", timeout=15.0)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(0.1)  # poll interval of the readiness deadline loop
    raise AssertionError(f"control plane not ready within {timeout:.0f} s ({last})\n{plane.log_tail()}")


@contextlib.contextmanager
def running_control_plane(
    services: RunningServices,
    ray_head: RunningRayHead,
    *,
    log_dir: Path,
    sys_db_name: str,
    lease_seconds: int = 5,
    crash_at: str | None = None,
) -> Iterator[ControlPlaneProcess]:
    """``start_control_plane`` that always stops the process on the way out."""
    plane = start_control_plane(
        services,
        ray_head,
        log_dir=log_dir,
        sys_db_name=sys_db_name,
        lease_seconds=lease_seconds,
        crash_at=crash_at,
    )
    try:
        yield plane
    finally:
        plane.stop()


def register_owner(client: httpx.Client) -> dict[str, str]:
    """Register a fresh user through ``client`` and return their ``Authorization`` header."""
    username = f"owner-{uuid.uuid4().hex[:8]}"
    credentials = {"username": username, "password": PASSWORD}
    registered = client.post("/v1/auth/register", json=credentials)
    assert registered.status_code in (200, 201), registered.text
    login = client.post("/v1/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def gateway_phase(client: httpx.Client, headers: dict[str, str], gw: str) -> str | None:
    """The gateway's phase as the API reports it; None once it is gone (404)."""
    response = client.get(f"/v1/api-gateways/{gw}", headers=headers)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    phase: str = response.json()["phase"]
    return phase


def wait_for_phase(
    plane: ControlPlaneProcess, headers: dict[str, str], gw: str, phase: str, *, timeout: float = 120
) -> None:
    """Poll ``plane``'s API until the gateway is in ``phase``; on timeout say what was seen last."""
    seen: list[object] = [None]

    def reached() -> bool:
        response = plane.client.get(f"/v1/api-gateways/{gw}", headers=headers)
        seen[0] = response.json() if response.status_code == 200 else response.status_code
        return isinstance(seen[0], dict) and seen[0]["phase"] == phase

    assert eventually(reached, timeout=timeout, interval=0.2), (
        f"gateway {gw} never reached {phase} within {timeout:.0f} s; last seen: {seen[0]}\n{plane.log_tail()}"
    )


def wait_gone(plane: ControlPlaneProcess, headers: dict[str, str], gw: str, *, timeout: float = 120) -> None:
    assert eventually(
        lambda: gateway_phase(plane.client, headers, gw) is None, timeout=timeout, interval=0.2
    ), f"gateway {gw} was never removed within {timeout:.0f} s\n{plane.log_tail()}"
