"""``runtime_actors.replica.pool.scratch``: a dead replica's scratch space is removed by the next pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runtime_actors.replica.pool.scratch import claim_scratch, scratch_usage, sweep_orphans


def dead_replica_scratch(parent: Path) -> Path:
    """A pool directory claimed by a process that then died without removing it (SIGKILL)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from runtime_actors.replica.pool.scratch import claim_scratch; "
         f"d = claim_scratch(__import__('pathlib').Path({str(parent)!r})); (d / 'big.bin').write_bytes(b'x' * 4096); "
         "print(d, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert child.stdout is not None
    claimed = Path(child.stdout.readline().strip())
    child.kill()
    child.wait()
    child.stdout.close()
    return claimed


def test_the_next_pool_sweeps_what_a_killed_replica_left_and_keeps_the_living(tmp_path: Path) -> None:
    orphan = dead_replica_scratch(tmp_path)
    assert (orphan / "big.bin").exists()
    living = claim_scratch(tmp_path)

    mine = claim_scratch(tmp_path)

    assert not orphan.exists()
    assert living.exists() and mine.exists() and mine.name.startswith(f"pool-{os.getpid()}-")


def test_a_reused_pid_is_not_taken_for_the_owner(tmp_path: Path) -> None:
    impostor = tmp_path / f"pool-{os.getpid()}-1-abc"  # our pid, another start time
    impostor.mkdir()
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()

    assert sweep_orphans(tmp_path) == [impostor]
    assert unrelated.exists()


def test_usage_counts_bytes_and_files_and_stops_past_the_budget(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(os.urandom(256 * 1024))
    (tmp_path / "nested").mkdir()
    for index in range(100):
        (tmp_path / "nested" / f"empty-{index}").touch()
    used = scratch_usage(tmp_path, budget=10 * 1024 * 1024)
    assert 256 * 1024 + 100 * 4096 <= used < 2 * 1024 * 1024
    assert scratch_usage(tmp_path, budget=8192) <= 256 * 1024 + 3 * 4096  # stopped early
