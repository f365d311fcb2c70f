"""Routing by setting (docs/presence.md, issue 15): with ``presence.auto_assign_nearest`` a new
case goes to the nearest on-duty worker of its micro-grid when the A post is far (or off duty,
or busy), from the positions the workers' phones sent; the ledger's dispatch row is the
system's, as for every automatic routing. Off (the default), the A post keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningCenter
from tests.waiting import wait_until

P = "/api/v1/presence"
CASE = {"lon": "120.1555", "lat": "30.2705"}  # in mg-012: A post w-0121, B post w-0122
NEAR = {"lon": 120.1557, "lat": 30.2706, "accuracy_m": 8}  # ~20 m from the case
FAR = {"lon": 120.1660, "lat": 30.2710, "accuracy_m": 8}  # ~1 km: beyond far_m (800 m)


AUTO = {"presence": {"auto_assign_nearest": True, "min_interval_s": 0.5}}


@pytest.fixture
def center_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


def _moves_to(center: RunningCenter, person: str, where: dict[str, Any]) -> None:
    """The phone sends a position until the center stores it (201; 200: thinned, too soon)."""
    wait_until(lambda: center.client(person).post(P + "/positions", json=where).status_code
               == 201, 5, f"{person}'s position stored")


def _on_duty_at(center: RunningCenter, person: str, where: dict[str, Any]) -> None:
    """The worker checks in on the phone and the phone sends a position (the real API)."""
    c = center.client(person)
    r = c.post(P + "/duty", json={"on_duty": True})
    assert r.status_code == 200, r.text
    _moves_to(center, person, where)


def _report(center: RunningCenter) -> dict[str, Any]:
    r = center.client("l-012").post("/api/v1/reports", data={
        "event_type": "0506", "note": "routing test", **CASE})
    assert r.status_code == 201, r.text
    return center.client("op-01").get(f"/api/v1/tickets/{r.json()['id']}").json()


def _dispatch_row(ticket: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in ticket["events"] if e["action"] == "dispatch")


@pytest.mark.parametrize("center_settings", [AUTO], indirect=True)
def test_the_nearest_on_duty_worker_gets_the_case_when_the_a_post_is_far(
        center: RunningCenter) -> None:
    _on_duty_at(center, "w-0121", FAR)
    _on_duty_at(center, "w-0122", NEAR)
    ticket = _report(center)
    assert ticket["state"] == "dispatched"
    assert ticket["assignee_id"] == "w-0122", ticket["assignee_id"]
    row = _dispatch_row(ticket)
    assert row["actor_id"] == "system"
    assert row["note_key"] == "routed" and row["note_args"]["person"] == "w-0122"
    # The A post comes near: the next case is theirs again.
    _moves_to(center, "w-0121", NEAR)
    center.client("op-01").post(f"/api/v1/tickets/{ticket['id']}/actions",
                                json={"action": "void", "note": "test"}).raise_for_status()
    assert _report(center)["assignee_id"] == "w-0121"


@pytest.mark.parametrize("center_settings", [AUTO], indirect=True)
def test_nobody_else_on_duty_leaves_the_routing_by_post(center: RunningCenter) -> None:
    _on_duty_at(center, "w-0121", FAR)  # far, but the only one on duty
    assert _report(center)["assignee_id"] == "w-0121"


def test_off_by_default_the_a_post_keeps_the_case(center: RunningCenter) -> None:
    assert center.settings.presence.auto_assign_nearest is False
    _on_duty_at(center, "w-0121", FAR)
    _on_duty_at(center, "w-0122", NEAR)
    ticket = _report(center)
    assert ticket["assignee_id"] == "w-0121"
    assert _dispatch_row(ticket)["note_args"]["person"] == "w-0121"
