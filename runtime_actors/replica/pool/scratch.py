"""Where a replica's workers get their scratch directories, and the sweep of those a dead replica left.

Every worker pool that makes its own scratch space takes one directory under a per-node parent
(``<tmp>/imprun-scratch``), named for the replica process that owns it: its pid and that process's
start time (``/proc/<pid>/stat``), so a reused pid does not look like the owner. A pool closing
removes its directory; a replica killed without closing cannot, so each new pool first removes every
sibling whose owner is gone. Each worker's files are capped by ``RLIMIT_FSIZE`` in the jail, and
``scratch_usage`` measures a worker's directory after each call, for its budget
(``WorkerLimits.scratch_bytes``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["claim_scratch", "default_scratch_parent", "scratch_usage", "sweep_orphans"]

_PREFIX = "pool-"
_ENTRY_COST = 4096
"""What each file or directory counts for at least, so that many empty files reach the budget too."""


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


def scratch_usage(directory: Path, budget: int) -> int:
    """Bytes on disk under ``directory``; the walk stops once past ``budget`` (a tenant's many files
    cost the walk no more than the budget allows)."""
    used = 0
    pending = [directory]
    while pending and used <= budget:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    used += max(entry.stat(follow_symlinks=False).st_blocks * 512, _ENTRY_COST)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    if used > budget:
                        break
        except OSError:  # removed while walking: what was counted stands
            continue
    return used
