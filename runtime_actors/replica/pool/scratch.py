"""Where a replica's workers get their scratch directories, and the sweep of those a dead replica left.

Every worker pool that makes its own scratch space takes one directory under a per-node parent
(``<tmp>/imprun-scratch``), named for the replica process that owns it: its pid and that process's
start time (``/proc/<pid>/stat``), so a reused pid does not look like the owner. A pool closing
removes its directory; a replica killed without closing cannot, so each new pool first removes every
sibling whose owner is gone. Each worker's files are further capped by ``RLIMIT_FSIZE`` in the jail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["claim_scratch", "default_scratch_parent", "sweep_orphans"]

_PREFIX = "pool-"


def default_scratch_parent() -> Path:
    return Path(tempfile.gettempdir()) / "imprun-scratch"


def _start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (after the parenthesised command name), None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _owner_alive(name: str) -> bool:
    pid, _, rest = name.removeprefix(_PREFIX).partition("-")
    started = rest.partition("-")[0]
    return pid.isdigit() and _start_time(int(pid)) == started


def sweep_orphans(parent: Path) -> list[Path]:
    """Remove the pool directories under ``parent`` whose replica process is gone; the removed ones."""
    removed = []
    for entry in parent.iterdir():
        if entry.name.startswith(_PREFIX) and not _owner_alive(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def claim_scratch(parent: Path | None = None) -> Path:
    """A new directory for this process's pool, after sweeping the orphans under ``parent``."""
    parent = parent or default_scratch_parent()
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep_orphans(parent)
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{pid}-{_start_time(pid)}-", dir=parent))
