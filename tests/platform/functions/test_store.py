"""``imprun.store.functions`` against the real nx-27017: publishing survives a Redis outage, and the
stored timestamps sort as text in time order."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from imprun.domain.functions import DraftChanges, FunctionDraft, PublishedVersion, revise
from imprun.store.functions import FunctionDrafts, PublishedFunctions
from imprun.store.mongo import Mongo, connect_mongo, iso, parse_time
from imprun.store.redis import connect_redis
from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import PART_FUNCTIONS
from tests.fixtures.services import RunningServices, free_port

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def mongo(services: RunningServices) -> Iterator[Mongo]:
    assert services.settings.mongo_url is not None
    client = connect_mongo(services.settings.mongo_url)
    yield client
    client.close()


def _published(environment: str = "dev") -> PublishedVersion:
    return PublishedVersion(
        name="hello",
        environment=environment,  # type: ignore[arg-type]
        code="def main(req):\n    return 1\n",
        version=1,
        methods=("GET",),
        timeout_seconds=5.0,
        input_schema={"type": "object", "additionalProperties": True},
        output_schema=None,
        description="",
        published_at=NOW,
        published_by="ann",
    )


def test_publish_survives_a_redis_outage(mongo: Mongo, caplog: pytest.LogCaptureFixture) -> None:
    gw = f"st-{uuid.uuid4().hex[:8]}"
    sys_db = mongo[f"imprun_sys_store_{uuid.uuid4().hex[:6]}"]
    dead_redis = connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    store = PublishedFunctions(mongo, sys_db, dead_redis)
    try:
        with caplog.at_level(logging.WARNING, logger="imprun.store.functions"):
            store.publish(gw, _published(), now=NOW)
            store.publish(gw, _published(), now=NOW)
        assert store.generation(gw, "dev") == 2
        assert any("replicas catch up by generation" in r.getMessage() for r in caplog.records)
        stored = store.get(gw, "dev", "hello")
        assert stored is not None and stored.code == _published().code and stored.published_at == NOW
        assert store.unpublish(gw, "hello", environments=("dev", "staging")) == ["dev"]
        assert store.generation(gw, "dev") == 3 and store.generation(gw, "staging") == 0
        assert store.get(gw, "dev", "hello") is None
    finally:
        dead_redis.close()
        mongo.drop_database(f"gatewayid_{gw}")
        mongo.drop_database(sys_db.name)


def test_timestamps_are_fixed_width_utc_text() -> None:
    whole = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert iso(whole) == "2025-05-01T12:00:00.000000+00:00"
    later = whole + timedelta(microseconds=1)
    elsewhere = whole.astimezone(timezone(timedelta(hours=2)))
    assert iso(whole) < iso(later) and iso(elsewhere) == iso(whole)
    assert parse_time(iso(later)) == later and parse_time("2025-05-01T12:00:00") == whole
    with pytest.raises(ValueError, match="naive"):
        iso(datetime(2025, 5, 1))


def test_a_stale_draft_version_does_not_overwrite(mongo: Mongo) -> None:
    sys_db = mongo[f"imprun_sys_store_{uuid.uuid4().hex[:6]}"]
    drafts = FunctionDrafts(sys_db)
    draft = FunctionDraft(
        gateway_id="gw-one",
        name="reports/daily",
        code="def main(req):\n    return 1\n",
        description="",
        methods=("GET",),
        timeout_seconds=10.0,
        version=1,
        input_schema={},
        output_schema=None,
        created_at=NOW,
        created_by="ann",
        updated_at=NOW,
        updated_by="ann",
    )
    try:
        drafts.insert(draft)
        first = revise(draft, DraftChanges(description="first"), schemas=None, at=NOW, by="ann")
        second = revise(draft, DraftChanges(description="second"), schemas=None, at=NOW, by="bob")
        assert drafts.replace_if_version(first, expected_version=1)
        assert not drafts.replace_if_version(second, expected_version=1)  # both claimed version 2
        assert drafts.get("gw-one", "reports/daily") == first
    finally:
        mongo.drop_database(sys_db.name)


def test_a_publish_whose_writer_died_before_the_bump_is_bumped_by_the_repair(mongo: Mongo) -> None:
    gw = f"st-{uuid.uuid4().hex[:8]}"
    sys_db = mongo[f"imprun_sys_store_{uuid.uuid4().hex[:6]}"]
    feed = RuntimeFeed(sys_db, connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2))
    feed.changing(gw, "dev", PART_FUNCTIONS, NOW)  # the writer announced, wrote, and died
    assert feed.generation(gw, "dev") == 0
    assert feed.repair_one(older_than=NOW - timedelta(seconds=1)) is None  # still within its grace
    assert feed.repair_one(older_than=NOW + timedelta(seconds=10)) == f"{gw}/dev"
    assert feed.generation(gw, "dev") == 1
    assert feed.repair_one(older_than=NOW + timedelta(seconds=10)) is None  # repaired once

    feed.changing(gw, "dev", PART_FUNCTIONS, NOW)  # a writer that finished leaves nothing to repair
    feed.changed(gw, "dev", PART_FUNCTIONS)
    assert feed.repair_one(older_than=NOW + timedelta(seconds=10)) is None
    assert feed.generation(gw, "dev") == 2
