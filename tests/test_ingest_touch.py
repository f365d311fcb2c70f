"""The optional throttle of "touch" ticket pushes (an attach that changes nothing a person
acts on): held within the window, anything else at once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from center.services.alert_intake import _TouchThrottle
from center.services.tickets import Change, Ticket
from center.store.alerts import _bbox_literal


def _ticket(**kw: object) -> Ticket:
    now = datetime.now(UTC)
    base: dict[str, object] = {f.name: None for f in dataclasses.fields(Ticket)}
    base |= {"id": 1, "source": "camera", "event_type": "0506", "state": "dispatched",
             "assignee_id": "w-1", "description": "", "priority": 0, "emergency": False,
             "opened_at": now, "updated_at": now, "escalation_level": 0, "rework_count": 0,
             "alert_count": 1, "public_token": "x"}
    return Ticket(**(base | kw))  # type: ignore[arg-type]


def test_touches_are_held_within_the_window_and_state_changes_are_not():
    th = _TouchThrottle(2.0)
    assert th.offer(Change(_ticket(), created=True), 0.0)  # new ticket: at once
    assert not th.offer(Change(_ticket(alert_count=2)), 0.5)  # a touch: held
    assert not th.offer(Change(_ticket(alert_count=3)), 1.0)
    assert th.due(1.9) == []
    assert th.offer(Change(_ticket(state="accepted")), 1.2)  # state change: at once
    assert th.due(1.5) == []  # that push carried the latest: nothing held any more
    assert not th.offer(Change(_ticket(state="accepted", alert_count=4)), 1.4)
    assert th.offer(Change(_ticket(state="accepted"), notify={"w-2": "reassigned"}), 1.5)
    assert not th.offer(Change(_ticket(state="accepted", alert_count=5)), 1.6)
    assert th.due(3.4) == [] and th.due(3.6) == [1]  # window from the last push (1.5)


def test_zero_interval_pushes_everything():
    th = _TouchThrottle(0.0)
    assert all(th.offer(Change(_ticket(alert_count=n)), n / 10) for n in range(5))


def test_bbox_literal():
    assert _bbox_literal((0.1, 0.25, 1, 0.5)) == "{0.1,0.25,1.0,0.5}"
