"""Issue 16: a wall stays connected and current through an alert storm.

Real center, real Mosquitto, real PostgreSQL. A storm of several thousand alerts at ≥ 500/s
comes in over MQTT while one websocket client reads at a wall's pace (slower than the storm:
each message costs it a few milliseconds, as rendering does) and another reads nothing at
all. Before issue 16 the hub dropped the reading wall too (1013 once its 256-message queue
was outrun); now its outbox coalesces (center/transport/push.py): it stays connected, gets
``summary`` events, and ends with the ticket states the database has. The client that reads
nothing is closed once it has taken nothing for ``ws_stall_after_s``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from center.transport.push import auth_message
from tests.mqtt_helpers import close_client, make_alert
from tests.waiting import wait_until
from wire.protocol import alert_topic

CAMERAS = ("cam-vn-01", "cam-bj-01", "cam-vtest")  # the default district's cameras
PLACES = [(c, z, e) for c in CAMERAS for z in ("z1", "z2", "z3") for e in ("0506", "0504")]
STORM = 4000
RATE = 800.0  # alerts/s offered
#: What one message costs the reading client (a wall renders it): it reads 100 messages/s,
#: behind the storm's pushes even when a loaded box slows the center down.
READ_COST_S = 0.01
STALL_S = 3.0


@pytest.fixture
def center_settings() -> dict[str, Any]:
    # A 32-message outbox (coalescing from 16 waiting), so the storm outruns the reader on
    # any box; the shipped 256 only moves the point where it starts.
    return {"ws_stall_after_s": STALL_S, "ws_queue": 32}


class _Wall(threading.Thread):
    """Reads a wall's websocket at a wall's pace; keeps the newest copy of each ticket (as
    wall.js does with ``newer``), counts summaries; notes how the socket closed, if it did."""

    def __init__(self, ws: Any) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.tickets: dict[int, dict[str, Any]] = {}
        self.messages = 0
        self.summaries: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    text = self.ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                self.messages += 1
                msg = json.loads(text)
                if msg["type"] == "ticket":
                    self._keep(msg["data"])
                elif msg["type"] == "summary":
                    self.summaries.append(msg["data"])
                time.sleep(READ_COST_S)
        except ConnectionClosed as exc:
            self.closed = exc

    def _keep(self, ticket: dict[str, Any]) -> None:
        held = self.tickets.get(ticket["id"])
        if held is None or (datetime.fromisoformat(ticket["updated_at"])
                            >= datetime.fromisoformat(held["updated_at"])):
            self.tickets[ticket["id"]] = ticket


@contextmanager
def _not_reading(url: str, token: str) -> Iterator[Any]:
    """A logged-in websocket that never reads, with a small receive buffer so the server's
    writes back up soon (a frozen screen on a slow link). The client library reads in a
    thread of its own until ``max_queue`` messages wait, then stops reading; no keepalive
    pings (it would give up on the unanswered pong itself)."""
    host, port = url.removeprefix("ws://").split("/", 1)[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    with connect(url, sock=sock, open_timeout=5, ping_interval=None, max_queue=1) as ws:
        ws.send(auth_message(token))
        yield ws


def _storm(port: int, n: int, rate: float) -> float:
    """Publish ``n`` new alerts over PLACES at ``rate``/s (QoS 1, not waiting per message);
    returns the rate achieved."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"storm-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        start = time.monotonic()
        for i in range(n):
            cam, zone, event_type = PLACES[i % len(PLACES)]
            alert = make_alert(camera_id=cam, zone_id=zone, event_type=event_type, snapshot=False)
            infos.append(client.publish(alert_topic(alert.edge_id, alert.camera_id),
                                        alert.model_dump_json(), qos=1))
            ahead = start + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the publisher, not waiting for an outcome
        achieved = n / (time.monotonic() - start)
        for info in infos:
            info.wait_for_publish(30)
        return achieved
    finally:
        close_client(client)


@contextmanager
def _still_coming(port: int, rate: float) -> Iterator[None]:
    """Alerts keep coming at ``rate``/s while the block runs, so messages keep waiting for a
    client that reads nothing: how soon its socket backs up depends on the kernel's buffers
    (the first storm alone did not fill them on a CI box), not on the hub."""
    done = threading.Event()

    def publish() -> None:
        while not done.is_set():
            _storm(port, 100, rate)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(30)


def _db_tickets(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT id, state FROM tickets").fetchall())


def _alert_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM alerts").fetchone()
        return int(row[0]) if row else 0


def test_wall_stays_connected_and_current_through_a_storm(center, mqtt_broker, db_dsn):
    hub = center.app.state.center.hub
    with center.ws("op-01") as ws, _not_reading(center.ws_url, center.token("op-01")):
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        wall = _Wall(ws)
        wall.start()
        wait_until(lambda: hub.client_count == 2, 10, "both screens registered")
        achieved = _storm(mqtt_broker.port, STORM, RATE)
        assert achieved >= 500, f"the storm came at only {achieved:.0f} alerts/s"
        wait_until(lambda: _alert_count(db_dsn) >= STORM, 120, "the storm stored")

        def current() -> bool:
            db = _db_tickets(db_dsn)
            seen = {tid: t["state"] for tid, t in wall.tickets.items()}
            return bool(db) and seen == db

        wait_until(current, 60, "the wall's tickets to match the database's")
        with _still_coming(mqtt_broker.port, RATE):
            wait_until(lambda: hub.dropped_clients >= 1, STALL_S + 60,
                       "the client that reads nothing to be dropped")
        assert wall.closed is None, f"the reading wall was closed: {wall.closed}"
        assert wall.is_alive()
        assert wall.summaries, "the wall was never coalescing (the storm did not outrun it)"
        assert hub.client_count == 1
        assert hub.dropped_clients == 1
        folded = sum(sum(s["folded"].values()) for s in wall.summaries)
        # Alerts the broker still held keep coming (and folding) while /metrics is read: the
        # metric lies between the hub's count before and after the read.
        folded_before = hub.folded_events
        metrics = {s.name: s.value for family in text_string_to_metric_families(
            center.client().get("/metrics").text) for s in family.samples}
        assert metrics["gridwatch_websocket_dropped_clients_total"] == 1
        assert metrics["gridwatch_websocket_coalesced_clients_total"] >= 1
        assert 0 < folded_before <= metrics["gridwatch_websocket_folded_events_total"] \
            <= hub.folded_events
        print(f"storm {achieved:.0f} alerts/s; wall read {wall.messages} messages,"
              f" {len(wall.summaries)} summaries, {folded} events folded")
        wall.stop.set()
        wall.join(5)


@pytest.mark.browser
# The small outbox, so a wall that falls behind coalesces; the shipped stall limit (20 s), not
# the 3 s the client that reads nothing is dropped after above: late in the full suite, on
# two loaded cores, this real page once took nothing for 3 s and was dropped, which the
# product, with its own limit, would not have done.
@pytest.mark.parametrize("center_settings", [{"ws_queue": 32}])
def test_chromium_wall_stays_online_and_current_through_a_storm(browser, center, mqtt_broker,
                                                               db_dsn):
    """The real wall page in Chromium through the same storm: its connection light never goes
    offline, and its open tickets end as the API has them (through coalescing, if it fell
    behind, and the reload a ``summary`` triggers)."""
    from playwright.sync_api import expect

    from tests.browser import new_page

    hub = center.app.state.center.hub
    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=15_000)
    page.evaluate("""() => {
      const light = document.getElementById('ws-status');
      window.offlineSeen = 0;
      new MutationObserver(() => { if (light.dataset.state !== 'online') window.offlineSeen++; })
        .observe(light, { attributes: true });
    }""")
    achieved = _storm(mqtt_broker.port, STORM, RATE)
    assert achieved >= 500, f"the storm came at only {achieved:.0f} alerts/s"
    wait_until(lambda: _alert_count(db_dsn) >= STORM, 120, "the storm stored")
    op = center.client("op-01")

    def current() -> bool:
        api = {str(t["id"]): t["state"]
               for t in op.get("/api/v1/tickets?open=true&limit=500").json()}
        shown = page.evaluate("""() => Object.fromEntries(
          [...window.gridwatchWall.state.tickets].map(([id, t]) => [id, t.state]))""")
        return bool(api) and shown == api

    wait_until(current, 60, "the wall's open tickets to match the API's")
    assert page.evaluate("() => window.offlineSeen") == 0, "the wall went offline in the storm"
    assert hub.dropped_clients == 0
    assert not errors, errors
    print(f"storm {achieved:.0f} alerts/s; the hub coalesced for {hub.coalesced_clients}"
          f" client(s), {hub.folded_events} events folded")
