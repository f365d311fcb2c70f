"""Websocket events in batches (issue 16): a client that says ``"batch": true`` in its auth
message gets what waits in its outbox as one JSON array of events, in order; a client that
does not gets every event alone, as before. Real center, broker and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from websockets.sync.client import ClientConnection, connect

from center.transport.push import auth_message
from tests.mqtt_helpers import Publisher, make_alert

N_ALERTS = 30


def _open(url: str, token: str, *, batch: bool) -> ClientConnection:
    ws = connect(url, open_timeout=5, legacy=True)
    ws.send(auth_message(token, batch=batch))
    assert json.loads(ws.recv(5))["type"] == "hello"
    return ws


def _read_until(ws: ClientConnection, want: set[str], last: str, deadline: float
                ) -> tuple[list[dict[str, Any]], int]:
    """Events in order until every alert id in ``want`` was seen and the ticket change of
    ``last``, and how many frames were arrays of more than one event."""
    events: list[dict[str, Any]] = []
    arrays = 0
    seen: set[str] = set()
    while not (want <= seen and events[-1]["type"] == "ticket"
               and events[-1]["data"]["last_alert_id"] == last):
        left = deadline - time.monotonic()
        assert left > 0, f"alerts never arrived: {sorted(want - seen)[:5]}"
        frame = json.loads(ws.recv(left))
        batch = frame if isinstance(frame, list) else [frame]
        arrays += isinstance(frame, list) and len(frame) > 1
        for event in batch:
            assert event["schema_version"] == 1 and "type" in event and "data" in event
            events.append(event)
            if event["type"] == "alert":
                seen.add(event["data"]["alert_id"])
    return events, arrays


def _order(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["data"].get("alert_id") or str(e["data"].get("last_alert_id")))
            for e in events if e["type"] in ("alert", "ticket")]


def test_a_client_that_asks_gets_arrays_in_order_one_that_does_not_gets_single_events(
        center, mqtt_broker):
    center.dispatched_case(mqtt_broker.port)  # the place's ticket is open: alerts attach
    token = center.token("op-01")
    batched = _open(center.ws_url, token, batch=True)
    single = _open(center.ws_url, token, batch=False)
    phone = _open(center.ws_url, center.token("w-0111"), batch=True)
    try:
        pub = Publisher(mqtt_broker.port)
        ids = [uuid.uuid4() for _ in range(N_ALERTS)]
        for alert_id in ids:
            pub.alert(make_alert("new", alert_id=alert_id, snapshot=False))
        pub.close()
        want = {str(i) for i in ids}
        deadline = time.monotonic() + 30
        got_batched, arrays = _read_until(batched, want, str(ids[-1]), deadline)
        got_single, single_arrays = _read_until(single, want, str(ids[-1]), deadline)
    finally:
        for ws in (batched, single):
            ws.close()
    # Each alert is pushed with its ticket change in one go, so the batched wall got arrays;
    # the other wall never did, and both saw the same events in the same order.
    assert arrays >= 1 and single_arrays == 0
    assert _order(got_batched) == _order(got_single)
    assert [e["data"]["alert_id"] for e in got_batched if e["type"] == "alert"] == [
        str(i) for i in ids]
    # The worker's phone gets its ticket's changes (touches: no notification row) in order.
    try:
        last = str(ids[-1])
        deadline = time.monotonic() + 30
        tickets: list[dict[str, Any]] = []
        while not tickets or str(tickets[-1]["data"]["last_alert_id"]) != last:
            left = deadline - time.monotonic()
            assert left > 0, "the phone never got the last alert's ticket change"
            frame = json.loads(phone.recv(left))
            tickets += [e for e in (frame if isinstance(frame, list) else [frame])
                        if e["type"] == "ticket"]
    finally:
        phone.close()
    counts = [t["data"]["alert_count"] for t in tickets]
    assert counts == sorted(counts) and counts[-1] == N_ALERTS + 1
    assert all("notification_id" not in t["data"] for t in tickets[1:])
