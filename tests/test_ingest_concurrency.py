"""Batched ingest under concurrency: many publishers, duplicates, one place, and two centers
racing on one database. Real broker, real PostgreSQL, real center."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg

from center.services.alert_intake import _runs
from simulators.local_services import Mosquitto
from tests import plain_http
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.mqtt_helpers import Publisher, close_client, make_alert
from tests.waiting import wait_until
from wire.protocol import Alert, Heartbeat, alert_topic, heartbeat_topic

PUBLISHERS = 8
PER_PUBLISHER = 60


def _one(dsn: str, sql: str, *args: object) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _storm(port: int) -> tuple[set[uuid.UUID], int]:
    """8 paho clients in threads, started together, each publishing its own distinct ``new``
    alerts for ONE place twice, plus a few of its neighbour's (duplicates across clients).
    Returns the distinct alert ids and the number of messages sent."""
    batches = [[make_alert(snapshot=False) for _ in range(PER_PUBLISHER)]
               for _ in range(PUBLISHERS)]
    start = threading.Barrier(PUBLISHERS)
    sent = [0] * PUBLISHERS

    def publish(i: int) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"storm-{i}")
        client.connect("127.0.0.1", port)
        client.loop_start()
        mine = batches[i]
        theirs = batches[(i + 1) % PUBLISHERS][:10]
        start.wait()
        infos = []
        for alert in [*mine, *theirs, *mine]:  # every alert at least twice, interleaved
            infos.append(client.publish(alert_topic(alert.edge_id, alert.camera_id),
                                        alert.model_dump_json(), qos=1))
        for info in infos:
            info.wait_for_publish(20)
        sent[i] = len(infos)
        close_client(client)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return {a.alert_id for b in batches for a in b}, sum(sent)


def _acked(center_url: str) -> int:
    """Messages the center has acknowledged (each after its batch committed)."""
    return plain_http.get(center_url + "/healthz").json()["ingest"]["acked"]


def _assert_one_ticket_per_place(dsn: str, distinct: set[uuid.UUID]) -> None:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT (alert_id, seq)),"
                            " count(*) FILTER (WHERE ticket_id IS NULL) FROM alerts").fetchone()
        assert rows == (len(distinct), len(distinct), 0)
        tickets = conn.execute("SELECT id, alert_count, state FROM tickets").fetchall()
        assert len(tickets) == 1, tickets
        ticket_id, alert_count, state = tickets[0]
        assert alert_count == len(distinct) and state == "dispatched"
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,))]
        assert actions == ["register", "dispatch"]
        stored = {r[0] for r in conn.execute("SELECT alert_id FROM alerts")}
        assert stored == distinct


def test_parallel_publishers_one_place_one_ticket(center: RunningCenter, mqtt_broker):
    distinct, sent = _storm(mqtt_broker.port)
    dsn = center.settings.db.dsn
    wait_until(lambda: plain_http.get(center.url + "/healthz").json()["ingest"]["received"] >= sent,
               timeout=30, what=f"{sent} messages received")
    _assert_one_ticket_per_place(dsn, distinct)
    stats = plain_http.get(center.url + "/healthz").json()["ingest"]
    assert stats["stored"] == len(distinct) and stats["duplicates"] == sent - len(distinct)
    assert stats["dead_letters"] == 0


@contextmanager
def _second_center(dsn: str, broker: Mosquitto) -> Iterator[str]:
    """Another center on the same database with its own MQTT session: it receives every
    message too, so each alert is stored and ticketed by two racing transactions."""
    with serve_center(center_settings_for(dsn, broker.port)) as second:
        yield second.url


def test_two_centers_racing_on_one_database_store_each_alert_once(center: RunningCenter,
                                                                   mqtt_broker):
    dsn = center.settings.db.dsn
    with _second_center(dsn, mqtt_broker) as second_url:
        distinct, sent = _storm(mqtt_broker.port)
        # Each center acknowledges a message only once the batch holding it has committed:
        # when both have acknowledged everything sent, neither has anything left to write.
        for url in (center.url, second_url):
            wait_until(lambda url=url: _acked(url) >= sent, timeout=30,
                       what=f"{sent} messages acknowledged by {url}")
    _assert_one_ticket_per_place(dsn, distinct)


def test_one_batch_keeps_the_order_of_a_place(center: RunningCenter, mqtt_broker):
    """update, new and end for a handled ticket's place in ONE batch do what they would do
    one by one: attach, rework (the fix did not hold), then only note the camera's clear."""
    pub = Publisher(mqtt_broker.port)
    first = make_alert()
    pub.alert(first)
    ticket = wait_until(lambda: center.client("op-01").get("/api/v1/tickets?open=true").json(),
                        what="ticket")[0]
    url = f"{center.url}/api/v1/tickets/{ticket['id']}/actions"
    for action in ("accept", "resolve"):
        r = center.client("w-0111").post(url, json={"action": action})
        assert r.status_code == 200

    ingest = center.app.state.ingest  # type: ignore[attr-defined]
    ingest.intake.batch_linger_s = 0.5  # this instance only: the burst below becomes one batch
    # The wait already in progress took the old setting: let one heartbeat end it.
    beat = Heartbeat(edge_id="edge-demo", at=datetime.now(UTC), cameras=1, frames_analysed=0,
                     frames_dropped=0)
    pub.send(heartbeat_topic("edge-demo"), beat.model_dump_json())
    wait_until(lambda: "edge-demo" in ingest.intake.edges_seen, what="heartbeat")
    before = ingest.stats.batches
    again = make_alert()
    for alert in (make_alert("update", alert_id=first.alert_id, seq=1), again,
                  make_alert("end", alert_id=again.alert_id, seq=1, snapshot=False)):
        pub.alert(alert)
    pub.close()
    done = wait_until(
        lambda: (t := center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json())
        ["events"][-1]["action"] == "camera_clear" and t, what="the batch's ticket work")
    assert ingest.stats.batches == before + 1
    assert [e["action"] for e in done["events"]] == [
        "register", "dispatch", "accept", "resolve", "rework", "camera_clear"]
    assert done["state"] == "dispatched" and done["rework_count"] == 1
    assert done["alert_count"] == 3 and done["last_alert_id"] == str(again.alert_id)


def _alert(kind: str, alert_id: uuid.UUID | None = None, seq: int | None = None) -> Alert:
    return make_alert(kind, alert_id=alert_id, seq=seq, snapshot=False)


def test_runs_split_at_each_end():
    a, b = _alert("new"), _alert("new")
    seq = [a, _alert("update", a.alert_id, 1), _alert("end", a.alert_id, 2), b,
           _alert("end", b.alert_id, 1), _alert("end", b.alert_id, 2)]
    assert [[x.kind for x in run] for run in _runs(seq)] == [
        ["new", "update"], ["end"], ["new"], ["end"], ["end"]]
