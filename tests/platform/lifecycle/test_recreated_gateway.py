"""A gateway re-created under a deleted one's id inherits nothing of it.

Gateway ids are reused once a gateway is deleted, and registration is open: the second owner must
not read the first one's logs or events, nor find its database contents or published code — even
when something of the first outlived the deletion (here: a document a late write left in the
database, as a replica going away or a crash between steps would).
"""

from __future__ import annotations

from pymongo import MongoClient

from imprun.domain.naming import gateway_db_name
from imprun.sdk import Client
from tests.fixtures.live_stack import SMALL_BUNDLE, LiveStack
from tests.fixtures.polling import eventually

CANARY = "canary-of-the-first-owner"
FIRST = (
    "import imp\n\n"
    "def main():\n"
    f"    imp.log('{CANARY}')\n"
    "    imp.db()['notes'].insert_one({'owner': 'first'})\n"
    "    return {'owner': 'first'}\n"
)
COUNT = "import imp\n\ndef main():\n    return {'notes': imp.db()['notes'].count_documents({})}\n"


def _gone(client: Client, gw: str) -> bool:
    return gw not in {g.gateway_id for g in client.list_gateways()}


def test_a_recreated_gateway_id_has_no_logs_events_data_or_code_of_the_deleted_one(
    live_stack: LiveStack,
) -> None:
    gw = live_stack.gateway_id("reborn")
    with live_stack.client() as first:
        first_id = first.me().id
        first.create_gateway("reborn", gateway_id=gw, bundle=SMALL_BUNDLE)
        gateway = first.gateway(gw)
        gateway.wait_started(timeout=240)
        gateway.environment("dev").update(auth_type="none")
        canary = gateway.function("canary")
        canary.save(FIRST)
        canary.publish("dev")
        assert canary.call().body == {"owner": "first"}
        assert eventually(
            lambda: any(CANARY in e.message for e in first.logs(gw, "dev", since="1d")), timeout=30
        )
        assert any(first_id in e.message for e in gateway.events())
        gateway.delete()
        assert eventually(lambda: _gone(first, gw), timeout=240)

    # A late write of the first incarnation recreates its database after the deletion dropped it.
    with MongoClient(live_stack.settings.mongo_url) as mongo:
        mongo[gateway_db_name(gw)]["notes"].insert_one({"owner": "first", "late": True})

    _, token = live_stack.new_user()
    with live_stack.client(token) as second:
        second.create_gateway("reborn", gateway_id=gw, bundle=SMALL_BUNDLE)
        gateway = second.gateway(gw)
        gateway.wait_started(timeout=240)
        gateway.environment("dev").update(auth_type="none")
        assert second.logs(gw, "dev", since="1d") == []
        assert not any(first_id in e.message or CANARY in e.message for e in gateway.events())
        assert gateway.functions() == []
        counter = gateway.function("count")
        counter.save(COUNT)
        counter.publish("dev")
        assert counter.call().body == {"notes": 0}  # waits until the auth change and publish are live
        assert second.call(gw, "dev", "canary", check=False).status == 404
        gateway.delete()
