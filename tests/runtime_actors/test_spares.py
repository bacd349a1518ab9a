"""``SpareWorkers``: real jailed workers spawned ahead and handed to pools (no Ray)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

from runtime_actors.replica.pool.spares import SpareWorkers, WorkerSpec
from runtime_actors.replica.pool.worker_pool import WorkerPool
from runtime_actors.shared.jail_config import WorkerLimits
from tests.runtime_actors.pool_harness import body_json, eventually, invocation, load_one

HELLO = "def main():\n    return {'hello': 'world'}\n"


def with_spares(count: int, scenario: Callable[[SpareWorkers], Awaitable[None]]) -> None:
    async def main() -> None:
        spares = SpareWorkers(count)
        spares.start()
        try:
            assert await eventually(lambda: spares.ready == count), "the spares were not spawned"
            await scenario(spares)
        finally:
            await spares.close()

    asyncio.run(main())


def gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_pool_starts_on_a_spare_which_is_replaced_in_the_background() -> None:
    async def scenario(spares: SpareWorkers) -> None:
        (spare,) = spares.pids
        pool = WorkerPool(1, spares=spares)
        await pool.start()
        try:
            assert pool.worker_pids == [spare]  # the pool's one worker: its calls run there
            await load_one(pool, "hello", HELLO)
            answer = body_json(await pool.invoke("hello", invocation("hello", method="GET"), timeout=10))
            assert answer == {"hello": "world"}
            assert await eventually(lambda: spares.ready == 1), "no new spare"
            assert spares.pids != [spare] and spares.taken == 1
        finally:
            await pool.close()
        assert await eventually(lambda: gone(spare)), "the pool did not stop the worker it took"

    with_spares(1, scenario)


def test_two_environments_never_share_a_worker() -> None:
    async def scenario(spares: SpareWorkers) -> None:
        first, second = WorkerPool(1, spares=spares), WorkerPool(1, spares=spares)
        await first.start()
        await second.start()  # the second spare may still be starting: then it spawns its own
        try:
            assert set(first.worker_pids).isdisjoint(second.worker_pids)
            assert spares.taken >= 1
        finally:
            await first.close()
            await second.close()

    with_spares(1, scenario)


def test_a_pool_of_another_kind_of_worker_spawns_its_own() -> None:
    async def scenario(spares: SpareWorkers) -> None:
        smaller = WorkerLimits(memory_bytes=256 * 1024 * 1024)
        assert spares.spec != WorkerSpec(smaller)
        pool = WorkerPool(1, smaller, spares=spares)
        await pool.start()
        try:
            assert pool.worker_pids != spares.pids and spares.taken == 0
        finally:
            await pool.close()

    with_spares(1, scenario)


def test_a_spare_that_died_is_never_handed_over() -> None:
    async def scenario(spares: SpareWorkers) -> None:
        (spare,) = spares.pids
        os.kill(spare, signal.SIGKILL)
        assert await eventually(lambda: gone(spare)), "the spare did not die"
        pool = WorkerPool(1, spares=spares)
        await pool.start()
        try:
            assert spare not in pool.worker_pids
            await load_one(pool, "hello", HELLO)
            assert (await pool.invoke("hello", invocation("hello", method="GET"), timeout=10)).status == 200
        finally:
            await pool.close()

    with_spares(1, scenario)


def test_closing_stops_the_spares_and_removes_their_files() -> None:
    async def main() -> None:
        spares = SpareWorkers(2)
        spares.start()
        assert await eventually(lambda: spares.ready == 2)
        pids = spares.pids
        root = spares.root
        assert root is not None and len(list(root.iterdir())) == 2
        await spares.close()
        assert all(gone(pid) for pid in pids)
        assert not root.exists()

    asyncio.run(main())
