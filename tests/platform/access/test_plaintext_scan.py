"""No plaintext API key anywhere but the two responses that hand it out.

The test drives every key-handling flow (grant, list, regenerate, revoke, duplicate and refused
grants, environment changes, deleting an application) with the whole process logging at DEBUG, then
looks for each key it was given — and for the keys every other test of the session was given — in
every document of every collection of every MongoDB database, every Redis value (strings, hashes,
lists, sets, sorted sets, streams), the raw files of both services' data directories, the captured
log records and their formatted output (text and JSON lines), the metrics, the events and every other
API response. It looks for the whole key, its random part, the part of it no prefix shows, and
their hex and base64 encodings (nx-27017 keeps binary values base64-encoded on disk).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imprun.api.context import ControlPlane
from imprun.observability.logs import JsonFormatter, TextFormatter
from imprun.store.redis import Redis
from tests.fixtures.services import RunningServices
from tests.platform.access.conftest import (
    KeyLedger,
    consumers,
    lookup_hash,
    new_application,
    new_gateway,
    wait_for,
)
from tests.platform.functions.conftest import Headers, register

Grant = Callable[..., dict[str, Any]]


def needles(key: str) -> list[str]:
    random_part = key.split("_", 2)[2]
    unseen = random_part[4:]  # what no keyPrefix ever shows
    encoded = [base64.b64encode(key.encode()).decode(), base64.b64encode(random_part.encode()).decode()]
    return [key, random_part, unseen, key.encode().hex(), unseen.encode().hex(), *encoded]


@pytest.fixture
def formatted_logs() -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted the way the control plane writes it."""
    sink = io.StringIO()
    handlers = [logging.StreamHandler(sink), logging.StreamHandler(sink)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(TextFormatter())
    root = logging.getLogger()
    for handler in handlers:
        handler.setLevel(logging.DEBUG)
        root.addHandler(handler)
    yield sink
    for handler in handlers:
        root.removeHandler(handler)


def mongo_texts(plane: ControlPlane) -> Iterator[tuple[str, str]]:
    for database in plane.mongo.list_database_names():
        db = plane.mongo[database]
        for collection in db.list_collection_names():
            for doc in db[collection].find():
                yield f"mongo {database}.{collection} {doc.get('_id')!r}", repr(doc)


def redis_texts(redis: Redis) -> Iterator[tuple[str, str]]:
    for key in redis.scan_iter("*", count=500):
        kind = redis.type(key)
        value: object
        if kind == "string":
            value = redis.get(key)
        elif kind == "hash":
            value = redis.hgetall(key)
        elif kind == "list":
            value = redis.lrange(key, 0, -1)
        elif kind == "set":
            value = redis.smembers(key)
        elif kind == "zset":
            value = redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = redis.xrange(key)
        else:
            value = None
        yield f"redis {kind} {key}", f"{key} {value!r}"


def file_blobs(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield f"file {path}", path.read_bytes()


def test_no_plaintext_key_is_stored_logged_or_echoed(
    access_client: TestClient,
    plane: ControlPlane,
    ledger: KeyLedger,
    services: RunningServices,
    caplog: pytest.LogCaptureFixture,
    formatted_logs: io.StringIO,
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = register(access_client)
    public: list[str] = []  # every response that must not carry a key

    def call(method: str, path: str, *, expect: int, body: Any = None, headers: Headers = owner) -> Any:
        response = access_client.request(method, path, json=body, headers=headers)
        assert response.status_code == expect, (method, path, response.text)
        return response

    def issue(path: str, body: Any = None, *, expect: int = 201) -> dict[str, Any]:
        response = call("POST", path, body=body, expect=expect)
        assert response.headers["cache-control"] == "no-store"
        answer: dict[str, Any] = response.json()
        ledger.add(answer["apiKey"])
        return answer

    gw = new_gateway(access_client, owner)
    app = new_application(access_client, owner, description="scan", organization="acme")
    grants = f"/v1/applications/{app}/grants"
    dev = issue(grants, {"gatewayId": gw, "environment": "dev"})
    staging = issue(
        grants, {"gatewayId": gw, "environment": "staging", "rateLimit": {"count": 2, "windowSeconds": 1}}
    )
    public.append(call("POST", grants, body={"gatewayId": gw, "environment": "dev"}, expect=409).text)
    public.append(call("GET", grants, expect=200).text)
    regenerated = issue(f"{grants}/{dev['grantId']}/regenerate", expect=200)
    public.append(call("DELETE", f"{grants}/{staging['grantId']}", expect=202).text)
    public.append(call("POST", f"{grants}/{staging['grantId']}/regenerate", expect=409).text)
    public.append(
        call(
            "PATCH",
            f"/v1/api-gateways/{gw}/environments/prod",
            body={"rateLimit": {"count": 9, "windowSeconds": 9}},
            expect=200,
        ).text
    )
    doomed = new_application(access_client, owner)
    doomed_grant = issue(f"/v1/applications/{doomed}/grants", {"gatewayId": gw, "environment": "prod"})
    public.append(call("DELETE", f"/v1/applications/{doomed}", expect=200).text)
    public.append(call("GET", f"/v1/applications/{app}", expect=200).text)
    stranger = register(access_client)
    public.append(call("GET", grants, expect=404, headers=stranger).text)

    # Let the reconcilers converge: only the regenerated dev key remains published.
    live = lookup_hash(plane, regenerated["apiKey"])
    wait_for(lambda: [c["lookupHash"] for c in consumers(plane, gw)] == [live], "only the live key published")
    wait_for(
        lambda: [g["grantId"] for g in call("GET", grants, expect=200).json()] == [dev["grantId"]],
        "the revoked grant to be removed",
    )
    public.append(call("GET", grants, expect=200).text)
    public.append(call("GET", f"/v1/api-gateways/{gw}/events", expect=200).text)
    public.append(access_client.get("/metrics").text)
    assert doomed_grant["apiKey"] and regenerated["apiKey"] != dev["apiKey"]

    keys = list(dict.fromkeys(ledger.keys))
    assert {dev["apiKey"], staging["apiKey"], regenerated["apiKey"], doomed_grant["apiKey"]} <= set(keys)
    texts = [
        *everything_stored(plane, services),
        *(("response", text) for text in public),
        *captured_logs(caplog, formatted_logs),
    ]
    assert len(caplog.records) > 50 and "DEBUG" in formatted_logs.getvalue()  # the net was really cast
    found = findings(keys, texts, list(file_blobs(Path(services.settings.data_dir))))
    assert not found, f"plaintext key material found: {found[:10]}"


def test_the_scan_finds_a_planted_key_in_each_kind_of_place(
    plane: ControlPlane,
    services: RunningServices,
    caplog: pytest.LogCaptureFixture,
    formatted_logs: io.StringIO,
) -> None:
    """The control for the test above: a key put where it must never be is found there."""
    caplog.set_level(logging.DEBUG)
    planted = plane.vault.generate("dev")  # never handed to anyone, never in the ledger
    scratch = plane.mongo["imprun_scan_control"]
    redis_key = "imprun:scan-control"
    try:
        scratch.leak.insert_one({"_id": 1, "raw": planted.encode()})
        plane.redis.hset(redis_key, "field", planted)
        logging.getLogger("imprun.scan_control").debug("leaking %s", planted)
        texts = [*everything_stored(plane, services), *captured_logs(caplog, formatted_logs)]
        blobs = list(file_blobs(Path(services.settings.data_dir)))
        where = {
            place.split(" ")[0] + " " + place.split(" ")[1] for place, _ in findings([planted], texts, blobs)
        }
        assert {"mongo imprun_scan_control.leak", "redis hash", "caplog text", "formatted logs"} <= where, (
            where
        )
        assert any(place.startswith("file") for place, _ in findings([planted], [], blobs))
    finally:
        plane.mongo.drop_database(scratch.name)
        plane.redis.delete(redis_key)


def everything_stored(plane: ControlPlane, services: RunningServices) -> list[tuple[str, str]]:
    return [*mongo_texts(plane), *redis_texts(plane.redis)]


def captured_logs(caplog: pytest.LogCaptureFixture, formatted: io.StringIO) -> list[tuple[str, str]]:
    return [
        ("caplog text", caplog.text),
        ("caplog records", "\n".join(repr(vars(record)) for record in caplog.records)),
        ("formatted logs", formatted.getvalue()),
    ]


def findings(
    keys: list[str], texts: list[tuple[str, str]], blobs: list[tuple[str, bytes]]
) -> list[tuple[str, str]]:
    """``(where, needle prefix)`` of every key fragment found in ``texts`` or ``blobs``."""
    found = [
        (where, needle[:12] + "…")
        for key in keys
        for needle in needles(key)
        for where, text in texts
        if needle in text
    ]
    found += [
        (where, needle[:12] + "…")
        for key in keys
        for needle in needles(key)
        for where, blob in blobs
        if needle.encode() in blob
    ]
    return found
