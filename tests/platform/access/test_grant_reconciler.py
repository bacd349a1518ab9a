"""``GrantReconciler`` against the real nx-27017: an ``Invalid`` from the ingress is a permanent failure.

The ingress here is a stand-in that refuses every credential as invalid (the I/O seam, not the thing
under test); the grant, its gateway, its application, the lease and the events are the real store.
A refused credential fails the grant at once (event and ``Failed`` condition
``StepFailedPermanently``) and is not handed to the ingress again — until the API gives the grant a
new key, which clears the condition and lets the reconciler try once more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from imprun.api.routes.applications import grant_public
from imprun.domain.access import StoredKey
from imprun.domain.conditions import PERMANENT_FAILURE, ConditionType, find_condition
from imprun.domain.gateway import Gateway
from imprun.domain.phases import Phase
from imprun.drivers.ingress import ConsumerCredential, EnvironmentRoute
from imprun.errors import Invalid
from imprun.lifecycle.grants import GrantReconciler
from imprun.lifecycle.reconciler import ReconcileTiming
from imprun.observability.metrics import Metrics
from imprun.security.api_keys import KeyVault
from imprun.store.applications import ApplicationRecord, ApplicationRepository, GrantRepository
from imprun.store.events import EventLog
from imprun.store.lifecycle import GatewayRepository
from imprun.store.mongo import connect_mongo, ensure_system_indexes
from tests.fixtures.services import RunningServices
from tests.platform.domain.test_decide_access import BASE, NOW

LEASE = timedelta(seconds=60)


@dataclass
class RefusingIngress:
    """Refuses every consumer as invalid; remembers what it was asked to apply."""

    needs_plaintext_keys: bool = False
    applied: list[ConsumerCredential] = field(default_factory=list)

    def apply_environment(self, route: EnvironmentRoute) -> None:
        raise AssertionError("the grant reconciler never writes environments")

    def delete_environment(self, gateway_id: str, environment: str) -> None:
        raise AssertionError("the grant reconciler never writes environments")

    def apply_consumer(self, credential: ConsumerCredential) -> None:
        self.applied.append(credential)
        raise Invalid(f"the ingress refuses credential {credential.credential_id}")

    def delete_consumer(self, gateway_id: str, environment: str, credential_id: str) -> None:
        pass


@dataclass
class Harness:
    grants: GrantRepository
    events: EventLog
    ingress: RefusingIngress
    reconciler: GrantReconciler
    clock: list[datetime]


@pytest.fixture
def harness(services: RunningServices) -> Iterator[Harness]:
    assert services.settings.mongo_url is not None
    mongo = connect_mongo(services.settings.mongo_url)
    sys_db = mongo[f"imprun_sys_grants_{uuid.uuid4().hex[:6]}"]
    ensure_system_indexes(sys_db)
    gateway = Gateway.new(gateway_id=BASE.gateway_id, name="g", owner_id="u1", now=NOW)
    GatewayRepository(sys_db).insert(gateway.moved_to(Phase.CREATED, NOW), conflict_message="taken")
    applications = ApplicationRepository(sys_db)
    applications.insert(ApplicationRecord("app_1", "u1", "a", "", None, NOW, NOW))
    grants = GrantRepository(sys_db)
    grants.insert(BASE, conflict_message="taken")
    events = EventLog(sys_db)
    ingress = RefusingIngress()
    clock = [NOW]
    vault = KeyVault(pepper=b"p" * 32, encryption_keys={1: b"k" * 32}, current_version=1)
    reconciler = GrantReconciler(
        grants,
        applications,
        GatewayRepository(sys_db),
        ingress,
        vault,
        events=events,
        metrics=Metrics(),
        holder="test",
        timing=ReconcileTiming(lease=LEASE, settled_resync=60.0),  # the clock below moves 2 min a step
        clock=lambda: clock[0],
    )
    yield Harness(grants, events, ingress, reconciler, clock)
    mongo.drop_database(sys_db.name)
    mongo.close()


def test_an_invalid_from_the_ingress_fails_the_grant_at_once_and_is_not_retried(harness: Harness) -> None:
    assert harness.reconciler.reconcile_one()
    assert len(harness.ingress.applied) == 1

    grant = harness.grants.get("grant_1")
    assert grant is not None and grant.applied is None
    failed = find_condition(grant.conditions, ConditionType.FAILED)
    assert failed is not None and failed.status and failed.reason == PERMANENT_FAILURE
    assert "refuses credential cred_1" in failed.message
    shown = grant_public(grant).model_dump(mode="json")  # what GET /v1/applications/{app}/grants answers
    assert not shown["applied"]
    assert [(c["type"], c["reason"]) for c in shown["conditions"]] == [("Failed", PERMANENT_FAILURE)]
    reasons = [e.reason for e in harness.events.of_gateway(BASE.gateway_id) if e.resource == "grant_1"]
    assert PERMANENT_FAILURE in reasons

    # Past every back-off and the lease: the grant is looked at again, but not handed over again.
    for minute in range(1, 6):
        harness.clock[0] = NOW + timedelta(minutes=minute * 2)
        assert harness.reconciler.reconcile_one()
    assert len(harness.ingress.applied) == 1

    # A new key (the API's change) clears the failure and the reconciler tries again.
    rekeyed = StoredKey("imp_dev_EfGh", "2" * 64, 1, b"n" * 12, b"c" * 20)
    assert harness.grants.rekey("grant_1", rekeyed, expected_revision=1, at=harness.clock[0])
    cleared = harness.grants.get("grant_1")
    assert cleared is not None and cleared.conditions == ()
    harness.clock[0] += timedelta(minutes=2)
    assert harness.reconciler.reconcile_one()
    assert [c.lookup_hash for c in harness.ingress.applied] == [BASE.key.lookup_hash, "2" * 64]
