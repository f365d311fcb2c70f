"""Domain errors become HTTP answers in one place (center/api/guard.py ``DOMAIN_ERRORS``):
routes let ``TicketNotFound``, ``IllegalTransition`` and ``IndicatorError`` propagate, and the
client gets the status and the error's own text as ``detail``, the texts the pages match
(dashboard/static/errors.js). Against the real app, PostgreSQL and broker."""

from __future__ import annotations

from tests import plain_http
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until


def test_domain_errors_reach_the_client_with_status_and_detail(center: RunningCenter,
                                                               mqtt_broker) -> None:
    op = center.client("op-01")

    missing = op.get("/api/v1/tickets/987654321")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no ticket 987654321"}
    public = plain_http.get(center.url + "/api/v1/public/tickets/not-a-token")
    assert public.status_code == 404 and public.json() == {"detail": "no such ticket"}

    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())
    pub.close()
    t = wait_until(lambda: op.get("/api/v1/tickets?open=true").json(), what="ticket")[0]
    assert t["state"] == "dispatched"
    refused = center.client(t["assignee_id"]).post(f"/api/v1/tickets/{t['id']}/actions",
                                                   json={"action": "verify"})
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    # The shape the pages translate ("err.state"), and nothing of the refused action stored.
    assert detail.startswith("action 'verify' is not allowed in state 'dispatched'"), detail
    assert op.get(f"/api/v1/tickets/{t['id']}").json()["state"] == "dispatched"

    window = op.get("/api/v1/indicators", params={"from": "2026-01-02", "to": "2026-01-01"})
    assert window.status_code == 422
    assert window.json() == {"detail": "`to` must be after `from`"}
