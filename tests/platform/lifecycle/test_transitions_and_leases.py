"""A lost lease fences every later write of the reconciler that held it.

On the real nx-27017: a claim's ``Lease`` carries an epoch, and a reconciler that outlived its lease
(another took the resource over, or it re-claimed since) can neither move the phase nor write
conditions; a transition under a held lease writes the phase and its event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from imprun.domain.gateway import Gateway
from imprun.domain.phases import Phase
from imprun.errors import Conflict
from imprun.lifecycle.transitions import transition
from imprun.store.events import EventLog
from imprun.store.lifecycle import GatewayRepository
from imprun.store.mongo import Mongo, connect_mongo
from tests.fixtures.services import RunningServices

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture
def sys_db(services: RunningServices) -> Iterator[tuple[Mongo, str]]:
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    name = f"imprun_sys_leases_{uuid.uuid4().hex[:6]}"
    yield mongo, name
    mongo.drop_database(name)
    mongo.close()


def _gateway(repo: GatewayRepository) -> Gateway:
    gateway = Gateway.new(gateway_id=f"gw-{uuid.uuid4().hex[:6]}", name="g", owner_id="u1", now=NOW)
    return repo.insert(gateway, conflict_message="taken")


def test_a_transition_writes_the_phase_and_its_event(sys_db: tuple[Mongo, str]) -> None:
    mongo, name = sys_db
    repo, events = GatewayRepository(mongo[name]), EventLog(mongo[name])
    gateway = _gateway(repo)
    transition(repo, gateway, Phase.CREATED, actor="t", now=NOW)
    stored = repo.get(gateway.gateway_id)
    assert stored is not None and stored.phase is Phase.CREATED
    assert [(e.reason, e.to_phase) for e in events.of_gateway(gateway.gateway_id)] == [
        ("Transition", "Created")
    ]
    stored_doc = mongo[name].api_gateways.find_one({"_id": gateway.gateway_id})
    assert stored_doc is not None and stored_doc["pendingEvents"] == {}, "the event left the resource"


def test_a_transition_whose_writer_died_before_the_log_is_logged_at_the_next_claim(
    sys_db: tuple[Mongo, str],
) -> None:
    """The phase and its event are one document write: a writer killed before copying the event to
    the log leaves it pending on the resource, and whoever claims the resource next copies it."""
    mongo, name = sys_db
    repo, events = GatewayRepository(mongo[name]), EventLog(mongo[name])
    gateway = _gateway(repo)
    transition(repo, gateway, Phase.CREATED, actor="t", now=NOW)
    [logged] = mongo[name].events.find({"gatewayId": gateway.gateway_id})
    mongo[name].events.delete_many({"gatewayId": gateway.gateway_id})  # the copy that never happened
    pending = {f"pendingEvents.{logged['_id']}": logged}
    mongo[name].api_gateways.update_one({"_id": gateway.gateway_id}, {"$set": pending})
    assert events.of_gateway(gateway.gateway_id) == []

    assert repo.claim_lease(holder="b", now=NOW, lease=LEASE) is not None
    assert [(e.id, e.to_phase) for e in events.of_gateway(gateway.gateway_id)] == [(logged["_id"], "Created")]
    assert mongo[name].api_gateways.find_one({"_id": gateway.gateway_id})["pendingEvents"] == {}
    assert repo.claim_lease(holder="c", now=NOW + LEASE * 2, lease=LEASE) is not None
    assert len(events.of_gateway(gateway.gateway_id)) == 1, "copied once"


def test_a_reconciler_that_outlived_its_lease_cannot_write(sys_db: tuple[Mongo, str]) -> None:
    mongo, name = sys_db
    repo, events = GatewayRepository(mongo[name]), EventLog(mongo[name])
    gateway = _gateway(repo)
    claimed_a = repo.claim_lease(holder="a", now=NOW, lease=LEASE)
    assert claimed_a is not None
    _, stale = claimed_a
    later = NOW + LEASE + timedelta(seconds=1)  # a paused past its lease; b takes over
    claimed_b = repo.claim_lease(holder="b", now=later, lease=LEASE)
    assert claimed_b is not None
    _, current = claimed_b
    assert current.epoch == stale.epoch + 1

    with pytest.raises(Conflict):
        transition(repo, gateway, Phase.CREATED, actor="a", now=later, lease=stale)
    assert not repo.update(gateway.gateway_id, {"conditions": []}, lease=stale)
    stored = repo.get(gateway.gateway_id)
    assert stored is not None and stored.phase is Phase.CREATING
    assert events.of_gateway(gateway.gateway_id) == []

    transition(repo, gateway, Phase.CREATED, actor="b", now=later, lease=current)
    assert repo.update(gateway.gateway_id, {"conditions": []}, lease=current)


def test_a_holder_that_claims_again_cannot_write_with_its_earlier_lease(sys_db: tuple[Mongo, str]) -> None:
    mongo, name = sys_db
    repo = GatewayRepository(mongo[name])
    gateway = _gateway(repo)
    first = repo.claim_lease(holder="a", now=NOW, lease=LEASE)
    assert first is not None
    repo.release(gateway.gateway_id, holder="a", lease=LEASE, now=NOW)
    second = repo.claim_lease(holder="a", now=NOW, lease=LEASE)
    assert second is not None
    with pytest.raises(Conflict):
        transition(repo, gateway, Phase.CREATED, actor="a", now=NOW, lease=first[1])
    transition(repo, gateway, Phase.CREATED, actor="a", now=NOW, lease=second[1])
