"""Start, probe, reuse and stop one supervised child process (nx-27017, redis-server).

A ``ServiceProcess`` writes a pid file under the data dir so a later ``imprun down`` (another
process) can stop it, and so ``imprun up`` reuses an instance that is already answering on its port
instead of failing on a port collision. Readiness is a probe function polled with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imprun.errors import Unavailable

# The embedded databases listen here whatever IMPRUN_HOST says: they have no credentials, and exposing
# the API (IMPRUN_HOST=0.0.0.0) must not expose them.
LOOPBACK = "127.0.0.1"


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(probe: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``probe`` until it returns True or ``timeout`` seconds pass; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class ServiceProcess:
    """One embedded service: how to start it, how to tell it is ready, where its files are."""

    name: str
    command: Sequence[str]
    host: str
    port: int
    run_dir: Path
    ready: Callable[[], bool]
    install_hint: str = ""
    env: dict[str, str] | None = None
    make_dirs: tuple[Path, ...] = ()
    cmdline_marker: str = ""
    reused: bool = field(default=False, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        """The pid in our pid file, if that process is alive and still runs this service's program."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_alive(pid) and self._identity() in _cmdline(pid) else None

    def _identity(self) -> str:
        """What the service's command line contains (guards against a recycled pid)."""
        if self.cmdline_marker or not self.command:
            return self.cmdline_marker
        program = Path(self.command[0]).name
        return self.command[2] if program.startswith("python") and len(self.command) > 2 else program

    def start(self, *, timeout: float) -> None:
        """Start the service, or adopt the one already answering on its port."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if port_open(self.host, self.port):
            if wait_until(self.ready, timeout=timeout):
                self.reused = True
                return
            raise Unavailable(
                f"port {self.host}:{self.port} is taken by something that is not a working {self.name}; "
                f"stop it or choose another port (see the configuration table in the README)"
            )
        for directory in self.make_dirs:
            directory.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    list(self.command),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.run_dir,
                    env=self.env,
                    start_new_session=True,  # Ctrl-C reaches `imprun up`, which stops us in order
                )
        except FileNotFoundError as exc:
            raise Unavailable(self.install_hint or f"{self.name} is not installed ({exc})") from exc
        self.pid_file.write_text(str(self._proc.pid))

        def ready_or_dead() -> bool:
            return self._proc is not None and (self._proc.poll() is not None or self.ready())

        wait_until(ready_or_dead, timeout=timeout)
        if self._proc.poll() is not None:
            raise Unavailable(
                f"{self.name} exited at start (code {self._proc.returncode}); see {self.log_file}"
            )
        if not self.ready():
            self.stop()
            raise Unavailable(f"{self.name} did not become ready within {timeout:.0f}s; see {self.log_file}")

    def stop(self, *, timeout: float = 10.0) -> bool:
        """Stop the process we started (or the one our pid file names). True if something was stopped."""
        pid = self._proc.pid if self._proc is not None else self.recorded_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not _pid_alive(pid) or self._reaped(), timeout=timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _pid_alive(pid) or self._reaped(), timeout=timeout)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        self._proc = None
        return True

    def _reaped(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None
