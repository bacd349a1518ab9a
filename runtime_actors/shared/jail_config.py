"""What a jailed worker is started with (limits, file-system view) and what it reports back (``JailReport``).

The supervisor builds a ``JailConfig`` per worker and hands it over on the command line as JSON (the
worker's environment is empty by design); ``worker.main`` parses it back before applying the jail.
Plain frozen dataclasses of builtins, shared by both sides. ``read_only_paths`` is what the worker may
read once jailed; of this package only its own code and ``shared`` (``worker_code_paths``), never the
replica's or the hub's.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import zoneinfo
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "WORKER_PACKAGES",
    "JailConfig",
    "JailReport",
    "WorkerLimits",
    "read_only_paths",
    "worker_code_paths",
]

WORKER_PACKAGES: Final = ("shared", "worker")
"""The sub-packages of ``runtime_actors`` the worker imports (an import-linter contract keeps it so)."""

MiB = 1024 * 1024


@dataclass(frozen=True)
class WorkerLimits:
    """rlimits of one worker process (the per-call wall-clock timeout is the pool's watchdog)."""

    memory_bytes: int = 512 * MiB
    """RLIMIT_AS: address space; an allocation past it raises MemoryError inside tenant code."""
    cpu_seconds: int = 600
    """RLIMIT_CPU over the worker's whole life (SIGXCPU past it); the pool recycles a worker at 80 %."""
    file_size_bytes: int = 16 * MiB
    """RLIMIT_FSIZE: the largest file the worker may write in its scratch directory."""
    scratch_bytes: int = 64 * MiB
    """What its scratch directory may hold after a call; past it the pool replaces the worker (and
    removes its files) before it serves again."""
    open_files: int = 32
    """RLIMIT_NOFILE: the pipe, the event loop's descriptors, and a few spare."""
    processes: int = 0
    """RLIMIT_NPROC (not enforced by Linux for uid 0: there seccomp's fork/clone rules stop forks)."""


@dataclass(frozen=True)
class JailConfig:
    pipe_fd: int
    parent_pid: int
    scratch_dir: str
    read_only_paths: tuple[str, ...]
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    insecure: bool = False
    """Run tenant code even when Landlock or seccomp cannot be applied (local development only)."""
    min_landlock_abi: int = 1
    """Refuse to run (unless insecure) when the kernel's Landlock ABI is older than this."""
    run_as: int | None = None
    """The unprivileged uid (and gid) a worker started as root switches to before tenant code runs."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JailConfig:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            pipe_fd=int(raw["pipe_fd"]),
            parent_pid=int(raw["parent_pid"]),
            scratch_dir=str(raw["scratch_dir"]),
            read_only_paths=tuple(str(p) for p in raw["read_only_paths"]),
            limits=WorkerLimits(**raw.get("limits", {})),
            insecure=bool(raw.get("insecure", False)),
            min_landlock_abi=int(raw.get("min_landlock_abi", 1)),
            run_as=None if raw.get("run_as") is None else int(raw["run_as"]),
        )


UNPRIVILEGED_UID: Final = 65534
"""``nobody``: the uid (and gid) of workers a root replica starts. It owns no file of the platform, so
tenant code cannot signal, renice or ``ptrace`` the platform's processes even past the seccomp rules,
and ``RLIMIT_NPROC`` applies to it (root is exempt)."""


@dataclass(frozen=True)
class JailReport:
    landlock_abi: int
    """0 when Landlock was not applied."""
    seccomp: bool
    capabilities_dropped: bool
    insecure: bool
    failures: tuple[str, ...] = ()
    uid: int = -1
    """The uid tenant code runs as (-1: not reported)."""

    @property
    def secure(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JailReport:
        return cls(
            landlock_abi=int(raw.get("landlock_abi", 0)),
            seccomp=bool(raw.get("seccomp", False)),
            capabilities_dropped=bool(raw.get("capabilities_dropped", False)),
            insecure=bool(raw.get("insecure", False)),
            failures=tuple(str(f) for f in raw.get("failures", ())),
            uid=int(raw.get("uid", -1)),
        )


def read_only_paths() -> list[Path]:
    """What a jailed worker may read: the base interpreter's standard library (not a venv's
    site-packages), its own code (``worker_code_paths``) and the time-zone database."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    paths = {Path(sysconfig.get_paths(vars=base)[key]) for key in ("stdlib", "platstdlib")}
    paths.update(worker_code_paths())
    paths.update(Path(p) for p in zoneinfo.TZPATH)
    return sorted(paths)


def worker_code_paths() -> list[Path]:
    """The worker's read-only view of ``runtime_actors``: the package's ``__init__.py`` and
    ``WORKER_PACKAGES``."""
    package = Path(__file__).resolve().parent.parent
    return [package / "__init__.py", *(package / name for name in WORKER_PACKAGES)]
