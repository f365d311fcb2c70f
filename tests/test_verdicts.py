"""Verdicts through the real center: who may judge what (roles and areas like every other
write), a false alarm that voids its case in the same step, the history kept when a verdict is
replaced, the push to other screens, and the false-alarm counts per camera and zone."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until

VERDICTS = "/api/v1/verdicts"


def _open_case(center: RunningCenter, mqtt_port: int, **alert: Any) -> dict[str, Any]:
    """A camera case (default cam-vn-01 in micro-grid mg-011, dispatched to w-0111)."""
    sent = make_alert(**alert)
    pub = Publisher(mqtt_port)
    pub.alert(sent)
    pub.close()

    def dispatched() -> dict[str, Any] | None:
        for t in center.client("op-01").get("/api/v1/tickets?open=true").json():
            if t["camera_id"] == sent.camera_id and t["state"] == "dispatched":
                return t
        return None

    return {**wait_until(dispatched, what="a dispatched case"), "alert_id": str(sent.alert_id)}


def _receive(ws: Any, type_: str, timeout: float = 10) -> dict[str, Any]:
    """The first message of this type on a websocket, within the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if msg["type"] == type_:
            return msg


def _judge(center: RunningCenter, person: str, **body: Any) -> Any:
    return center.client(person).post(VERDICTS, json=body)


def test_who_may_judge_a_case_and_a_false_alarm_that_voids_it(
        center: RunningCenter, mqtt_broker) -> None:
    case = _open_case(center, mqtt_broker.port)
    tid = case["id"]
    assert case["assignee_id"] == "w-0111"
    fa = {"ticket_id": tid, "verdict": "false_alarm", "reason": "rider"}
    # Outside their scope: another worker, another micro-grid's and grid's leader; engineers
    # only read. Each gets a 403 that says why.
    for person in ("w-0112", "l-021", "l-g02", "eng-01"):
        r = _judge(center, person, **fa)
        assert r.status_code == 403, (person, r.text)
        assert r.json()["detail"]
    # Unknown things are 404; malformed ones 422.
    assert _judge(center, "op-01", **{**fa, "ticket_id": 987654}).status_code == 404
    assert _judge(center, "op-01", alert_id=str(uuid.uuid4()), verdict="confirmed"
                  ).status_code == 404
    for bad in ({**fa, "ticket_id": "x"}, {"alert_id": "not-a-uuid", "verdict": "confirmed"},
                {"ticket_id": tid, "alert_id": case["alert_id"], "verdict": "confirmed"},
                {"verdict": "confirmed"}, {"ticket_id": tid, "verdict": "false_alarm"},
                {**fa, "reason": "bad_luck"}, {**fa, "verdict": "maybe"},
                {"ticket_id": tid, "verdict": "confirmed", "reason": "rider"}):
        r = _judge(center, "op-01", **bad)
        assert r.status_code == 422, (bad, r.text)
    assert center.client("op-01").get(f"{VERDICTS}?ticket_id={tid}").json() == []

    # The worker on site: "nothing there". They may not void (the state machine's void is for
    # staff): 409, and the verdict is not stored either.
    r = _judge(center, "w-0111", **{**fa, "reason": "other", "note": "nothing there",
                                     "void": True})
    assert r.status_code == 409, r.text
    assert center.client("op-01").get(f"{VERDICTS}?ticket_id={tid}").json() == []
    r = _judge(center, "w-0111", **{**fa, "reason": "other", "note": "nothing there"})
    assert r.status_code == 201, r.text
    assert r.json()["alert_ids"] == [case["alert_id"]]
    assert r.json()["ticket"] is None  # not voided

    # The leader of mg-011 confirms: it replaces the worker's verdict; the history keeps both.
    with center.ws("l-011") as ws:
        _receive(ws, "hello")
        assert _judge(center, "l-011", ticket_id=tid, verdict="confirmed").status_code == 201
        pushed = _receive(ws, "verdict")
    assert pushed["data"]["ticket_id"] == tid and pushed["data"]["verdict"] == "confirmed"
    history = center.client("l-011").get(f"{VERDICTS}?ticket_id={tid}").json()
    assert [(v["verdict"], v["actor_id"], v["role"]) for v in history] == [
        ("confirmed", "l-011", "leader"), ("false_alarm", "w-0111", "worker")]
    current = center.client("l-011").get(f"{VERDICTS}?ticket_id={tid}&current=true").json()
    assert [v["verdict"] for v in current] == ["confirmed"]
    assert current[0]["camera_id"] == "cam-vn-01" and current[0]["zone_id"] == "pavement-east"

    # Then a false alarm that voids the case in the same step.
    r = _judge(center, "l-011", **fa, void=True, note="a rider at the light")
    assert r.status_code == 201, r.text
    assert r.json()["ticket"]["state"] == "void"
    after = center.client("op-01").get(f"/api/v1/tickets/{tid}").json()
    assert after["state"] == "void"
    assert [e["actor_id"] for e in after["events"] if e["action"] == "void"] == ["l-011"]
    # A voided case cannot be voided again; the verdict alone can still change.
    assert _judge(center, "op-01", **fa, void=True).status_code == 409
    # The alert's own history (by alert id) is the same rows.
    by_alert = center.client("op-01").get(f"{VERDICTS}?alert_id={case['alert_id']}").json()
    assert [v["verdict"] for v in by_alert] == ["false_alarm", "confirmed", "false_alarm"]
    # The wall's batch of current verdicts: for wall roles only.
    batch = center.client("eng-01").get(f"{VERDICTS}/current?alert_id={case['alert_id']}"
                                        f"&alert_id={uuid.uuid4()}")
    assert [(v["alert_id"], v["verdict"]) for v in batch.json()] == [
        (case["alert_id"], "false_alarm")]
    assert center.client("l-011").get(f"{VERDICTS}/current?alert_id={case['alert_id']}"
                                      ).status_code == 403


def test_false_alarms_are_counted_per_camera_and_zone(center: RunningCenter, mqtt_broker) -> None:
    one = _open_case(center, mqtt_broker.port)
    other = _open_case(center, mqtt_broker.port, camera_id="cam-bj-01", zone_id="corner")
    empty = center.client("op-01").get("/api/v1/indicators/false-alarms?period=day").json()
    assert empty["false_alarms"] == 0 and empty["rows"] == []

    # One alert judged a false alarm by its id (operator), one case confirmed then judged a
    # false alarm (only the current verdict counts), and a second alert at the first place.
    assert _judge(center, "op-01", alert_id=one["alert_id"], verdict="false_alarm",
                  reason="not_parked").status_code == 201
    assert _judge(center, "op-01", ticket_id=other["id"], verdict="confirmed").status_code == 201
    assert _judge(center, "op-01", ticket_id=other["id"], verdict="false_alarm",
                  reason="wrong_class").status_code == 201
    body = center.client("op-01").get("/api/v1/indicators/false-alarms?period=day").json()
    assert body["false_alarms"] == 2
    assert body["per_camera"] == {"cam-vn-01": 1, "cam-bj-01": 1}
    rows = {(r["camera_id"], r["zone_id"]): r for r in body["rows"]}
    assert rows["cam-vn-01", "pavement-east"]["reason_not_parked"] == 1
    assert rows["cam-bj-01", "corner"]["false_alarms"] == 1
    assert rows["cam-bj-01", "corner"]["confirmed"] == 0
    assert rows["cam-bj-01", "corner"]["false_alarm_share"] == 1.0

    # CSV for Excel: the same figures, one column per reason.
    r = center.client("op-01").get("/api/v1/indicators/false-alarms?period=day&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {(x["camera_id"], x["false_alarms"], x["reason_wrong_class"]) for x in table} == {
        ("cam-vn-01", "1", "0"), ("cam-bj-01", "1", "1")}

    # A leader sees their area's cameras only; a worker none of it.
    mine = center.client("l-011").get("/api/v1/indicators/false-alarms?period=day").json()
    assert set(mine["per_camera"]) <= {"cam-vn-01", "cam-bj-01"}
    assert "cam-vn-01" in mine["per_camera"]
    assert center.client("l-021").get("/api/v1/indicators/false-alarms?period=day"
                                      ).json()["per_camera"].get("cam-vn-01") is None
    assert center.client("w-0111").get("/api/v1/indicators/false-alarms?period=day"
                                       ).status_code == 403


@pytest.mark.browser
def test_a_false_alarm_marked_on_the_wall_counts_on_every_wall(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """An operator marks an alert a false alarm on the wall (the dialog: reason, void the
    case); the wall's KPI and the camera's badge count it, and a second wall screen, which did
    nothing, shows the new count from the pushed verdict."""
    walls = []
    for person in ("op-01", "eng-01"):
        page, errors = new_page(browser, 1920, 1080, center=center, person_id=person)
        page.goto(f"{center.url}/wall?lang=en")
        expect(page.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                             timeout=10_000)
        expect(page.locator("#kpi-false-alarms [data-kpi-value]")).to_have_text("0")
        walls.append((page, errors))
    case = _open_case(center, mqtt_broker.port)
    (page, errors), (other, other_errors) = walls
    item = page.locator(f'.alert-item[data-alert-id="{case["alert_id"]}"]')
    expect(item).to_be_visible(timeout=10_000)
    # Engineers only read: no button on their wall.
    expect(other.locator(f'.alert-item[data-alert-id="{case["alert_id"]}"]')).to_be_visible()
    expect(other.locator(".alert-judge")).to_have_count(0)

    item.locator(".alert-judge").click()
    dialog = page.locator("#verdict-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="False alarm").click()
    dialog.get_by_test_id("verdict-reason").select_option("rider")
    expect(dialog.get_by_test_id("verdict-void")).to_be_checked()  # the case is still open
    dialog.get_by_test_id("verdict-submit").click()
    expect(dialog).to_be_hidden()

    for p in (page, other):
        expect(p.locator("#kpi-false-alarms [data-kpi-value]")).to_have_text("1")
        badge = p.locator('#camera-list [data-camera-id="cam-vn-01"] .cam-false-alarms')
        expect(badge).to_have_text("false 1")
        expect(p.locator(f'.alert-item[data-alert-id="{case["alert_id"]}"] .alert-verdict')
               ).to_have_text("False alarm: someone riding it")
    # The case was voided in the same step: it leaves the open list.
    expect(page.locator(f'#ticket-rows tr[data-ticket-id="{case["id"]}"]')).to_have_count(0)
    stored = center.client("op-01").get(f"{VERDICTS}?alert_id={case['alert_id']}").json()
    assert [(v["verdict"], v["reason"], v["actor_id"]) for v in stored] == [
        ("false_alarm", "rider", "op-01")]
    assert center.client("op-01").get(f"/api/v1/tickets/{case['id']}").json()["state"] == "void"
    # A reloaded wall marks the alert from the stored verdict.
    other.reload()
    expect(other.locator(f'.alert-item[data-alert-id="{case["alert_id"]}"] .alert-verdict')
           ).to_have_text("False alarm: someone riding it", timeout=10_000)
    assert errors == [] and other_errors == []


@pytest.mark.browser
def test_a_leader_confirms_then_a_worker_says_nothing_there(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """The leader view judges the case (zh), the worker's phone replaces it with "nothing
    there" on site; the leader's open case shows the worker's verdict without a reload."""
    case = _open_case(center, mqtt_broker.port)
    leader, errors = new_page(browser, 1600, 1000, center=center, person_id="l-011")
    leader.goto(f"{center.url}/leader?ticket={case['id']}")
    expect(leader.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                           timeout=10_000)
    block = leader.locator("#ticket-detail [data-testid=verdict]")
    expect(block.get_by_test_id("verdict-current")).to_contain_text("尚未研判")
    block.get_by_role("button", name="确认违规").click()
    expect(block.get_by_test_id("verdict-current")).to_contain_text("确认违规")

    phone, phone_errors = new_page(browser, 390, 844, center=center, person_id="w-0111")
    phone.goto(f"{center.url}/phone?lang=en")
    card = phone.locator(f'.ticket-card[data-ticket-id="{case["id"]}"]')
    expect(card).to_be_visible(timeout=10_000)
    card.click(position={"x": 8, "y": 8})  # the card, not one of its buttons
    sheet = phone.locator("#ticket-detail [data-testid=verdict]")
    expect(sheet.get_by_test_id("verdict-current")).to_contain_text("Confirmed")
    sheet.get_by_role("button", name="Nothing there").click()
    sheet.get_by_test_id("verdict-reason").select_option("other")
    expect(sheet.get_by_test_id("verdict-void")).to_have_count(0)  # workers do not void
    sheet.get_by_test_id("verdict-submit").click()
    expect(phone.locator("#ticket-detail [data-testid=verdict-current]")).to_contain_text(
        "False alarm: other")

    expect(leader.locator("#ticket-detail [data-testid=verdict-current]")).to_contain_text(
        "误报：其他")
    current = center.client("l-011").get(f"{VERDICTS}?ticket_id={case['id']}&current=true")
    assert [(v["verdict"], v["actor_id"]) for v in current.json()] == [
        ("false_alarm", "w-0111")]
    assert errors == [] and phone_errors == []
