"""The running control plane as other commands see it: its pid file and its ``/readyz`` answer.

``imprun up`` records its own pid in ``<data_dir>/run/control-plane.pid``; ``imprun down`` signals
that pid (SIGTERM, then SIGKILL past the deadline) through the same ``ServiceProcess`` handle the
embedded services use, and ``imprun status`` reads it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import httpx

from imprun.embedded.process import ServiceProcess
from imprun.settings import Settings

CONTROL_PLANE = "control-plane"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    status_code: int | None  # None: nothing answered
    body: dict[str, Any] | None


def probe_readyz(settings: Settings, *, timeout: float = 2.0) -> Readiness:
    try:
        response = httpx.get(f"{settings.control_plane_url}/readyz", timeout=timeout)
    except httpx.HTTPError:
        return Readiness(False, None, None)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Readiness(
        response.status_code == 200, response.status_code, body if isinstance(body, dict) else None
    )


def control_plane_record(settings: Settings) -> ServiceProcess:
    """A handle on the control plane's pid file (it is never started through this handle)."""
    return ServiceProcess(
        name=CONTROL_PLANE,
        command=(),
        cmdline_marker="imprun",
        host=settings.host,
        port=settings.api_port,
        run_dir=settings.data_dir / "run",
        ready=lambda: probe_readyz(settings, timeout=0.5).ready,
    )


def control_plane_pid(record: ServiceProcess) -> int | None:
    """The recorded ``imprun up`` pid if that process still runs; a stale pid file is removed.

    Where ``/proc`` tells, the process must also look like imprun: after a reboot the recorded pid
    may belong to an unrelated process, which must never be signalled.
    """
    pid = record.recorded_pid()  # checks the process is alive and its command line names imprun
    if pid is not None:
        return pid
    with contextlib.suppress(FileNotFoundError):
        record.pid_file.unlink()
    return None


def record_own_pid(record: ServiceProcess) -> None:
    record.run_dir.mkdir(parents=True, exist_ok=True)
    record.pid_file.write_text(str(os.getpid()))


def forget_own_pid(record: ServiceProcess) -> None:
    """Remove the pid file if it still names this process (a newer ``up`` may have replaced it)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if int(record.pid_file.read_text().strip()) == os.getpid():
            record.pid_file.unlink()
