"""``EmbeddedIngressDriver`` over ``imprun.store.consumers`` against the real nx-27017 and Redis: the
exact documents the data plane reads, the generation bump after every write with its reload
announcement, deletes that never resurrect a dropped database — and the grant lease's revision check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain.environment import RateLimit
from imprun.domain.naming import gateway_db_name
from imprun.drivers.embedded_ingress import EmbeddedIngressDriver
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid
from imprun.store.applications import GrantRecord, GrantRepository, GrantStatus, StoredKey
from imprun.store.consumers import ENVIRONMENT_SETTINGS, IngressDocuments
from imprun.store.gateway_databases import GatewayDatabases
from imprun.store.mongo import Mongo, connect_mongo, ensure_system_indexes
from imprun.store.redis import Redis, connect_redis
from imprun.store.runtime_feed import RuntimeFeed
from runtime_actors.shared.names import CONSUMERS, RELOAD_CHANNEL
from tests.fixtures.polling import eventually
from tests.fixtures.services import RunningServices

HASH_1, HASH_2 = "1" * 64, "2" * 64


@dataclass
class Harness:
    mongo: Mongo
    redis: Redis
    feed: RuntimeFeed
    driver: EmbeddedIngressDriver
    gw: str

    def consumers(self) -> list[dict[str, object]]:
        return list(self.mongo[gateway_db_name(self.gw)][CONSUMERS].find())

    def messages(self, pubsub: object) -> list[str]:
        """This test's gateway's reload messages (the channel is the session's: other tests' gateways,
        still being deleted, publish on it too)."""
        out: list[str] = []
        while (message := pubsub.get_message(timeout=0.2)) is not None:  # type: ignore[attr-defined]
            if message["type"] == "message" and message["data"].startswith(f"{self.gw}/"):
                out.append(message["data"])
        return out


@pytest.fixture
def harness(services: RunningServices) -> Iterator[Harness]:
    assert services.settings.mongo_url is not None and services.settings.redis_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    redis = connect_redis(services.settings.redis_url)
    sys_db = mongo[f"imprun_sys_ingress_{uuid.uuid4().hex[:6]}"]
    feed = RuntimeFeed(sys_db, redis)
    gw = f"ei-{uuid.uuid4().hex[:8]}"
    GatewayDatabases(mongo).create(gw, "test")
    yield Harness(mongo, redis, feed, EmbeddedIngressDriver(IngressDocuments(mongo, feed)), gw)
    mongo.drop_database(gateway_db_name(gw))
    mongo.drop_database(sys_db.name)
    mongo.close()
    redis.close()


def credential(gw: str, lookup_hash: str = HASH_1, **changes: object) -> ConsumerCredential:
    values: dict[str, object] = {
        "credential_id": "cred_1",
        "grant_id": "grant_1",
        "application_id": "app_1",
        "gateway_id": gw,
        "environment": "dev",
        "lookup_hash": lookup_hash,
        "active": True,
        "rate_limit": None,
    }
    values.update(changes)
    return ConsumerCredential(**values)  # type: ignore[arg-type]


def test_a_consumer_is_published_exactly_as_the_data_plane_reads_it(harness: Harness) -> None:
    pubsub = harness.redis.pubsub()
    pubsub.subscribe(RELOAD_CHANNEL)
    assert eventually(lambda: pubsub.get_message(timeout=0.1) is not None, timeout=5)
    gw = harness.gw
    harness.driver.apply_consumer(credential(gw, rate_limit=RateLimit(count=10, window_seconds=60)))
    assert harness.consumers() == [
        {
            "_id": "cred_1",
            "credentialId": "cred_1",
            "grantId": "grant_1",
            "applicationId": "app_1",
            "environment": "dev",
            "lookupHash": HASH_1,
            "active": True,
            "rateLimit": {"count": 10, "windowSeconds": 60},
        }
    ]
    assert harness.feed.generation(gw, "dev") == 1
    # A new key for the same credential replaces the hash in one write: the old one is gone at once.
    harness.driver.apply_consumer(credential(gw, HASH_2))
    assert [(c["lookupHash"], c["rateLimit"]) for c in harness.consumers()] == [(HASH_2, None)]
    harness.driver.delete_consumer(gw, "dev", "cred_1")
    harness.driver.delete_consumer(gw, "dev", "cred_1")  # idempotent
    assert harness.consumers() == []
    # Every environment's replicas hold all the gateway's credentials (403 vs 401), so all three move.
    assert [harness.feed.generation(gw, env) for env in ("dev", "staging", "prod")] == [4, 4, 4]
    assert harness.messages(pubsub) == [f"{gw}/{env}" for env in ("dev", "staging", "prod")] * 4
    pubsub.close()


def test_environment_settings_are_published_per_environment(harness: Harness) -> None:
    gw = harness.gw
    route = EnvironmentRoute(gw, "staging", "none", RateLimit(count=5, window_seconds=1), "127.0.0.1", 8000)
    harness.driver.apply_environment(route)
    settings = harness.mongo[gateway_db_name(gw)][ENVIRONMENT_SETTINGS]
    assert list(settings.find()) == [
        {
            "_id": "staging",
            "environment": "staging",
            "authType": "none",
            "rateLimit": {"count": 5, "windowSeconds": 1},
        }
    ]
    harness.driver.apply_environment(EnvironmentRoute(gw, "staging", "key-auth", None, "127.0.0.1", 8000))
    assert settings.find_one({"_id": "staging"}) == {
        "_id": "staging",
        "environment": "staging",
        "authType": "key-auth",
        "rateLimit": None,
    }
    harness.driver.delete_environment(gw, "staging")
    assert settings.count_documents({}) == 0
    assert harness.feed.generation(gw, "staging") == 3
    with pytest.raises(Invalid, match="unknown auth type"):
        harness.driver.apply_environment(EnvironmentRoute(gw, "dev", "basic-auth", None, "h", 1))


def test_deletes_never_resurrect_a_dropped_gateway_database(harness: Harness) -> None:
    gone = f"gone-{uuid.uuid4().hex[:8]}"
    harness.driver.delete_consumer(gone, "dev", "cred_1")
    harness.driver.delete_environment(gone, "dev")
    assert gateway_db_name(gone) not in harness.mongo.list_database_names()
    assert harness.feed.generation(gone, "dev") == 0


def test_a_grant_changed_during_a_lease_is_released_for_immediate_reexamination(
    services: RunningServices,
) -> None:
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    sys_db = mongo[f"imprun_sys_lease_{uuid.uuid4().hex[:6]}"]
    try:
        ensure_system_indexes(sys_db)
        grants = GrantRepository(sys_db)
        now = datetime.now(UTC)
        record = GrantRecord(
            grant_id="grant_1",
            application_id="app_1",
            owner_id="u",
            gateway_id="gw",
            gateway_created_at=now,
            environment="dev",
            credential_id="cred_1",
            key=StoredKey("imp_dev_AbCd", HASH_1, 1, b"n" * 12, b"c" * 20),
            rate_limit=None,
            status=GrantStatus.ACTIVE,
            revision=1,
            created_at=now,
            key_issued_at=now,
        )
        grants.insert(record, conflict_message="taken")
        lease = timedelta(seconds=60)
        claimed = grants.claim(holder="a", now=now, lease=lease)
        assert claimed is not None and claimed.revision == 1
        assert grants.claim(holder="b", now=now, lease=lease) is None  # leased
        # Unchanged: released for the resync interval.
        grants.release("grant_1", holder="a", revision=1, lease=lease, now=now, after=10)
        assert grants.claim(holder="b", now=now, lease=lease) is None
        # Changed by the API while leased: released for immediate re-examination.
        claimed = grants.claim(holder="a", now=now + timedelta(seconds=11), lease=lease)
        assert claimed is not None
        assert grants.revoke("grant_1")
        grants.release("grant_1", holder="a", revision=claimed.revision, lease=lease, now=now, after=10)
        again = grants.claim(holder="b", now=now, lease=lease)
        assert again is not None and again.status is GrantStatus.REVOKED and again.revision == 2
        assert sys_db.application_grants.find_one({"_id": "grant_1"})["slot"] == "revoked/grant_1"  # type: ignore[index]
    finally:
        mongo.drop_database(sys_db.name)
        mongo.close()
