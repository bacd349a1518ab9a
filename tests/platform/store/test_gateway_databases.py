"""Gateway databases: one listing of the server's databases answers ``exists`` for many gateways, and
a database the listing does not show is listed afresh before it is called missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

from imprun.domain.naming import gateway_db_name
from imprun.store.gateway_databases import GatewayDatabases
from tests.fixtures.services import RunningServices


class _Listings(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "listDatabases":
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def counted(services: RunningServices) -> Iterator[tuple[MongoClient[Any], _Listings]]:
    listings = _Listings()
    client: MongoClient[Any] = MongoClient(services.settings.mongo_url, event_listeners=[listings])
    yield client, listings
    client.close()


def test_one_listing_answers_for_every_existing_gateway(counted: tuple[MongoClient[Any], _Listings]) -> None:
    client, listings = counted
    databases = GatewayDatabases(client, listing_ttl_seconds=3600)
    gateways = [f"dbs-{uuid.uuid4().hex[:6]}" for _ in range(5)]
    for gw in gateways:
        databases.create(gw, "first")
    listings.count = 0

    assert all(databases.exists(gw) for gw in gateways * 10)
    assert listings.count == 1
    for gw in gateways:
        databases.drop(gw)
    assert not any(databases.exists(gw) for gw in gateways)  # its own drops: missing at once


def test_a_database_another_process_created_is_seen_at_once(
    counted: tuple[MongoClient[Any], _Listings],
) -> None:
    client, _ = counted
    databases = GatewayDatabases(client, listing_ttl_seconds=3600)
    gw = f"dbs-{uuid.uuid4().hex[:6]}"
    assert not databases.exists(gw)

    GatewayDatabases(client).create(gw, "elsewhere")  # another control plane

    assert databases.exists(gw) and databases.belongs_to(gw, "elsewhere")
    assert not databases.belongs_to(gw, "mine")
    client.drop_database(gateway_db_name(gw))
