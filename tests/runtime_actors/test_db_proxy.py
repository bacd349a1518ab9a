"""``runtime_actors.replica.callbacks.db_proxy`` against the real nx-27017: what tenant code may and may not do with imp.db()."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient, monitoring

from runtime_actors.replica.callbacks.db_proxy import DbProxy, to_json_able
from runtime_actors.shared.names import gateway_database_name
from tests.fixtures.services import RunningServices

pytestmark = pytest.mark.services

Document = dict[str, Any]


@pytest.fixture
def gateway_id() -> str:
    return f"dbp-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mongo(services: RunningServices) -> Iterator[MongoClient[Document]]:
    assert services.settings.mongo_url
    client: MongoClient[Document] = MongoClient(services.settings.mongo_url)
    yield client
    client.close()


@pytest.fixture
def proxy(services: RunningServices, gateway_id: str) -> Iterator[DbProxy]:
    assert services.settings.mongo_url
    db_proxy = DbProxy.for_gateway(services.settings.mongo_url, gateway_id, max_documents=20)
    yield db_proxy
    db_proxy.close()


def call(proxy: DbProxy, collection: str, method: str, *args: Any, **kwargs: Any) -> Any:
    reply = proxy.execute({"collection": collection, "method": method, "args": list(args), "kwargs": kwargs})
    assert "error" not in reply, reply
    return reply["result"]


def refused(proxy: DbProxy, collection: str, method: str, *args: Any, **kwargs: Any) -> dict[str, str]:
    reply = proxy.execute({"collection": collection, "method": method, "args": list(args), "kwargs": kwargs})
    assert "result" not in reply, reply
    error: dict[str, str] = reply["error"]
    assert set(error) == {"code", "message"} and error["message"]
    return error


def test_crud_round_trip_with_string_ids(proxy: DbProxy) -> None:
    inserted = call(proxy, "users", "insert_one", {"name": "ada", "age": 36})
    user_id = inserted["insertedId"]
    assert isinstance(user_id, str)

    assert call(proxy, "users", "find_one", {"_id": user_id}) == {"_id": user_id, "name": "ada", "age": 36}
    many = call(proxy, "users", "insert_many", [{"name": "bob", "age": 20}, {"name": "cy", "age": 50}])
    assert len(many["insertedIds"]) == 2
    assert call(proxy, "users", "count_documents", {}) == 3
    names = [u["name"] for u in call(proxy, "users", "find", {"age": {"$gte": 30}}, sort=[["age", -1]])]
    assert names == ["cy", "ada"]

    updated = call(proxy, "users", "update_one", {"name": "bob"}, {"$inc": {"age": 1}})
    assert updated == {"matchedCount": 1, "modifiedCount": 1, "upsertedId": None}
    upserted = call(proxy, "users", "update_one", {"name": "dee"}, {"$set": {"age": 9}}, upsert=True)
    assert isinstance(upserted["upsertedId"], str)
    assert call(proxy, "users", "find_one", {"_id": upserted["upsertedId"]})["name"] == "dee"
    assert call(proxy, "users", "update_many", {}, {"$set": {"seen": True}})["matchedCount"] == 4
    assert call(proxy, "users", "delete_one", {"name": "ada"}) == {"deletedCount": 1}
    assert call(proxy, "users", "delete_many", {"seen": True}) == {"deletedCount": 3}


def test_aggregate_and_lookup_within_the_gateway_database(proxy: DbProxy) -> None:
    call(proxy, "orders", "insert_many", [{"user": "u1", "total": 5}, {"user": "u1", "total": 7}])
    call(proxy, "people", "insert_one", {"_id": "u1", "name": "ada"})

    totals = call(proxy, "orders", "aggregate", [{"$group": {"_id": "$user", "sum": {"$sum": "$total"}}}])
    assert totals == [{"_id": "u1", "sum": 12}]
    joined = call(
        proxy,
        "people",
        "aggregate",
        [{"$lookup": {"from": "orders", "localField": "_id", "foreignField": "user", "as": "orders"}}],
    )
    orders = joined[0]["orders"]
    if isinstance(orders, str):  # nx-27017 0.8.1 returns the joined array as a JSON string
        orders = json.loads(orders)
    assert sorted(order["total"] for order in orders) == [5, 7]


def test_operations_reach_only_the_gateway_database(
    proxy: DbProxy, mongo: MongoClient[Document], gateway_id: str
) -> None:
    call(proxy, "notes", "insert_one", {"text": "mine"})

    assert mongo[gateway_database_name(gateway_id)]["notes"].count_documents({}) == 1
    other = DbProxy(lambda: mongo[gateway_database_name(gateway_id + "-other")])
    assert call(other, "notes", "count_documents", {}) == 0


@pytest.mark.parametrize(
    "collection", ["__published_functions", "__consumers", "system.users", "system.js", "a$b", "", "x" * 200]
)
def test_platform_and_bad_collection_names_are_refused(proxy: DbProxy, collection: str) -> None:
    assert refused(proxy, collection, "find_one", {})["code"] in {"forbidden", "invalid"}


def test_published_functions_are_not_readable_even_when_present(
    proxy: DbProxy, mongo: MongoClient[Document], gateway_id: str
) -> None:
    mongo[gateway_database_name(gateway_id)]["__published_functions"].insert_one({"name": "secret"})
    assert refused(proxy, "__published_functions", "find", {})["code"] == "forbidden"
    lookup = {"$lookup": {"from": "__published_functions", "pipeline": [], "as": "x"}}
    assert refused(proxy, "notes", "aggregate", [lookup])["code"] == "forbidden"


@pytest.mark.parametrize(
    "method", ["drop", "rename", "create_index", "find_one_and_update", "watch", "__class__"]
)
def test_methods_off_the_allow_list_are_refused(proxy: DbProxy, method: str) -> None:
    assert refused(proxy, "notes", method)["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("find", [{"$where": "this.a == 1"}]),
        ("find", [{"a": {"$elemMatch": {"$where": "1"}}}]),
        ("find", [{"$expr": {"$function": {"body": "function() {return true}", "args": [], "lang": "js"}}}]),
        ("count_documents", [{"$and": [{"x": 1}, {"$where": "sleep(1000)"}]}]),
        ("update_one", [{}, [{"$set": {"x": {"$function": {"body": "f", "args": [], "lang": "js"}}}}]]),
        ("aggregate", [[{"$group": {"_id": 1, "x": {"$accumulator": {"init": "f"}}}}]]),
        ("aggregate", [[{"$facet": {"a": [{"$match": {"$where": "1"}}]}}]]),
    ],
)
def test_server_side_javascript_is_refused_anywhere(proxy: DbProxy, method: str, args: list[Any]) -> None:
    assert refused(proxy, "notes", method, *args)["code"] == "forbidden"


@pytest.mark.parametrize(
    "stage",
    [
        {"$out": "elsewhere"},
        {"$merge": {"into": "elsewhere"}},
        {"$currentOp": {}},
        {"$collStats": {"count": {}}},
        {"$indexStats": {}},
        {"$lookup": {"from": {"db": "imprun_sys", "coll": "users"}, "as": "x", "pipeline": []}},
        {"$lookup": {"from": "system.users", "as": "x", "localField": "a", "foreignField": "b"}},
        {"$unionWith": "__consumers"},
        {"$unionWith": {"coll": "ok", "pipeline": [{"$out": "x"}]}},
        {"$graphLookup": {"from": "__consumers", "startWith": "$a", "connectFromField": "a",
                          "connectToField": "b", "as": "x"}},
        {"$facet": {"inner": [{"$lookup": {"from": "__published_functions", "as": "x", "pipeline": []}}]}},
    ],
)  # fmt: skip
def test_stages_reaching_other_databases_or_platform_collections_are_refused(
    proxy: DbProxy, stage: dict[str, Any]
) -> None:
    assert refused(proxy, "notes", "aggregate", [stage])["code"] == "forbidden"


def test_unknown_options_and_malformed_calls_are_invalid(proxy: DbProxy) -> None:
    assert refused(proxy, "notes", "find", {}, comment="x")["code"] == "invalid"
    assert refused(proxy, "notes", "find", {}, None, {"x": 1})["code"] == "invalid"  # too many positionals
    assert refused(proxy, "notes", "insert_one", "not a document")["code"] == "invalid"
    assert refused(proxy, "notes", "update_one", {}, {"x": 1})["code"] == "invalid"  # replacement, not $ops
    assert refused(proxy, "notes", "aggregate", {"$match": {}})["code"] == "invalid"


def test_results_are_bounded_and_never_silently_truncated(proxy: DbProxy) -> None:
    call(proxy, "many", "insert_many", [{"i": i} for i in range(20)])
    assert len(call(proxy, "many", "find", {})) == 20
    call(proxy, "many", "insert_one", {"i": 20})

    assert refused(proxy, "many", "find", {})["code"] == "too_large"
    assert refused(proxy, "many", "aggregate", [{"$match": {}}])["code"] == "too_large"
    assert len(call(proxy, "many", "find", {}, limit=5)) == 5
    assert refused(proxy, "many", "find", {}, limit=21)["code"] == "too_large"
    assert refused(proxy, "many", "insert_many", [{"i": i} for i in range(21)])["code"] == "too_large"

    small = DbProxy(proxy._database_factory, max_result_bytes=200)
    assert refused(small, "many", "find", {})["code"] == "too_large"


def test_duplicate_keys_are_conflicts(proxy: DbProxy) -> None:
    call(proxy, "uniq_items", "insert_one", {"_id": "same"})
    assert refused(proxy, "uniq_items", "insert_one", {"_id": "same"})["code"] == "conflict"


def test_values_become_json_able() -> None:
    oid = ObjectId()
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    converted = to_json_able(
        {"_id": oid, "at": moment, "aware": moment.replace(tzinfo=dt.UTC), "raw": b"\x00\x01", "n": [1, 2.5]}
    )
    assert converted == {
        "_id": str(oid),
        "at": "2026-01-02T03:04:05.678Z",
        "aware": "2026-01-02T03:04:05.678Z",
        "raw": "AAE=",
        "n": [1, 2.5],
    }


def test_an_unreachable_database_is_unavailable_without_naming_its_host() -> None:
    proxy = DbProxy.for_gateway(
        "mongodb://db-7.cluster.invalid:27017/?serverSelectionTimeoutMS=300", "nowhere"
    )
    try:
        error = refused(proxy, "notes", "find_one", {})
        assert error["code"] == "unavailable"
        assert "db-7" not in error["message"] and "27017" not in error["message"]
    finally:
        proxy.close()


class CommandLog(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[Document] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append({"name": event.command_name, **event.command})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_every_operation_writes_included_carries_the_time_limit(
    services: RunningServices, gateway_id: str
) -> None:
    assert services.settings.mongo_url
    commands = CommandLog()
    client: MongoClient[Document] = MongoClient(services.settings.mongo_url, event_listeners=[commands])
    proxy = DbProxy(lambda: client[gateway_database_name(gateway_id)], max_time_ms=4_000)
    try:
        call(proxy, "notes", "insert_one", {"n": 1})
        call(proxy, "notes", "insert_many", [{"n": 2}, {"n": 3}])
        call(proxy, "notes", "update_many", {}, {"$set": {"seen": True}})
        call(proxy, "notes", "delete_one", {"n": 1})
        call(proxy, "notes", "find", {})
    finally:
        client.close()
    sent = [c for c in commands.commands if c["name"] in {"insert", "update", "delete", "find"}]
    assert [c["name"] for c in sent] == ["insert", "insert", "update", "delete", "find"]
    assert all(0 < c.get("maxTimeMS", 0) <= 4_000 for c in sent), sent


def test_dates_and_bytes_from_the_worker_are_decoded(proxy: DbProxy) -> None:
    """The worker's stub sends datetimes as ``{"$date": iso}`` and bytes as ``{"$binary": base64}``."""
    call(proxy, "events", "insert_one", {"_id": "e1", "at": {"$date": "2026-01-02T03:04:05+00:00"}})
    call(proxy, "events", "insert_one", {"_id": "e2", "blob": {"$binary": "AAE="}})

    assert call(proxy, "events", "find_one", {"_id": "e1"})["at"].startswith("2026-01-02T03:04:05")
    assert call(proxy, "events", "find_one", {"_id": "e2"})["blob"] == "AAE="
    assert refused(proxy, "events", "insert_one", {"at": {"$date": "not a date"}})["code"] == "invalid"


def test_writes_past_the_database_quota_are_refused_and_deletes_make_room(
    services: RunningServices, gateway_id: str
) -> None:
    assert services.settings.mongo_url
    small = DbProxy.for_gateway(
        services.settings.mongo_url, gateway_id, max_database_bytes=64 * 1024, size_check_seconds=0
    )
    try:
        row = {"blob": "x" * 4096}
        written = 0
        while "result" in small.execute({"collection": "rows", "method": "insert_one", "args": [row]}):
            written += 1
            assert written < 100, "the quota never applied"
        assert written >= 5  # well under the quota, writes went through
        reply = small.execute(
            {"collection": "rows", "method": "update_many", "args": [{}, {"$set": {"n": 1}}]}
        )
        error = reply["error"]
        assert error["code"] == "quota_exceeded"
        assert (
            error["details"]["quota"] == "gateway_db_mb"
            and error["details"]["used"] >= error["details"]["limit"]
        )
        assert len(call(small, "rows", "find", {})) == written, "reads still work"
        assert call(small, "rows", "delete_many", {})["deletedCount"] == written
        assert call(small, "rows", "insert_one", row)["insertedId"]
    finally:
        small.close()
