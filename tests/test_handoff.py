"""Hand-off to a department, escalation by hand and urging, through the real center's API on a
real PostgreSQL: the chain of command (worker → micro-grid leader → departments) as rows of the
state table (center/domain/ticket_states.py), never as special cases."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from center.domain.time_limits import load_time_limits
from tests.conftest import RunningCenter
from wire.paths import DEFAULTS_DIR

LIMITS = load_time_limits(DEFAULTS_DIR / "time_limits.yaml")




def _post(center: RunningCenter, person: str, ticket_id: int, **body: Any) -> Any:
    return center.client(person).post(f"/api/v1/tickets/{ticket_id}/actions", json=body)


def _act(center: RunningCenter, person: str, ticket_id: int, **body: Any) -> dict[str, Any]:
    r = _post(center, person, ticket_id, **body)
    assert r.status_code == 200, r.text
    return r.json()


def _ids(center: RunningCenter, person: str, query: str) -> list[int]:
    r = center.client(person).get(f"/api/v1/tickets?{query}")
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()]


def _reason(data: dict[str, Any], person: str) -> str | None:
    """Why a ticket message came to ``person`` (with notifications running, or without)."""
    return data.get("reason") or data.get("notify", {}).get(person)


def _ticket_event(ws: Any, ticket_id: int, person: str, reason: str,
                  timeout: float = 10) -> dict[str, Any]:
    """The first ticket message about ``ticket_id`` sent to ``person`` for ``reason`` (a
    socket that connects gets the notifications it has not read first, its dispatch too)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
        if (msg["type"] == "ticket" and msg["data"]["id"] == ticket_id
                and _reason(msg["data"], person) == reason):
            return msg["data"]


def test_a_hand_off_reaches_the_departments_queue_and_returns_for_verification(
        center: RunningCenter, mqtt_broker) -> None:
    """The leader hands a case to market supervision (not the department of its event type):
    it leaves the worker, sits in that department's queue on that department's limits, only
    its staff take it, and once handled it is the leader's to verify."""
    ticket = center.dispatched_case(mqtt_broker.port)
    tid = ticket["id"]
    with center.ws("w-0111", worker_id="w-0111") as worker, center.ws("d-market-01") as staff:
        for ws in (worker, staff):
            assert json.loads(ws.recv(5))["type"] == "hello"
        moved = _act(center, "l-011", tid, action="hand_off", department_id="d-market",
                     note="占道经营，需市监处理")
        assert moved["state"] == "dispatched" and moved["assignee_id"] is None
        assert moved["department_id"] == "d-market"
        assert moved["department_name"] == "市场监管所 Market supervision"
        assert _ticket_event(worker, tid, "w-0111", "reassigned away")["assignee_id"] is None
        heard = _ticket_event(staff, tid, "d-market-01", "handed off")
        assert heard["department_id"] == "d-market"

    # The department's own limits: its accept stage, and its overall limit from the hand-off.
    dispatched = datetime.fromisoformat(moved["dispatched_at"])
    assert datetime.fromisoformat(moved["stage_due_at"]) == LIMITS.due(
        "0506", "accept", dispatched, department="d-market")
    assert datetime.fromisoformat(moved["due_at"]) == LIMITS.due(
        "0506", "overall", dispatched, department="d-market")

    # In the department's queue, and nobody else's.
    assert tid in _ids(center, "d-market-01", "open=true&department_id=d-market")
    assert tid not in _ids(center, "d-urban-01", "open=true&department_id=d-urban")
    assert tid not in _ids(center, "w-0111", "open=true")
    # The worker it left can no longer act on it.
    assert _post(center, "w-0111", tid, action="accept").status_code == 403

    # Urban management sees 0506 cases (its event type) but this one is not in its queue.
    refused = _post(center, "d-urban-01", tid, action="accept")
    assert refused.status_code == 409
    assert "department d-market's queue" in refused.json()["detail"]

    taken = _act(center, "d-market-01", tid, action="accept")
    assert taken["assignee_id"] == "d-market-01" and taken["department_id"] == "d-market"
    assert datetime.fromisoformat(taken["stage_due_at"]) == LIMITS.due(
        "0506", "handle", datetime.fromisoformat(taken["accepted_at"]), department="d-market")
    handled = _act(center, "d-market-01", tid, action="resolve", note="已责令整改")
    assert handled["state"] == "handled"

    # Back for verification: the department may not verify its own work; the leader does.
    assert "verify" not in center.client("d-market-01").get(
        f"/api/v1/tickets/{tid}?as=d-market-01").json()["allowed_actions"]
    assert _post(center, "d-market-01", tid, action="verify").status_code == 409
    assert "verify" in center.client("l-011").get(
        f"/api/v1/tickets/{tid}?as=l-011").json()["allowed_actions"]
    assert _act(center, "l-011", tid, action="verify")["state"] == "verified"
    events = center.client("op-01").get(f"/api/v1/tickets/{tid}").json()["events"]
    assert [(e["action"], e["actor_id"]) for e in events][-4:] == [
        ("hand_off", "l-011"), ("accept", "d-market-01"), ("resolve", "d-market-01"),
        ("verify", "l-011")]


def test_hand_off_without_a_department_goes_to_the_one_handling_the_event_type(
        center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    detail = center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json()
    assert detail["department_default"] == "d-urban"  # 0506 is urban management's
    assert _act(center, "op-01", ticket["id"], action="hand_off")["department_id"] == "d-urban"
    unknown = _post(center, "op-01", ticket["id"], action="hand_off", department_id="d-nope")
    assert unknown.status_code == 409 and "no active department 'd-nope'" in unknown.text
    # Dispatched back to a worker of the micro-grid: out of the department's queue.
    back = _act(center, "op-01", ticket["id"], action="reassign", assignee_id="w-0112")
    assert back["department_id"] is None and back["assignee_id"] == "w-0112"
    assert ticket["id"] not in _ids(center, "d-urban-01", "department_id=d-urban")


def test_department_staff_list_only_their_own_departments_queue(
        center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    _act(center, "op-01", ticket["id"], action="hand_off", department_id="d-urban")
    other = center.client("d-market-01").get("/api/v1/tickets?department_id=d-urban")
    assert other.status_code == 403 and "department d-market" in other.json()["detail"]
    assert _ids(center, "d-market-01", "open=true&department_id=d-market") == []
    assert _ids(center, "d-urban-01", "open=true&department_id=d-urban") == [ticket["id"]]


def test_an_urge_reaches_the_assignees_phone_is_in_the_ledger_and_cannot_spam(
        center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    tid = ticket["id"]
    with center.ws("w-0111", worker_id="w-0111") as phone:
        assert json.loads(phone.recv(5))["type"] == "hello"
        _act(center, "op-01", tid, action="urge", note="居民再次投诉，请尽快处理")
        assert _ticket_event(phone, tid, "w-0111", "urged")["assignee_id"] == "w-0111"
    urges = [e for e in center.client("op-01").get(f"/api/v1/tickets/{tid}").json()["events"]
             if e["action"] == "urge"]
    assert [(e["actor_id"], e["note"], e["to_state"]) for e in urges] == [
        ("op-01", "居民再次投诉，请尽快处理", "dispatched")]
    # One urge per urge_every_min, whoever asks: the second is refused, saying when.
    again = _post(center, "l-011", tid, action="urge")
    assert again.status_code == 409
    assert "urge again from" in again.json()["detail"]
    assert f"one urge per {LIMITS.urge_every_min:g} min" in again.json()["detail"]


def test_a_worker_may_neither_urge_nor_hand_off_nor_escalate(
        center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    for action in ("urge", "hand_off", "escalate"):
        r = _post(center, "w-0111", ticket["id"], action=action, note="x")
        assert r.status_code == 409, (action, r.text)
        assert f"a worker may not '{action}'" in r.json()["detail"]
    assert center.client("w-0111").get(
        f"/api/v1/tickets/{ticket['id']}?as=w-0111").json()["allowed_actions"] == [
        "accept", "return"]


def test_escalate_by_hand_needs_a_reason_and_raises_the_level_like_the_timers(
        center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    tid = ticket["id"]
    bare = _post(center, "op-01", tid, action="escalate")
    assert bare.status_code == 409 and "needs a reason" in bare.json()["detail"]
    one = _act(center, "op-01", tid, action="escalate", note="群众多次投诉")
    assert one["escalation_level"] == 1 and one["state"] == "dispatched"
    two = _act(center, "l-011", tid, action="escalate", note="网格内无法解决")
    assert two["escalation_level"] == 2
    notes = [e["note"] for e in center.client("op-01").get(
        f"/api/v1/tickets/{tid}").json()["events"] if e["action"] == "escalate"]
    # The same note as the timers write: the level, why, and who was told (level 2: the grid
    # leader and the staff of the department handling 0506).
    assert notes == ["level 1: 群众多次投诉; notified l-011",
                     "level 2: 网格内无法解决; notified d-urban-01, l-g01"]


def test_actions_outside_the_table_are_refused(center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    tid = ticket["id"]
    _act(center, "w-0111", tid, action="accept")
    _act(center, "w-0111", tid, action="resolve")
    for action in ("hand_off", "urge"):  # a handled case is the verifier's, not a queue's
        r = _post(center, "op-01", tid, action=action, department_id="d-urban")
        assert r.status_code == 409
        assert f"action '{action}' is not allowed in state 'handled'" in r.json()["detail"]
