"""Per-gateway MongoDB users: skipped (with one log line) on nx-27017, which keeps no users; URLs."""

from __future__ import annotations

import logging

import pytest
from pymongo import MongoClient

from imprun.store.mongo_users import GatewayMongoUsers, gateway_user_name, user_url
from tests.fixtures.services import RunningServices


def test_a_server_without_users_is_detected_and_every_call_is_a_no_op(
    services: RunningServices, caplog: pytest.LogCaptureFixture
) -> None:
    url = services.settings.mongo_url
    assert url is not None
    client: MongoClient[dict[str, object]] = MongoClient(url)
    users = GatewayMongoUsers(client, url, "imprun_sys", lambda gw: f"pw-{gw}")
    with caplog.at_level(logging.INFO, logger="imprun.store.mongo_users"):
        assert users.ensure("orders-api") is False
        assert users.ensure("billing") is False
        users.drop("orders-api")
    assert [r.message for r in caplog.records].count(
        "MongoDB at this URL keeps no users: gateways share the platform's connection"
    ) == 1
    assert users.url_for("orders-api") == url  # the runtime keeps the shared connection
    client.close()


def test_user_urls_log_in_as_the_gateway_against_admin() -> None:
    assert gateway_user_name("orders-api") == "imprun-gw-orders-api"
    assert (
        user_url("mongodb://m1:27017,m2:27017/?replicaSet=rs0&authSource=other", "imprun-gw-a", "p/w@:")
        == "mongodb://imprun-gw-a:p%2Fw%40%3A@m1:27017,m2:27017/?replicaSet=rs0&authSource=admin"
    )
    assert user_url("mongodb://root:x@mongo", "u", "p") == "mongodb://u:p@mongo/?authSource=admin"
