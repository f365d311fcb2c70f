"""The API bits the wall screen and the leader view need: cases per hour for the chart, and a
ticket's allowed actions for the logged-in person looking at it (``?as=`` themselves)."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until


def _tickets(center: RunningCenter, mqtt_broker, *event_types: str) -> list[dict]:
    pub = Publisher(mqtt_broker.port)
    for i, code in enumerate(event_types):
        pub.alert(make_alert(event_type=code, zone_id=f"zone-{i}"))
    pub.close()
    def all_tickets() -> list[dict] | None:
        found = center.client("op-01").get("/api/v1/tickets?open=true").json()
        return found if len(found) == len(event_types) else None

    return wait_until(all_tickets, what="tickets")


def test_cases_hourly_counts_this_hours_cases_per_type(center: RunningCenter, mqtt_broker):
    _tickets(center, mqtt_broker, "0506", "0506", "0504")
    body = center.client("op-01").get("/api/v1/indicators/cases-hourly").json()
    assert len(body["hours"]) == 24 and body["timezone"] == "Asia/Shanghai"
    hours = [datetime.fromisoformat(h) for h in body["hours"]]
    assert all((b - a).total_seconds() == 3600 for a, b in pairwise(hours))
    assert hours[-1] <= datetime.now(hours[-1].tzinfo) < datetime.fromisoformat(body["to"])
    by_type = {s["event_type"]: s for s in body["series"]}
    assert set(by_type) == {"0504", "0506"}
    assert by_type["0506"]["counts"][-1] == 2 and by_type["0506"]["total"] == 2
    assert by_type["0504"]["counts"] == [0] * 23 + [1]
    assert by_type["0506"]["event_name"] == "非机动车乱停放"
    assert len(center.client("op-01").get("/api/v1/indicators/cases-hourly?hours=6").json()
               ["hours"]) == 6
    assert center.client("op-01").get("/api/v1/indicators/cases-hourly?hours=0").status_code == 422


def test_ticket_allowed_actions_are_the_logged_in_persons(center: RunningCenter, mqtt_broker):
    [t] = _tickets(center, mqtt_broker, "0506")
    base = f"{center.url}/api/v1/tickets/{t['id']}"
    assert t["state"] == "dispatched" and t["assignee_id"] == "w-0111"
    def allowed(person: str, as_me: bool = True) -> list[str]:
        params = {"as": person} if as_me else {}
        return center.client(person).get(base, params=params).json()["allowed_actions"]

    assert allowed("op-01", as_me=False) == ["accept", "return"]  # the assignee's
    assert allowed("op-01") == ["void", "reassign", "hand_off", "escalate", "urge",
                                "acknowledge"]
    assert allowed("l-011") == ["accept", "return", "void", "reassign", "hand_off", "escalate",
                                "urge", "acknowledge"]
    assert allowed("w-0111") == ["accept", "return"]
    # Nobody looks as someone else since logins (the pickers that did are gone).
    for person, other in (("op-01", "w-0111"), ("op-01", "nobody"), ("w-0111", "op-01")):
        r = center.client(person).get(base, params={"as": other})
        assert r.status_code == 403 and "`as` must be yourself" in r.json()["detail"], r.text
