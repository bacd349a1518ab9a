"""Measuring helpers shared by the benchmarks: percentiles, the load average, and the CPU time and
resident memory of the processes that make up one benchmark's platform, read from ``/proc``.

Which processes count: the services a benchmark started itself (their pids, and every descendant of
them), and every process carrying this benchmark's Ray head marker (``IMPRUN_RAY_HEAD_ID=<GCS port>``,
inherited by the head's GCS, raylet, dashboard, workers, Serve replicas and HAProxy) together with its
descendants (the replicas' jailed workers start with an empty environment, so they carry no marker).
Processes of other Ray heads on the machine carry another port in the marker and are never counted.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

T = TypeVar("T")

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE")
GIB: Final = 1024**3

# Groups a platform process is reported under.
RAY_SYSTEM: Final = "Ray + Serve system"
REPLICAS: Final = "replicas + jailed workers"
RELOAD_HUB: Final = "reload hub"


# --- statistics ----------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank ``pct`` percentile of ``samples`` (a value that occurred, never interpolated)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile {pct} is outside (0, 100]")
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class Summary:
    """Order statistics of one series of samples (in the samples' unit)."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        return cls(
            count=len(samples),
            p50=percentile(samples, 50),
            p90=percentile(samples, 90),
            p99=percentile(samples, 99),
            max=max(samples),
        )


def run_timed(run: Callable[[T], None], args: T) -> int:
    """``run(args)``, then how long it took; the exit status of a benchmark's ``main``."""
    started = time.monotonic()
    run(args)
    print(f"the run took {time.monotonic() - started:.0f} s")
    return 0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


# --- CPU time of process trees -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Process:
    pid: int
    ppid: int
    started: int  # clock ticks after boot: tells a process from a later one that reused its pid
    cpu_ticks: int  # user + system
    rss_pages: int


def _read_process(pid: int) -> _Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return None
    # Field 2 (comm) is in parentheses and may contain spaces; fields after it start at field 3 (state).
    rest = stat[stat.rindex(")") + 2 :].split()
    return _Process(
        pid=pid,
        ppid=int(rest[1]),
        started=int(rest[19]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        rss_pages=int(rest[21]),
    )


def _all_processes() -> Iterator[_Process]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            process = _read_process(int(entry.name))
            if process is not None:
                yield process


def _has_marker(pid: int, needle: bytes) -> bool:
    try:
        return needle in b"\0" + Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
    except OSError:  # gone, or another user's
        return False


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ray_group(pid: int) -> str:
    """A marker process's group, from the title Ray gives its workers (``ray::ServeReplica:…``)."""
    command = _command_line(pid)
    if command.startswith("ray::ServeReplica"):
        return REPLICAS
    if command.startswith("ray::ReloadHub"):
        return RELOAD_HUB
    return RAY_SYSTEM


def _pss_bytes(pid: int) -> int:
    """Proportional set size: resident memory with pages shared by n processes counted 1/n each."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return 1024 * int(line.split()[1])
    except (OSError, ValueError):  # gone, or another user's
        pass
    return 0


def machine_used_bytes() -> int:
    """The machine's used memory: ``MemTotal - MemAvailable`` from ``/proc/meminfo``."""
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = 1024 * int(value.split()[0])
    return fields["MemTotal"] - fields["MemAvailable"]


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks and resident memory of every platform process at one moment, keyed by (pid, start
    time)."""

    at: float
    ticks: Mapping[tuple[int, int], tuple[str, int]]
    rss: Mapping[tuple[int, int], int]  # bytes

    def rss_by_group(self) -> dict[str, int]:
        """Resident memory per group (pages shared between processes count in each of them)."""
        by_group: dict[str, int] = {}
        for key, (group, _) in self.ticks.items():
            by_group[group] = by_group.get(group, 0) + self.rss[key]
        return by_group

    def pss_bytes(self) -> int:
        """The platform's proportional set size: what it holds, shared pages counted once."""
        return sum(_pss_bytes(pid) for pid, _ in self.ticks)


@dataclass(frozen=True)
class CpuUsage:
    """CPU used by the platform between two snapshots, per group, as a share of one core."""

    seconds: float
    by_group: Mapping[str, float]  # CPU seconds
    processes: Mapping[str, int]  # processes alive at the end
    vanished: int  # processes that exited during the window (their CPU is not counted)
    end: CpuSnapshot  # the processes at the end of the window (their memory)

    @property
    def total_percent(self) -> float:
        return 100 * sum(self.by_group.values()) / self.seconds

    def percent(self, group: str) -> float:
        return 100 * self.by_group.get(group, 0.0) / self.seconds


@dataclass
class PlatformProcesses:
    """Finds this benchmark's platform processes: ``roots`` (pid → group) and the Ray head's marker."""

    roots: Mapping[int, str]
    ray_head_marker: bytes  # b"IMPRUN_RAY_HEAD_ID=<port>"
    _marker_memo: dict[tuple[int, int], bool] = field(default_factory=dict, repr=False)

    def snapshot(self, now: float) -> CpuSnapshot:
        table = {p.pid: p for p in _all_processes()}
        groups: dict[int, str | None] = {}

        def group_of(pid: int, depth: int = 0) -> str | None:
            if pid in groups:
                return groups[pid]
            process = table.get(pid)
            group: str | None = None
            if process is not None and depth < 64:
                group = self.roots.get(pid)
                if group is None:
                    parent = group_of(process.ppid, depth + 1) if process.ppid > 1 else None
                    if parent is not None and parent != RAY_SYSTEM:
                        group = parent  # a service's or a replica's child belongs with it
                    elif self._marked(process):
                        group = _ray_group(pid)  # raylet's children are workers: classify each
                    else:
                        group = parent
            groups[pid] = group
            return group

        ticks: dict[tuple[int, int], tuple[str, int]] = {}
        rss: dict[tuple[int, int], int] = {}
        for pid, process in table.items():
            group = group_of(pid)
            if group is not None:
                ticks[(pid, process.started)] = (group, process.cpu_ticks)
                rss[(pid, process.started)] = process.rss_pages * PAGE_SIZE
        return CpuSnapshot(at=now, ticks=ticks, rss=rss)

    def _marked(self, process: _Process) -> bool:
        key = (process.pid, process.started)
        if key not in self._marker_memo:
            self._marker_memo[key] = _has_marker(process.pid, b"\0" + self.ray_head_marker + b"\0")
        return self._marker_memo[key]


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    """CPU each group used from ``before`` to ``after``; a process born in between counts in full."""
    by_group: dict[str, float] = {}
    processes: dict[str, int] = {}
    for key, (group, ticks) in after.ticks.items():
        _, earlier = before.ticks.get(key, (group, 0))
        by_group[group] = by_group.get(group, 0.0) + (ticks - earlier) / CLOCK_TICKS
        processes[group] = processes.get(group, 0) + 1
    vanished = sum(1 for key in before.ticks if key not in after.ticks)
    return CpuUsage(
        seconds=after.at - before.at, by_group=by_group, processes=processes, vanished=vanished, end=after
    )


def measure_idle(processes: PlatformProcesses, *, settle: float, window: float, what: str) -> CpuUsage:
    """CPU of the platform over ``window`` seconds of no traffic, after ``settle`` seconds of quiet."""
    print(f"{what}: settling {settle:g} s, then measuring idle CPU for {window:g} s…", flush=True)
    time.sleep(settle)
    before = processes.snapshot(time.monotonic())
    time.sleep(window)
    return cpu_between(before, processes.snapshot(time.monotonic()))
