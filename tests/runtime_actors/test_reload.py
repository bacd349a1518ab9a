"""``runtime_actors.hub`` against the real nx-27017 and redis-server: the feed, the channel, snapshots."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from pymongo.collection import Collection

from runtime_actors.hub.feed import ReloadFeed
from runtime_actors.hub.reads import generation_of, load_generation, load_published_documents
from runtime_actors.hub.snapshots import EnvironmentSnapshots
from runtime_actors.hub.wakeups import ReloadChannelListener
from runtime_actors.shared.names import GENERATIONS, PUBLISHED_FUNCTIONS, RELOAD_CHANNEL
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices, service_settings, start_services

pytestmark = pytest.mark.services

Document = dict[str, Any]
SYS_DB = "imprun_sys_reload_tests"


class Recorder:
    """The feed's subscriber: every (key, generation) delivered, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, key: str, generation: int) -> None:
        with self._lock:
            self.seen.append((key, generation))

    def last(self, key: str) -> int | None:
        with self._lock:
            return next((g for k, g in reversed(self.seen) if k == key), None)


@pytest.fixture
def client(services: RunningServices) -> Iterator[MongoClient[Document]]:
    assert services.settings.mongo_url
    mongo: MongoClient[Document] = MongoClient(services.settings.mongo_url, serverSelectionTimeoutMS=5000)
    yield mongo
    mongo.close()


@pytest.fixture
def generations(client: MongoClient[Document]) -> Collection[Document]:
    return client[SYS_DB][GENERATIONS]


@pytest.fixture
def key() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}/dev"


@pytest.fixture
def start_feed() -> Iterator[Callable[..., ReloadFeed]]:
    feeds: list[ReloadFeed] = []

    def start(collection: Collection[Document], recorder: Recorder, **options: float) -> ReloadFeed:
        feed = ReloadFeed(collection, recorder, **options)
        feeds.append(feed)
        feed.start()
        return feed

    yield start
    for feed in feeds:
        feed.close()


def bump(collection: Collection[Document], key: str) -> int:
    updated = collection.find_one_and_update(
        {"_id": key}, {"$inc": {"generation": 1}}, upsert=True, return_document=True
    )
    assert updated is not None
    return int(updated["generation"])


def test_a_bump_of_a_watched_environment_is_delivered(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    recorder = Recorder()
    feed = start_feed(generations, recorder)
    other = f"rl-{uuid.uuid4().hex[:10]}/prod"

    assert feed.watch(key) == 0
    bump(generations, other)  # not watched: never delivered
    generation = bump(generations, key)

    assert eventually(lambda: recorder.last(key) == generation, timeout=5)
    assert recorder.last(other) is None
    assert feed.watched()[key] == generation


def test_watch_returns_the_current_generation(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    bump(generations, key)
    bump(generations, key)
    feed = start_feed(generations, Recorder())

    assert feed.watch(key) == 2


def test_a_wake_up_reads_the_key_at_once_without_waiting_for_the_stream(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    recorder = Recorder()
    # The stream is polled once a minute and anti-entropy never runs within the test: only wake() helps.
    feed = start_feed(generations, recorder, min_interval=60, max_interval=60, anti_entropy_interval=600)
    feed.watch(key)
    assert eventually(lambda: feed.stats.polls >= 1, timeout=5)  # the first poll happened

    generation = bump(generations, key)
    feed.wake(key)

    assert eventually(lambda: recorder.last(key) == generation, timeout=2)


def test_anti_entropy_delivers_a_change_the_stream_and_wake_ups_missed(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    recorder = Recorder()
    feed = start_feed(generations, recorder, min_interval=60, max_interval=60, anti_entropy_interval=0.3)
    feed.watch(key)
    assert eventually(lambda: feed.stats.polls >= 1, timeout=5)
    polls = feed.stats.polls

    generation = bump(generations, key)  # no wake-up, and the stream is not polled for a minute

    assert eventually(lambda: recorder.last(key) == generation, timeout=5)
    assert feed.stats.anti_entropy_fixes >= 1
    assert feed.stats.polls == polls


def test_an_idle_feed_polls_only_a_few_times_per_second(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    feed = start_feed(generations, Recorder())
    feed.watch(key)
    assert eventually(lambda: feed.stats.polls >= 8, timeout=5)  # backed off to the idle interval by now

    before, started = feed.stats.polls, time.monotonic()
    time.sleep(2.0)  # a measurement window, not a synchronisation
    rate = (feed.stats.polls - before) / (time.monotonic() - started)

    assert rate <= 6, f"an idle feed polled {rate:.1f} times per second"


def test_a_burst_of_publishes_ends_on_the_last_generation(
    generations: Collection[Document], key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    recorder = Recorder()
    feed = start_feed(generations, recorder)
    feed.watch(key)

    last = 0
    for _ in range(50):
        last = bump(generations, key)

    assert eventually(lambda: recorder.last(key) == last, timeout=5)
    delivered = [g for k, g in recorder.seen if k == key]
    assert delivered == sorted(delivered)  # never goes back


def test_the_feed_survives_a_database_restart_and_loses_nothing(
    tmp_path: Path, key: str, start_feed: Callable[..., ReloadFeed]
) -> None:
    own = start_services(service_settings(tmp_path))
    assert own.settings.mongo_url
    mongo: MongoClient[Document] = MongoClient(own.settings.mongo_url, serverSelectionTimeoutMS=500)
    try:
        collection = mongo[SYS_DB][GENERATIONS]
        other = key.replace("/dev", "/prod")
        recorder = Recorder()
        feed = start_feed(collection, recorder, anti_entropy_interval=600)  # resync alone must do it
        feed.watch(key)
        feed.watch(other)
        first = bump(collection, key)
        assert eventually(lambda: recorder.last(key) == first, timeout=5)

        own.mongo.stop()
        assert eventually(lambda: feed.stats.errors >= 1, timeout=15)
        own.mongo.start(timeout=60)
        generation = bump(collection, key)
        other_generation = bump(collection, other)

        assert eventually(lambda: recorder.last(key) == generation, timeout=20)
        assert eventually(lambda: recorder.last(other) == other_generation, timeout=5)
        assert feed.stats.resyncs >= 2
        after = bump(collection, key)  # and the stream works again after the reconnect
        assert eventually(lambda: recorder.last(key) == after, timeout=5)
    finally:
        mongo.close()
        own.redis.stop()
        own.mongo.stop()


def test_the_reload_channel_turns_messages_into_wake_ups(services: RunningServices, key: str) -> None:
    assert services.settings.redis_url
    url = services.settings.redis_url
    woken: list[str] = []
    listener = ReloadChannelListener(lambda: redis.Redis.from_url(url), woken.append, poll_timeout=0.2)
    listener.start()
    try:
        assert listener.connected.wait(10)
        publisher = redis.Redis.from_url(url)
        assert eventually(lambda: bool(publisher.publish(RELOAD_CHANNEL, key)) and key in woken, timeout=5)
        publisher.close()
    finally:
        listener.close()


def publish(client: MongoClient[Document], key: str, name: str, version: int) -> int:
    """What the functions API does: upsert the document, then bump the generation."""
    gateway_id, _, environment = key.partition("/")
    # (update_one with $set: nx-27017 0.8.1's replace_one upsert ignores the _id of the filter)
    client[f"gatewayid_{gateway_id}"][PUBLISHED_FUNCTIONS].update_one(
        {"_id": f"{environment}:{name}"},
        {
            "$set": {
                "name": name,
                "environment": environment,
                "code": "def main(req): ...",
                "version": version,
            }
        },
        upsert=True,
    )
    return bump(client[SYS_DB][GENERATIONS], key)


def test_snapshots_follow_publishes_and_long_polls_time_out(
    client: MongoClient[Document], generations: Collection[Document], key: str
) -> None:
    first = publish(client, key, "hello", 1)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        snapshots: EnvironmentSnapshots
        feed = ReloadFeed(generations, lambda k, g: snapshots.notify_threadsafe(k, g))
        snapshots = EnvironmentSnapshots(loop, feed.watch, lambda k: load_published_documents(client, k))
        feed.start()
        try:
            initial = await snapshots.snapshot(key)
            assert initial.generation == first
            assert [d["version"] for d in initial.documents] == [1]
            assert "_id" not in initial.documents[0]

            assert await snapshots.wait_changed(key, first, timeout_s=0.3) is None
            waiting = asyncio.create_task(snapshots.wait_changed(key, first, timeout_s=10))
            second = await asyncio.to_thread(publish, client, key, "hello", 2)
            changed = await waiting
            assert changed is not None and changed.generation == second
            assert [d["version"] for d in changed.documents] == [2]

            stale = await snapshots.wait_changed(key, first, timeout_s=10)  # behind: answered at once
            assert stale is not None and stale.generation == second
        finally:
            await asyncio.to_thread(feed.close)

    asyncio.run(scenario())


def test_a_first_snapshot_is_no_older_than_the_counter_even_before_the_feed_sees_it(
    client: MongoClient[Document], key: str
) -> None:
    """A shared replica loading an evicted environment right after a publish: the hub still holds the
    old snapshot and its feed may not have seen the bump yet (here: there is no feed at all)."""
    first = publish(client, key, "hello", 1)

    async def scenario() -> None:
        snapshots = EnvironmentSnapshots(
            asyncio.get_running_loop(),
            lambda k: generation_of(client[SYS_DB][GENERATIONS].find_one({"_id": k})),
            lambda k: load_published_documents(client, k),
            load_generation=lambda k: load_generation(client, SYS_DB, k),
        )
        assert (await snapshots.snapshot(key)).generation == first
        second = await asyncio.to_thread(publish, client, key, "hello", 2)
        stale = await snapshots.snapshot(key)  # what a long poll gets until the feed announces it
        assert stale.generation == first
        current = await snapshots.snapshot(key, fresh=True)
        assert current.generation == second
        assert [d["version"] for d in current.documents] == [2]

    asyncio.run(scenario())


def test_a_reload_reads_only_the_parts_that_changed(
    services: RunningServices, client: MongoClient[Document], key: str
) -> None:
    """Bumps that name their part (``RuntimeFeed.changed``) re-read only that part; a bump that names
    none (an older writer) makes the counters untrustworthy and the next read full."""
    from imprun.store.redis import connect_redis
    from imprun.store.runtime_feed import RuntimeFeed
    from runtime_actors.hub.reads import load_runtime_parts
    from runtime_actors.shared.names import PART_ACCESS, PART_FUNCTIONS, PART_VARIABLES

    sys_db = services.settings.sys_db_name
    feed = RuntimeFeed(client[sys_db], connect_redis(str(services.settings.redis_url)))
    gateway_id, _, environment = key.partition("/")
    reads: list[str] = []

    def loader(part: str) -> Callable[[str], Any]:
        def load(_key: str) -> Any:
            reads.append(part)
            return {"consumers": [], "environment": None} if part == PART_ACCESS else []

        return load

    snapshots = EnvironmentSnapshots(
        asyncio.new_event_loop(),
        lambda _key: 0,
        loader(PART_FUNCTIONS),
        loader(PART_ACCESS),
        loader(PART_VARIABLES),
        lambda k: load_runtime_parts(client, sys_db, k),
    )
    feed.changed(gateway_id, environment, PART_FUNCTIONS)
    first = snapshots._read(key, 1, None)
    assert sorted(reads) == [PART_ACCESS, PART_FUNCTIONS, PART_VARIABLES], "the first read is full"

    for part in (PART_VARIABLES, PART_ACCESS, PART_FUNCTIONS):
        reads.clear()
        feed.changed(gateway_id, environment, part)
        first = snapshots._read(key, first.generation + 1, first)
        assert reads == [part]

    reads.clear()
    client[sys_db][GENERATIONS].update_one({"_id": key}, {"$inc": {"generation": 1}})  # names no part
    assert load_runtime_parts(client, sys_db, key) is None
    snapshots._read(key, first.generation + 1, first)
    assert sorted(reads) == [PART_ACCESS, PART_FUNCTIONS, PART_VARIABLES]
