"""``gridwatch sim workers``: bots that use the phone page's websocket and REST API move a
ticket through the loop (accept, arrive, photo + resolve; the leader bot verifies or sends it
back for rework)."""

from __future__ import annotations

import asyncio

from simulators.workers import Bots, BotSettings, PasswordBook
from tests.conftest import password_for
from tests.mqtt_helpers import Publisher, make_alert
from tests.waiting import wait_until

OPERATOR = "op-01"


def _ticket_for(center, publisher: Publisher, camera_id: str) -> dict:
    publisher.alert(make_alert(camera_id=camera_id, zone_id="bot-zone"))

    def opened() -> list[dict]:
        found = center.client(OPERATOR).get("/api/v1/tickets", params={"open": "true"}).json()
        return [t for t in found if t["camera_id"] == camera_id]

    return wait_until(opened, 10, f"a ticket opened on {camera_id}")[0]


def _ledger(center, tid: int) -> list[str]:
    return [e["action"] for e in
            center.client(OPERATOR).get(f"/api/v1/tickets/{tid}").json()["events"]]


def test_worker_bot_moves_a_ticket_to_handled_and_leader_verifies(center, mqtt_broker) -> None:
    pub = Publisher(mqtt_broker.port)
    try:
        ticket = _ticket_for(center, pub, "cam-bj-01")
    finally:
        pub.close()
    assert ticket["state"] == "dispatched"
    worker = ticket["assignee_id"]

    async def run() -> Bots:
        bots = await Bots.discover(
            center.url, worker, passwords=PasswordBook(password_for), settings=BotSettings(
                accept_after=0.3, handle_after=0.6, verify_after=0.4, resync_s=0.5))
        await bots.run(duration=5)
        return bots

    bots = asyncio.run(run())
    assert bots.leaders, "the worker's micro-grid leader comes along"
    actions = _ledger(center, ticket["id"])
    assert actions[:5] == ["register", "dispatch", "accept", "arrive", "resolve"], actions
    assert actions[-1] == "verify"
    t = center.client(OPERATOR).get(f"/api/v1/tickets/{ticket['id']}").json()
    resolve = next(e for e in t["events"] if e["action"] == "resolve")
    assert resolve["actor_id"] == worker and resolve["attachments"], resolve
    assert bots.report.uploads >= 1 and bots.report.errors == 0


def test_failing_verification_sends_the_ticket_back(center, mqtt_broker) -> None:
    pub = Publisher(mqtt_broker.port)
    try:
        ticket = _ticket_for(center, pub, "cam-vtest")
    finally:
        pub.close()

    async def run() -> Bots:
        bots = await Bots.discover(
            center.url, ticket["assignee_id"], passwords=PasswordBook(password_for),
            settings=BotSettings(accept_after=0.2, handle_after=0.4, verify_after=0.3,
                                 fail_verify=1.0, resync_s=0.5))
        await bots.run(duration=3)
        return bots

    bots = asyncio.run(run())
    actions = _ledger(center, ticket["id"])
    assert "rework" in actions, actions
    assert ticket["id"] in bots.report.reworked_tickets
    # after rework the worker got it again and worked it once more
    assert actions.count("accept") >= 2, actions
