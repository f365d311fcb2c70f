"""The center against a real broker and database: store, dedupe, dead-letter, route, push."""

from __future__ import annotations

import json
import uuid

import psycopg

from tests import plain_http
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from wire.protocol import alert_topic


def _count(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchone()[0]


def test_alert_is_stored_once_and_dispatched_to_the_owner(center: RunningCenter, mqtt_broker):
    pub = Publisher(mqtt_broker.port)
    alert = make_alert()
    with center.ws("w-0111") as ws:
        assert json.loads(ws.recv(5))["type"] == "hello"
        for _ in range(3):  # QoS 1 redelivery looks exactly like this
            pub.alert(alert)
        event = json.loads(ws.recv(10))
    pub.close()
    assert event["type"] == "ticket"
    ticket = event["data"]
    assert ticket["assignee_id"] == "w-0111" and ticket["state"] == "dispatched"
    assert ticket["camera_id"] == "cam-vn-01" and ticket["event_type"] == "0506"
    assert ticket["allowed_actions"] == ["accept", "return"]

    dsn = center.settings.db.dsn
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM alerts") == 1, what="alert row")
    alerts = center.client("op-01").get("/api/v1/alerts").json()
    assert len(alerts) == 1 and alerts[0]["alert_id"] == str(alert.alert_id)
    assert alerts[0]["ticket_id"] == ticket["id"]
    snap = center.client("op-01").get(alerts[0]["snapshot_url"])
    assert snap.status_code == 200 and snap.content == alert.snapshot_jpeg
    detail = center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json()
    assert [e["action"] for e in detail["events"]] == ["register", "dispatch"]


def test_repeat_alerts_for_one_place_attach_to_one_ticket(center: RunningCenter, mqtt_broker):
    pub = Publisher(mqtt_broker.port)
    for _ in range(4):
        pub.alert(make_alert())
    pub.alert(make_alert(zone_id="other-zone"))
    pub.close()
    dsn = center.settings.db.dsn
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM alerts") == 5, what="5 alerts")
    tickets = center.client("op-01").get("/api/v1/tickets?open=true").json()
    by_zone = {t["zone_id"]: t["alert_count"] for t in tickets}
    assert by_zone == {"pavement-east": 4, "other-zone": 1}


def test_malformed_messages_go_to_dead_letters_and_ingest_goes_on(center: RunningCenter,
                                                                   mqtt_broker):
    pub = Publisher(mqtt_broker.port)
    topic = alert_topic("edge-demo", "cam-vn-01")
    good = make_alert()
    bad_payloads = [
        b"not json",
        b"\xff\xfe\x00garbage",
        json.dumps({"schema_version": 2}).encode(),
        make_alert().model_dump_json().replace('"0506"', '"9999"').encode(),  # unknown code
        make_alert().model_dump_json().replace('"snapshot_jpeg":"',
                                               '"snapshot_jpeg":"QUJD').encode(),
    ]
    for p in bad_payloads:
        pub.send(topic, p)
    pub.send(alert_topic("edge-x", "cam-vn-01"), good.model_dump_json())  # topic mismatch
    pub.alert(good)
    pub.close()
    dsn = center.settings.db.dsn
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM alerts") == 1, what="good alert")
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM dead_letters") == 6, what="6 dead letters")
    with psycopg.connect(dsn) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
    assert "Invalid JSON" in reasons[0]
    assert "schema_version" in reasons[2]
    assert "unknown event_type 9999" in reasons[3]
    assert "snapshot_jpeg" in reasons[4]
    assert "published under edge-x/cam-vn-01" in reasons[5]
    assert plain_http.get(center.url + "/healthz").json()["status"] == "ok"


def test_worker_accepts_resolves_and_camera_end_closes(center: RunningCenter, mqtt_broker):
    pub = Publisher(mqtt_broker.port)
    alert = make_alert()
    pub.alert(alert)
    ticket = wait_until(lambda: center.client("op-01").get("/api/v1/tickets?open=true").json(),
                        what="ticket")[0]
    url = f"{center.url}/api/v1/tickets/{ticket['id']}/actions"

    refused = center.client("w-0111").post(url, json={"action": "resolve"})
    assert refused.status_code == 409 and "not allowed in state 'dispatched'" in refused.text
    other = center.client("w-0121").post(url, json={"action": "accept"})
    assert other.status_code == 403
    # An operator cannot act as the worker: the token decides who acts, a body does not.
    r = center.client("op-01").post(url, json={"action": "accept", "actor_id": "w-0111"})
    assert r.status_code == 422 and "actor_id is no longer accepted" in r.text
    assert center.client("w-0111").post(url, json={}).status_code == 422
    assert center.client("w-0111").post("/api/v1/tickets/999999/actions",
                      json={"action": "accept"}).status_code == 404

    r = center.client("w-0111").post(url, json={"action": "accept"})
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    r = center.client("w-0111").post(url, json={"action": "resolve", "note": "moved"})
    assert r.json()["state"] == "handled"

    pub.alert(make_alert("end", alert_id=alert.alert_id, seq=1, snapshot=False))
    pub.close()
    verified = wait_until(
        lambda: (t := center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json())["state"]
        == "verified" and t, what="camera-verified fix")
    assert [e["action"] for e in verified["events"]] == [
        "register", "dispatch", "accept", "resolve", "verify"]
    assert verified["events"][-1]["actor_id"] == "camera:cam-vn-01"
    # The place is free again: a new violation there opens a new ticket.
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())
    pub.close()
    wait_until(lambda: len(center.client("op-01").get("/api/v1/tickets?open=true").json()) == 1,
               what="second ticket")


def test_camera_status_reaches_api_and_wall(center: RunningCenter, mqtt_broker):
    from datetime import UTC, datetime

    from wire.protocol import CameraStatus, EdgeStatus, camera_status_topic, edge_status_topic

    pub = Publisher(mqtt_broker.port)
    with center.ws("op-01") as ws:
        ws.recv(5)
        st = CameraStatus(edge_id="edge-demo", camera_id="cam-bj-01", state="online",
                          at=datetime.now(UTC))
        pub.send(camera_status_topic("edge-demo", "cam-bj-01"), st.model_dump_json())
        ev = json.loads(ws.recv(10))
        assert ev["type"] == "camera_status" and ev["data"]["state"] == "online"
        pub.send(edge_status_topic("edge-demo"),
                 EdgeStatus(edge_id="edge-demo", state="offline").model_dump_json())
        ev = json.loads(ws.recv(10))
        assert ev["data"]["id"] == "cam-bj-01" and ev["data"]["state"] == "offline"
    pub.close()
    cams = {c["id"]: c for c in center.client("op-01").get("/api/v1/cameras").json()}
    assert cams["cam-bj-01"]["state"] == "offline"
    assert cams["cam-vn-01"]["state"] == "unknown"
    assert cams["cam-bj-01"]["micro_grid_id"] == "mg-012"


def test_unique_ids_never_collide():
    assert make_alert().alert_id != make_alert().alert_id
    assert uuid.UUID(str(make_alert().alert_id)).version == 4
