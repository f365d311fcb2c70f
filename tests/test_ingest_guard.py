"""Issue 11: one message can never stop the ingest, and an edge speaks only for its own cameras.

Everything goes through the real broker into the real center (``Ingest.run`` consuming from
Mosquitto); "nothing else happened" is always shown by a later message's effect, never by a
sleep.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg

from simulators.center_process import start_center, stop_center
from simulators.local_services import Mosquitto, free_port
from tests import plain_http
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from wire.protocol import (
    Alert,
    CameraStatus,
    alert_topic,
    camera_status_topic,
)


def _rows(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def _stored(dsn: str, alert: Alert) -> bool:
    return bool(_rows(dsn, "SELECT 1 FROM alerts WHERE alert_id = %s", alert.alert_id))


def _dead(dsn: str) -> list[tuple[str, str]]:
    return [(t, r) for t, r in _rows(dsn, "SELECT topic, reason FROM dead_letters ORDER BY id")]


def _publish_then_marker(pub: Publisher, dsn: str, *messages: tuple[str, bytes | str]) -> None:
    """Publish ``messages``, then a valid alert (at a place of its own); return once that alert
    is stored (so every message before it, on the same connection, has been handled)."""
    for topic, payload in messages:
        pub.send(topic, payload)
    marker = make_alert(zone_id="marker")
    pub.alert(marker)
    wait_until(lambda: _stored(dsn, marker), 20, "the marker alert after them")


def _nul_status() -> bytes:
    return json.dumps({"schema_version": 1, "edge_id": "edge-demo", "camera_id": "cam-bj-01",
                       "state": "online", "at": datetime.now(UTC).isoformat(),
                       "detail": "ok\u0000nul"}).encode()


def test_a_nul_status_is_dead_lettered_and_never_redelivered(db_dsn: str, mqtt_broker: Mosquitto,
                                                             tmp_path: Path) -> None:
    """Used to stop all ingest (DataError out of the loop, never acknowledged, redelivered
    after every restart). Now: dead-lettered with the reason, later messages stored, and after
    a restart of the center (same persistent session) it does not come back."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GRIDWATCH_DB__DSN": db_dsn, "GRIDWATCH_MQTT__PORT": str(mqtt_broker.port),
           "GRIDWATCH_MQTT__CLIENT_ID": f"center-{uuid.uuid4().hex[:8]}",
           "GRIDWATCH_HTTP__PORT": str(port)}
    topic = camera_status_topic("edge-demo", "cam-bj-01")
    proc = start_center(env, url, tmp_path / "center.log")
    pub = Publisher(mqtt_broker.port)
    try:
        _publish_then_marker(pub, db_dsn, (topic, _nul_status()))
        [(dead_topic, reason)] = _dead(db_dsn)
        assert dead_topic == topic and "NUL" in reason, reason
        health = plain_http.get(url + "/healthz").json()
        assert health["status"] == "ok" and health["ingest"]["dead_letters"] == 1, health
        stop_center(proc)
        proc = start_center(env, url, tmp_path / "center.log")
        # Had the broker kept it, it would come again before this marker (same session).
        _publish_then_marker(pub, db_dsn)
        assert len(_dead(db_dsn)) == 1
    finally:
        pub.close()
        stop_center(proc)


def test_healthz_and_metrics_show_a_stalled_ingest(db_dsn: str, mqtt_broker: Mosquitto) -> None:
    """A long transaction holds the lock the ingest needs (an open psql session, say): the
    database answers and the broker is connected, yet nothing is stored. /healthz says so."""
    settings = center_settings_for(db_dsn, mqtt_broker.port, ingest_stall_after_s=1.0)
    with serve_center(settings) as center:
        pub = Publisher(mqtt_broker.port)
        pub.alert(make_alert())
        tickets = wait_until(lambda: _rows(db_dsn, "SELECT id FROM tickets"), what="a ticket")
        with psycopg.connect(db_dsn) as holder:
            holder.execute("SELECT 1 FROM tickets WHERE id = %s FOR UPDATE", tickets[0])
            pub.alert(make_alert())  # the same place: its attach waits for that lock

            def stalled() -> httpx.Response | None:
                r = plain_http.get(center.url + "/healthz")
                return r if r.status_code == 503 else None

            body = wait_until(stalled, 15, "/healthz 503").json()
            assert body["database"] and body["mqtt"], body
            assert len(body["problems"]) == 1 and "ingest stalled" in body["problems"][0], body
            assert body["ingest_progress"]["in_hand"] == 1, body
            assert body["ingest_progress"]["in_hand_s"] > 1.0, body
            metrics = plain_http.get(center.url + "/metrics").text
            assert "gridwatch_ingest_stalled 1.0" in metrics
            assert "gridwatch_ingest_in_hand_messages 1.0" in metrics
            holder.rollback()
        wait_until(lambda: plain_http.get(center.url + "/healthz").status_code == 200, 15,
                   "/healthz 200 again")
        assert _rows(db_dsn, "SELECT count(*) FROM alerts") == [(2,)]
        pub.close()


def _at(year: int, hours: int = 0) -> datetime:
    return datetime(year, 12 if year > 2000 else 1, 31 if year > 2000 else 1, 12,
                    tzinfo=timezone(timedelta(hours=hours)))


def test_event_times_far_from_the_centers_clock_are_dead_lettered(center: RunningCenter,
                                                                   mqtt_broker: Mosquitto) -> None:
    """Year 9999, year 1, and -14:00 offsets used to be stored and then made GET
    /api/v1/alerts answer 500 (the wall's live panel empty) until the row was deleted."""
    now = datetime.now(UTC)
    far = [
        make_alert().model_copy(update={"started_at": _at(9999, -14),
                                        "last_seen_at": _at(9999, -14)}),
        make_alert().model_copy(update={"started_at": _at(1, 14), "last_seen_at": _at(1, 14)}),
        make_alert().model_copy(update={"started_at": _at(1899, -14), "last_seen_at": now}),
        make_alert().model_copy(update={"started_at": now + timedelta(days=2),
                                        "last_seen_at": now + timedelta(days=2)}),
        make_alert().model_copy(update={"started_at": now - timedelta(days=8),
                                        "last_seen_at": now - timedelta(days=8)}),
    ]
    pub = Publisher(mqtt_broker.port)
    dsn = center.settings.db.dsn
    _publish_then_marker(pub, dsn, *[(alert_topic(a.edge_id, a.camera_id), a.model_dump_json())
                                     for a in far])
    pub.close()
    reasons = [r for _, r in _dead(dsn)]
    assert len(reasons) == 5, reasons
    assert "ahead of the center's clock" in reasons[0]
    assert "before the center's clock" in reasons[1]
    assert "started_at is more than" in reasons[2]
    assert "ahead of the center's clock" in reasons[3]
    assert "before the center's clock" in reasons[4]
    r = center.client("op-01").get("/api/v1/alerts")
    assert r.status_code == 200 and len(r.json()) == 1, r.text


def test_a_resent_key_with_other_content_keeps_the_first_and_is_counted(
        center: RunningCenter, mqtt_broker: Mosquitto) -> None:
    first = make_alert()
    other_score = first.model_copy(update={"score": 0.3})
    other_time = first.model_copy(update={"last_seen_at": first.last_seen_at
                                          + timedelta(seconds=5)})
    same = first.model_copy(update={"snapshot_jpeg": None})  # an outbox may strip the picture
    pub = Publisher(mqtt_broker.port)
    dsn = center.settings.db.dsn
    pub.alert(first)
    wait_until(lambda: _stored(dsn, first), what="the first copy")
    _publish_then_marker(pub, dsn, *[(alert_topic("edge-demo", "cam-vn-01"), a.model_dump_json())
                                     for a in (other_score, other_time, first, same)])
    pub.close()
    [(score, observed_at)] = _rows(dsn, "SELECT score, observed_at FROM alerts"
                                        " WHERE alert_id = %s", first.alert_id)
    assert abs(score - first.score) < 1e-6 and observed_at == first.last_seen_at
    reasons = [r for _, r in _dead(dsn)]
    assert len(reasons) == 2 and all("stored before with other content" in r for r in reasons)
    health = plain_http.get(center.url + "/healthz").json()["ingest"]
    assert health["conflicts"] == 2 and health["duplicates"] == 2, health
    assert "gridwatch_ingest_conflicts_total 2.0" in plain_http.get(center.url + "/metrics").text


def test_a_huge_dead_letter_keeps_a_prefix_its_size_and_hash(center: RunningCenter,
                                                             mqtt_broker: Mosquitto) -> None:
    from center.store.alerts import DEAD_LETTER_PAYLOAD_MAX

    huge = b"x" * (DEAD_LETTER_PAYLOAD_MAX * 3 + 7)
    pub = Publisher(mqtt_broker.port)
    dsn = center.settings.db.dsn
    _publish_then_marker(pub, dsn, (alert_topic("edge-demo", "cam-vn-01"), huge))
    pub.close()
    [(stored, size, digest)] = _rows(
        dsn, "SELECT octet_length(payload), payload_size, payload_sha256 FROM dead_letters")
    assert stored == DEAD_LETTER_PAYLOAD_MAX and size == len(huge)
    assert bytes(digest) == hashlib.sha256(huge).digest()


def test_an_edge_speaks_only_for_its_own_cameras(center: RunningCenter,
                                                 mqtt_broker: Mosquitto) -> None:
    """edge-sim's cameras are cam-sim-*; cam-vn-01 and cam-bj-01 belong to edge-demo."""
    dsn = center.settings.db.dsn
    forged = make_alert(edge_id="edge-sim")
    frozen = CameraStatus(edge_id="edge-sim", camera_id="cam-bj-01", state="frozen",
                          at=datetime.now(UTC))
    own = make_alert(edge_id="edge-sim", camera_id="cam-sim-12", zone_id="sim-pavement")
    pub = Publisher(mqtt_broker.port)
    _publish_then_marker(pub, dsn,
                         (alert_topic("edge-sim", "cam-vn-01"), forged.model_dump_json()),
                         (camera_status_topic("edge-sim", "cam-bj-01"), frozen.model_dump_json()),
                         (alert_topic("edge-sim", "cam-sim-12"), own.model_dump_json()))
    assert _stored(dsn, own) and not _stored(dsn, forged)
    assert sorted(r for _, r in _dead(dsn)) == [
        "camera cam-bj-01 is given to edge-demo, not to edge edge-sim",
        "camera cam-vn-01 is given to edge-demo, not to edge edge-sim"]
    cams = {c["id"]: c for c in center.client("op-01").get("/api/v1/cameras").json()}
    assert cams["cam-bj-01"]["state"] == "unknown"
    pub.close()


def test_only_the_end_of_the_opening_violation_verifies(center: RunningCenter,
                                                        mqtt_broker: Mosquitto) -> None:
    """A worker "resolves" without fixing; an ``end`` from another edge, or of another alert
    id (made up) from the right one, must not verify the case. The end of the alert that
    opened it does."""
    dsn = center.settings.db.dsn
    pub = Publisher(mqtt_broker.port)
    opening = make_alert()
    pub.alert(opening)
    ticket = wait_until(lambda: center.client("op-01").get("/api/v1/tickets?open=true").json(),
                        what="ticket")[0]
    url = f"/api/v1/tickets/{ticket['id']}"
    for action in ("accept", "resolve"):
        r = center.client("w-0111").post(url + "/actions",
                                         json={"action": action})
        assert r.status_code == 200, r.text
    foreign = make_alert("end", alert_id=opening.alert_id, seq=1, edge_id="edge-sim",
                         snapshot=False)
    made_up = make_alert("end", snapshot=False)
    _publish_then_marker(pub, dsn, (alert_topic("edge-sim", "cam-vn-01"),
                                    foreign.model_dump_json()),
                         (alert_topic("edge-demo", "cam-vn-01"), made_up.model_dump_json()))
    detail = center.client("op-01").get(url).json()
    assert detail["state"] == "handled"
    assert detail["events"][-1]["action"] == "camera_clear", detail["events"]
    assert "not a verification" in detail["events"][-1]["note"]
    assert [r for _, r in _dead(dsn)] == [
        "camera cam-vn-01 is given to edge-demo, not to edge edge-sim"]
    pub.alert(make_alert("end", alert_id=opening.alert_id, seq=1, snapshot=False))
    verified = wait_until(lambda: (t := center.client("op-01").get(url).json())["state"]
                          == "verified" and t, what="verified by the opening alert's end")
    assert verified["events"][-1]["alert_id"] == str(opening.alert_id)
    pub.close()
