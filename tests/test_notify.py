"""Notifications against real services: PostgreSQL, Mosquitto, the running center, its
websocket, and a real HTTP receiver on a loopback port standing in for webhooks and robots."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from center.platform.settings import DingTalkTarget, NotifierSettings
from center.services.notify.formats import build, dingtalk_sign, event_of
from center.transport.push import _read_receipt
from simulators.local_services import free_port
from tests import plain_http
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.mqtt_helpers import Publisher, make_alert
from tests.waiting import wait_until

DING_SECRET = "SEC0123456789abcdef"
HOOK_SECRET = "hook-secret"


# --- a receiver that records requests and fails on demand -------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST. ``fail_first`` answers the next N
    with 500, ``down`` answers all with 500; paths starting ``/slow`` hang for a second."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0
        self.down = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                with receiver.lock:
                    receiver.requests.append({
                        "path": url.path, "query": parse_qs(url.query),
                        "headers": dict(self.headers), "body": body,
                        "json": json.loads(body), "at": time.monotonic()})
                    fail = receiver.down or receiver.fail_first > 0
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                if url.path.startswith("/slow"):
                    time.sleep(1.0)  # the receiver under test is slow: its behaviour, not a wait
                answer = (b'{"error":"down"}' if fail else b'{"errcode":0,"errmsg":"ok"}')
                with contextlib.suppress(OSError):
                    self.send_response(500 if fail else 200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@contextlib.contextmanager
def running_center(db_dsn: str, mqtt_port: int, notifiers: dict[str, Any]
                   ) -> Iterator[RunningCenter]:
    """The real center with these notifier settings (milliseconds of backoff unless given)."""
    notify = NotifierSettings.model_validate({"backoff_s": 0.05, "backoff_factor": 2.0}
                                             | notifiers)
    with serve_center(center_settings_for(db_dsn, mqtt_port, notifiers=notify)) as running:
        yield running


def _rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def _outbound_done(dsn: str, at_least: int) -> list[str] | None:
    """The notifiers of the outbound notification rows once there are ``at_least`` of them
    and none is still pending (each was attempted), else None."""
    rows = _rows(dsn, "SELECT notifier, status FROM notifications WHERE channel <> 'ws'")
    if len(rows) < at_least or any(status == "pending" for _, status in rows):
        return None
    return [notifier for notifier, _ in rows]


def _recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(ws.recv(timeout))


def _ws_clients(center: RunningCenter) -> int:
    return center.client().get("/healthz").json()["websocket_clients"]


def _ticket_event(ws: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = _recv(ws, max(0.1, deadline - time.monotonic()))
        if event["type"] == "ticket":
            return event


# --- outbound notifiers -----------------------------------------------------------------------


def test_webhook_wecom_and_dingtalk_bodies(db_dsn, mqtt_broker, receiver: Receiver) -> None:
    targets = [
        {"type": "webhook", "url": receiver.url("/hook"), "secret": HOOK_SECRET,
         "headers": {"Authorization": "Bearer t"}},
        {"type": "wecom", "url": receiver.url("/wecom?key=k-1")},
        {"type": "dingtalk", "url": receiver.url("/ding?access_token=tok"),
         "secret": DING_SECRET, "events": ["new", "escalated"]},
        {"type": "webhook", "name": "rework-only", "url": receiver.url("/rework"),
         "events": ["rework"]},
    ]
    with running_center(db_dsn, mqtt_broker.port, {"targets": targets}) as center:
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        pub.close()
        dsn = center.settings.db.dsn
        # Witness: a change's outbound rows are written in one transaction, each row is sent
        # before it leaves 'pending'; once three exist and none is pending, every request this
        # change makes has reached the receiver (a /rework one included, were it made).
        notifiers = wait_until(lambda: _outbound_done(dsn, 3), what="three outbound sent")
        (ticket_id,), = _rows(dsn, "SELECT id FROM tickets")

    assert sorted(notifiers) == ["dingtalk", "webhook", "wecom"]
    assert receiver.at("/rework") == []
    hook, = receiver.at("/hook")
    body = hook["json"]
    assert body["event"] == "new" and body["reason"] == "new"
    assert body["recipients"] == {"w-0111": "new"}
    assert body["ticket"]["id"] == ticket_id and body["ticket"]["assignee_id"] == "w-0111"
    assert body["ticket"]["event_type"] == "0506" and "notify" not in body["ticket"]
    assert hook["headers"]["X-Gridwatch-Event"] == "new"
    assert hook["headers"]["Authorization"] == "Bearer t"
    expected = hmac.new(HOOK_SECRET.encode(), hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Gridwatch-Signature"] == f"sha256={expected}"

    wecom, = receiver.at("/wecom")
    assert wecom["query"] == {"key": ["k-1"]}
    assert set(wecom["json"]) == {"msgtype", "markdown"} and wecom["json"]["msgtype"] == "markdown"
    content = wecom["json"]["markdown"]["content"]
    assert set(wecom["json"]["markdown"]) == {"content"}
    assert f"#{ticket_id}" in content and "0506" in content and "w-0111" in content

    ding, = receiver.at("/ding")
    assert ding["json"]["msgtype"] == "markdown"
    md = ding["json"]["markdown"]
    assert set(md) == {"title", "text"} and f"#{ticket_id}" in md["title"]
    assert "0506" in md["text"]
    q = ding["query"]
    assert q["access_token"] == ["tok"]
    ts = int(q["timestamp"][0])
    assert abs(ts - time.time() * 1000) < 60_000
    mac = hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256)
    assert q["sign"][0] == base64.b64encode(mac.digest()).decode()  # parse_qs url-decoded it

    attempts = _rows(dsn, "SELECT notifier, attempt, ok, status_code FROM notification_attempts"
                          " ORDER BY notifier")
    assert attempts == [("dingtalk", 1, True, 200), ("webhook", 1, True, 200),
                        ("wecom", 1, True, 200)]
    statuses = _rows(dsn, "SELECT channel, status FROM notifications WHERE channel <> 'ws'"
                          " ORDER BY channel")
    assert statuses == [("dingtalk", "delivered"), ("webhook", "delivered"),
                        ("wecom", "delivered")]


def test_failing_receiver_is_retried_with_backoff_then_succeeds(db_dsn, mqtt_broker,
                                                                receiver: Receiver) -> None:
    receiver.fail_first = 2
    targets = [{"type": "webhook", "url": receiver.url("/hook")}]
    with running_center(db_dsn, mqtt_broker.port,
                        {"targets": targets, "max_attempts": 4, "backoff_s": 0.2}) as center:
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        pub.close()
        dsn = center.settings.db.dsn
        wait_until(lambda: _rows(dsn, "SELECT status FROM notifications WHERE channel ="
                                      " 'webhook'") == [("delivered",)], what="delivered")
        attempts = _rows(dsn, "SELECT attempt, ok, status_code, error, response"
                              " FROM notification_attempts ORDER BY attempt")
        (count,), = _rows(dsn, "SELECT attempts FROM notifications WHERE channel = 'webhook'")
    assert [a[:3] for a in attempts] == [(1, False, 500), (2, False, 500), (3, True, 200)]
    assert attempts[0][3] == "HTTP 500" and '"down"' in attempts[0][4]
    assert count == 3
    hits = receiver.at("/hook")
    assert len(hits) == 3 and hits[0]["body"] == hits[2]["body"]  # the same stored payload
    gaps = [b["at"] - a["at"] for a, b in pairwise(hits)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then 0.2 * 2


def test_notifier_that_stays_down_fails_without_slowing_ingest(db_dsn, mqtt_broker,
                                                               receiver: Receiver) -> None:
    receiver.down = True
    dead = f"http://127.0.0.1:{free_port()}/nobody"  # connection refused
    targets = [
        {"type": "webhook", "name": "down", "url": receiver.url("/hook")},
        {"type": "wecom", "name": "refused", "url": dead},
        {"type": "dingtalk", "name": "hangs", "url": receiver.url("/slow"), "timeout_s": 0.3},
    ]
    with running_center(db_dsn, mqtt_broker.port,
                        {"targets": targets, "max_attempts": 3}) as center:
        dsn = center.settings.db.dsn
        with center.ws("w-0111") as ws:
            assert _recv(ws, 5)["type"] == "hello"
            pub = Publisher(mqtt_broker.port)
            started = time.monotonic()
            for i in range(5):
                pub.alert(make_alert(zone_id=f"zone-{i}"))
            got = {_ticket_event(ws, 5)["data"]["zone_id"] for _ in range(5)}
            elapsed = time.monotonic() - started
            pub.close()
        assert got == {f"zone-{i}" for i in range(5)}
        assert elapsed < 3, f"five alerts took {elapsed:.1f}s to reach the phone"
        assert plain_http.get(center.url + "/healthz").json()["status"] == "ok"
        wait_until(lambda: _rows(dsn, "SELECT count(*) FROM notifications WHERE channel <> 'ws'"
                                      " AND status = 'failed'") == [(15,)],
                   timeout=20, what="15 failed notifications")
        rows = _rows(dsn, "SELECT notifier, count(*), bool_or(ok), max(attempt),"
                          " min(coalesce(status_code, 0)), min(error)"
                          " FROM notification_attempts GROUP BY notifier ORDER BY notifier")
        (alerts,), = _rows(dsn, "SELECT count(*) FROM alerts")
    assert alerts == 5
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["down"][:4] == (15, False, 3, 500)
    assert by_name["refused"][:4] == (15, False, 3, 0) and "ConnectError" in by_name["refused"][4]
    assert by_name["hangs"][:4] == (15, False, 3, 0) and "Timeout" in by_name["hangs"][4]


def test_pending_notifications_are_sent_after_a_restart(db_dsn, mqtt_broker,
                                                        receiver: Receiver) -> None:
    receiver.down = True
    targets = [{"type": "webhook", "url": receiver.url("/hook")}]
    notifiers = {"targets": targets, "max_attempts": 4, "backoff_s": 600}
    with running_center(db_dsn, mqtt_broker.port, notifiers) as center:
        dsn = center.settings.db.dsn
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        pub.close()
        wait_until(lambda: _rows(dsn, "SELECT count(*) FROM notification_attempts") == [(1,)],
                   what="first attempt")
    (status, next_at), = _rows(dsn, "SELECT status, next_attempt_at FROM notifications"
                                    " WHERE channel = 'webhook'")
    assert status == "pending" and (next_at - datetime.now(UTC)).total_seconds() > 500
    # Ten minutes pass while the center is down, and the receiver comes back.
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE notifications SET next_attempt_at = now() WHERE channel <> 'ws'")
    receiver.down = False
    with running_center(db_dsn, mqtt_broker.port, notifiers):
        wait_until(lambda: _rows(dsn, "SELECT status, attempts FROM notifications"
                                      " WHERE channel = 'webhook'") == [("delivered", 2)],
                   what="delivered after restart")
    attempts = _rows(dsn, "SELECT attempt, status_code FROM notification_attempts ORDER BY id")
    assert attempts == [(1, 500), (2, 200)]


# --- the phone websocket ----------------------------------------------------------------------


def test_phone_delivery_and_read_receipts(db_dsn, mqtt_broker) -> None:
    with running_center(db_dsn, mqtt_broker.port, {}) as center:
        dsn = center.settings.db.dsn
        with center.ws("op-01") as wall, \
                center.ws("w-0111") as phone, \
                center.ws("w-0112") as other:
            for ws in (wall, phone, other):
                assert _recv(ws, 5)["type"] == "hello"
            pub = Publisher(mqtt_broker.port)
            pub.alert(make_alert())
            pub.close()
            event = _ticket_event(phone)["data"]
            nid = event["notification_id"]
            assert event["reason"] == "new" and event["notification_ids"] == [nid]
            assert event["assignee_id"] == "w-0111"
            wall_event = _ticket_event(wall)["data"]
            assert wall_event["id"] == event["id"] and "notification_id" not in wall_event

            def row() -> list[tuple]:
                return _rows(dsn, "SELECT person_id, ticket_id, reason, channel, created_at,"
                                  " delivered_at, read_at FROM notifications")

            wait_until(lambda: row()[0][5] is not None, what="delivered_at")
            (person, ticket_id, reason, channel, created, delivered, read), = row()
            assert (person, ticket_id, reason, channel) == ("w-0111", event["id"], "new", "ws")
            assert delivered >= created and read is None

            # Another person's phone cannot acknowledge it; junk is ignored. Witness: the other
            # phone hangs up after its attempt, and once the center has counted it out it has
            # read (and queued) everything that phone sent; receipts are written in the order
            # queued, so the real one sent after that is written after any wrong one would be.
            other.send(json.dumps({"type": "read", "notification_id": nid}))
            phone.send("not json")
            phone.send(json.dumps({"type": "read", "notification_id": "x"}))
            other.close()
            wait_until(lambda: _ws_clients(center) == 2, what="the other phone counted out")
            before_real = datetime.now(UTC)
            phone.send(json.dumps({"type": "read", "notification_id": nid}))
            read_at = wait_until(lambda: row()[0][6], what="read_at")
            assert read_at >= before_real, "read by a receipt sent before the real one"

            # An action by the worker reaches their phone as an "update" notification, which
            # a ticket_id receipt acknowledges with everything else about that ticket.
            r = center.client("w-0111").post(f"/api/v1/tickets/{event['id']}/actions",
                           json={"action": "accept"})
            assert r.status_code == 200, r.text
            update = _ticket_event(phone)["data"]
            assert update["state"] == "accepted" and update["reason"] == "update"
            phone.send(json.dumps({"type": "read", "ticket_id": event["id"]}))
            wait_until(lambda: _rows(dsn, "SELECT count(*) FROM notifications"
                                          " WHERE read_at IS NULL") == [(0,)], what="all read")


def test_offline_person_gets_the_notification_when_the_phone_connects(db_dsn,
                                                                      mqtt_broker) -> None:
    with running_center(db_dsn, mqtt_broker.port, {}) as center:
        dsn = center.settings.db.dsn
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        pub.close()
        wait_until(lambda: _rows(dsn, "SELECT count(*) FROM notifications") == [(1,)],
                   what="notification row")
        (nid, delivered), = _rows(dsn, "SELECT id, delivered_at FROM notifications")
        assert delivered is None  # nobody's phone was there
        # ...and it stayed undelivered: the catch-up below re-sends only undelivered rows.

        with center.ws("w-0111") as phone:
            assert _recv(phone, 5)["type"] == "hello"
            data = _ticket_event(phone, 5)["data"]
            assert data["notification_id"] == nid and data["catch_up"] is True
            assert data["reason"] == "new" and data["assignee_id"] == "w-0111"
            wait_until(lambda: _rows(dsn, "SELECT delivered_at IS NOT NULL FROM notifications")
                       == [(True,)], what="delivered on reconnect")
        with center.ws("w-0111") as phone:
            assert _recv(phone, 5)["type"] == "hello"
            # Delivered once: nothing to catch up any more. Witness: a new case for this phone
            # is the first ticket it gets (a catch-up is sent before anything that follows).
            pub = Publisher(mqtt_broker.port)
            pub.alert(make_alert(zone_id="pavement-west"))
            pub.close()
            fresh = _ticket_event(phone)["data"]
            assert fresh["id"] != data["id"] and fresh["reason"] == "new", fresh


@pytest.mark.browser
def test_phone_page_sends_read_receipts(db_dsn, mqtt_broker, browser) -> None:
    """The real phone page (Debian chromium) acknowledges the card it shows."""
    from playwright.sync_api import expect

    from tests.browser import log_in

    with running_center(db_dsn, mqtt_broker.port, {}) as center:
        dsn = center.settings.db.dsn
        page = browser.new_page(viewport={"width": 390, "height": 844})
        log_in(page.context, center, "w-0111")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(center.url + "/phone?worker_id=w-0111")
        expect(page.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                             timeout=10_000)
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        pub.close()
        expect(page.locator(".ticket-card")).to_have_count(1, timeout=10_000)
        wait_until(lambda: _rows(dsn, "SELECT delivered_at IS NOT NULL, read_at IS NOT NULL"
                                      " FROM notifications") == [(True, True)],
                   what="delivered and read receipts from the page")
        page.context.close()
        assert errors == []


# --- units ------------------------------------------------------------------------------------


def test_read_receipt_parsing_and_event_names() -> None:
    assert _read_receipt('{"type": "read", "notification_id": 5}') == (5, None)
    assert _read_receipt('{"type": "read", "ticket_id": 7, "notification_id": 5}') == (5, 7)
    for junk in ("", "x", "[]", '{"type": "read"}', '{"type": "read", "notification_id": true}',
                 '{"type": "ping", "notification_id": 5}', '{"type": "read", "ticket_id": -1}',
                 '{"type": "read", "notification_id": 5, "pad": "' + "x" * 2000 + '"}'):
        assert _read_receipt(junk) is None, junk
    assert event_of("escalated (level 2)") == "escalated"
    assert event_of("extension requested") == "extension_requested"
    assert event_of("new") == "new"
    sig = dingtalk_sign("SECx", 1_700_000_000_000)
    mac = hmac.new(b"SECx", b"1700000000000\nSECx", hashlib.sha256).digest()
    assert sig == base64.b64encode(mac).decode()
    # A signature with '+' and '/' must survive URL encoding, next to the access_token.
    robot = DingTalkTarget(type="dingtalk", secret="SECx",
                           url="https://oapi.dingtalk.com/robot/send?access_token=t")
    ts = next(t for t in range(1_700_000_000_000, 1_700_000_001_000)
              if {"+", "/"} <= set(dingtalk_sign("SECx", t)))
    req = build(robot, {"event": "new", "reason": "new", "recipients": {}, "ticket": {"id": 1}}, ts)
    q = parse_qs(urlsplit(req.url).query)
    assert q == {"access_token": ["t"], "timestamp": [str(ts)], "sign": [dingtalk_sign("SECx", ts)]}


def test_notifier_file_and_validation(tmp_path) -> None:
    f = tmp_path / "notifiers.yaml"
    f.write_text("notifiers:\n"
                 "  - {type: wecom,"
                 " url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k'}\n"
                 "  - {type: dingtalk, name: ding-ops, url: 'https://oapi.dingtalk.com/robot/send"
                 "?access_token=t', secret: SECabc, events: [escalated]}\n")
    s = NotifierSettings(file=f, targets=[{"type": "webhook", "url": "http://h/x"}])
    assert [(t.name, t.type) for t in s.all_targets()] == [
        ("webhook", "webhook"), ("wecom", "wecom"), ("ding-ops", "dingtalk")]
    f.write_text("- {type: wecom, url: 'http://a/'}\n- {type: wecom, url: 'http://b/'}\n")
    with pytest.raises(ValueError, match="unique"):
        NotifierSettings(file=f).all_targets()
    f.write_text("- {type: wecom, url: 'http://a/', events: [neww]}\n")
    with pytest.raises(ValueError, match=r"notifiers\.yaml"):
        NotifierSettings(file=f).all_targets()
    with pytest.raises(ValueError, match="telegram"):
        NotifierSettings(targets=[{"type": "telegram", "url": "http://h/"}])
