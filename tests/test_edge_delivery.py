"""Store-and-forward and live config against a real Mosquitto: broker crashes, edge restarts,
a full disk queue, configs pushed by the center (good and bad)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.config import BrokerConfig, EdgeConfig, OutboxConfig
from edge.outbox import EdgeStore
from edge.publish import MqttPublisher, read_recorded
from edge.runner import run
from simulators.local_services import Mosquitto
from tests.conftest import shared
from tests.mqtt_helpers import close_client, make_alert
from tests.waiting import wait_until
from wire.protocol import (
    TOPIC_ROOT,
    Heartbeat,
    edge_config_topic,
    heartbeat_topic,
    parse_alert,
)

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
BJ_CLIP = "media/cn_beijing_uadetrac_intersection_8s.mp4"
VN_PAVEMENT = [[0.80, 0.42], [0.93, 0.38], [1.0, 0.36], [1.0, 1.0], [0.86, 1.0], [0.79, 0.62]]


class Collector:
    """A persistent-session subscriber that (re)subscribes on every connect."""

    def __init__(self, port: int, client_id: str | None = None) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"col-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(f"{TOPIC_ROOT}/alerts/#", qos=1)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def keys(self) -> list[tuple[str, int]]:
        out = []
        for m in self.messages:
            a = parse_alert(m.payload)
            out.append((str(a.alert_id), a.seq))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def alerts(n: int, snapshot: bool = False) -> list[Any]:
    out = []
    for i in range(n):
        aid = uuid.uuid4()
        out.append(make_alert("new", alert_id=aid, edge_id="edge-sf", snapshot=snapshot))
        if i % 3 == 0:
            out.append(make_alert("update", alert_id=aid, seq=1, edge_id="edge-sf",
                                  snapshot=snapshot))
    return out


def test_outbox_bound_drops_updates_first_then_snapshots_and_counts(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "q.sqlite", max_messages=10, max_bytes=10_000)
    sent = alerts(12, snapshot=True)
    for a in sent:
        store.put("t", a.model_dump_json().encode(), a.kind, str(a.alert_id), a.seq)
    left = store.after(0, 100)
    c = store.counters()
    assert c["dropped_updates"] == 4  # all updates went before any new
    assert len(left) == 10 and c["dropped_new_end"] == 2
    assert c["stripped_snapshots"] > 0 and sum(len(r.payload) for r in left) <= 10_000
    assert [r.id for r in left] == sorted(r.id for r in left)
    store.close()
    again = EdgeStore(tmp_path / "q.sqlite", max_messages=10, max_bytes=10_000)
    assert [r.id for r in again.after(0, 100)] == [r.id for r in left]  # survives a restart
    assert again.counters() == c


def test_broker_crash_mid_stream_every_unacknowledged_alert_arrives_in_order(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The edge's side of delivery across a SIGKILLed broker: every alert the broker had not
    acknowledged when it died (in flight, queued, sent while it was down) arrives, in order.
    What it had acknowledged but not yet passed on is the broker's to keep: a killed Mosquitto
    restarts from its last autosave (docs/reliability.md), so those are counted, not required."""
    broker = Mosquitto(tmp_path / "mqtt").start()
    collector = Collector(broker.port, "collector-crash")
    # The collector's persistent session must be on disk before the crash, or the restarted
    # broker has no subscriber for the edge's resends.
    broker.save()
    store = EdgeStore(tmp_path / "edge.sqlite")
    pub = MqttPublisher("edge-sf", BrokerConfig(port=broker.port), store=store,
                        outbox=OutboxConfig(max_inflight=20))
    pub.start()
    try:
        assert pub.connected.wait(10)
        sent = alerts(300)
        t0 = time.monotonic()
        for i, a in enumerate(sent):
            pub.send(a)
            if i == 150:
                broker.kill()
                # Once the edge has seen the connection close it has read every acknowledgement
                # the broker sent before dying: what is still in its store now is exactly what
                # the broker had not acknowledged.
                wait_until(lambda: not pub.connected.is_set(), 10, "the edge to see the crash")
                unacked = {(r.alert_id, r.seq) for r in store.after(0, 100_000)}
                # The outage is real to the edge: it has tried to reconnect and failed.
                wait_until(lambda: "cannot connect to MQTT broker" in caplog.text, 10,
                           "a failed reconnect attempt")
                broker.start()  # same port and data folder
                collector.subscribed.clear()
                restart = time.monotonic()
                assert collector.subscribed.wait(10)
        assert unacked, "the kill came after everything was acknowledged: nothing was tested"
        assert pub.drain(60), f"{store.pending()} alerts still queued"
        recovered = time.monotonic() - restart
        want = [(str(a.alert_id), a.seq) for a in sent]
        required = unacked | set(want[151:])
        wait_until(lambda: set(collector.keys()) >= required, 20, "every unacknowledged alert")
        elapsed = time.monotonic() - t0
        keys = collector.keys()
        first_seen = list(dict.fromkeys(keys))
        lost = set(want) - set(first_seen)
        assert not lost & required
        assert first_seen == [k for k in want if k not in lost]  # in order
        print(f"\n{len(sent)} alerts, broker killed after 151 with {len(unacked)} "
              f"unacknowledged: all of those delivered, {len(lost)} acknowledged ones lost "
              f"with the broker, {len(keys) - len(first_seen)} redelivered duplicates, queue "
              f"drained {recovered:.2f}s after restart, {len(sent) / elapsed:.0f} alerts/s")
    finally:
        pub.close(1)
        collector.close()
        broker.stop()


def test_alerts_queued_while_broker_down_survive_an_edge_restart(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mqtt")  # not started yet: the broker is unreachable
    store_path = tmp_path / "edge.sqlite"
    first = MqttPublisher("edge-sf", BrokerConfig(port=broker.port), store=EdgeStore(store_path))
    first.start()
    sent = alerts(20)
    for a in sent:
        first.send(a)
    first.close(0.5)  # the edge stops with everything still queued on disk
    first.store.close()
    broker.start()
    collector = Collector(broker.port)
    second = MqttPublisher("edge-sf", BrokerConfig(port=broker.port), store=EdgeStore(store_path))
    second.start()
    try:
        assert second.drain(20)
        wait_until(lambda: len(set(collector.keys())) == len(sent), 10, "queued alerts")
        assert list(dict.fromkeys(collector.keys())) == [(str(a.alert_id), a.seq) for a in sent]
    finally:
        second.close(1)
        collector.close()
        broker.stop()


def vn_config(state_dir: Path, port: int, **zone: Any) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": "edge-rs", "broker": {"port": port}, "state_dir": str(state_dir),
        "detector": {"score_threshold": 0.2, "threads": 2}, "heartbeat_s": 1,
        "cameras": [{"id": "cam1", "source": str(shared(VN_CLIP)), "loop": False,
                     "sample_fps": 2, "zones": [{
                         "id": "pavement", "polygon": VN_PAVEMENT, "min_score": 0.2,
                         "inertia": 2, "dwell_s": 2, "clear_s": 2,
                         "rules": [{"type": "illegal_parking"}], **zone}]}]})


def test_edge_restarted_mid_violation_sends_no_second_new(tmp_path: Path, mqtt_broker) -> None:
    collector = Collector(mqtt_broker.port)
    try:
        cfg = vn_config(tmp_path / "state", mqtt_broker.port)
        run(cfg, until_eof=True, speed=0, record_dir=tmp_path / "one")
        run(cfg, until_eof=True, speed=0, record_dir=tmp_path / "two")  # the bike still stands
        one, two = read_recorded(tmp_path / "one"), read_recorded(tmp_path / "two")
        assert [a.kind for a in one] == ["new"]
        assert all(a.kind != "new" for a in two)
        assert {a.alert_id for a in two} <= {a.alert_id for a in one}
        wait_until(lambda: len(collector.messages) >= len(one) + len(two), 10, "mqtt alerts")
        assert [parse_alert(m.payload).kind for m in collector.messages].count("new") == 1
    finally:
        collector.close()


def test_pushed_config_applies_live_and_bad_pushes_are_rejected(
        tmp_path: Path, mqtt_broker, caplog: pytest.LogCaptureFixture) -> None:
    doc = {
        "edge_id": "edge-push", "broker": {"port": mqtt_broker.port},
        "detector": {"score_threshold": 0.2, "threads": 2}, "heartbeat_s": 1,
        "cameras": [
            {"id": "cam-vn", "source": str(shared(VN_CLIP)), "loop": True, "sample_fps": 2,
             "zones": [{"id": "pavement", "polygon": VN_PAVEMENT, "min_score": 0.2,
                        "inertia": 2, "dwell_s": 600, "clear_s": 2,
                        "rules": [{"type": "illegal_parking"}]}]},
            {"id": "cam-bj", "source": str(shared(BJ_CLIP)), "loop": True, "sample_fps": 1,
             "zones": []}]}
    config = EdgeConfig.model_validate(doc)
    stop = threading.Event()
    record = tmp_path / "rec"
    pusher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="center-push-test")
    pusher.connect("127.0.0.1", mqtt_broker.port)
    pusher.loop_start()
    topic = edge_config_topic("edge-push")
    beats: list[Heartbeat] = []
    subscribed = threading.Event()
    pusher.on_message = lambda c, u, m: beats.append(Heartbeat.model_validate_json(m.payload))
    pusher.on_subscribe = lambda *a: subscribed.set()
    pusher.subscribe(heartbeat_topic("edge-push"), qos=1)
    assert subscribed.wait(10)
    stats: list[Any] = []
    edge = threading.Thread(target=lambda: stats.append(
        run(config, speed=2, record_dir=record, stop_event=stop)), daemon=True)
    caplog.set_level(logging.INFO)
    try:
        edge.start()
        # Witness: 30 frames through the rules (the pavement camera samples 2 fps of stream
        # time, the Beijing one 1 fps: about 10 s of the pavement clip, whose parked bike
        # stands throughout). Under the 2 s dwell pushed below that alerts; under 600 s, not.
        wait_until(lambda: beats and beats[-1].frames_analysed >= 30, 60, "30 frames analysed")
        assert read_recorded(record) == []  # dwell 600 s: nothing yet

        def push(document: Any) -> None:
            payload = document if isinstance(document, str) else json.dumps(document)
            pusher.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

        bad = json.loads(json.dumps(doc))
        bad["cameras"][1]["zones"] = [{"id": "z", "polygon": [[0, 0], [1, 0], [2, 1]],
                                       "rules": [{"type": "illegal_parking"}]}]
        push(bad)
        push("cameras: [oops")
        moved = json.loads(json.dumps(doc))
        moved["detector"]["model"] = "other"
        push(moved)
        wait_until(lambda: caplog.text.count("pushed config REJECTED") >= 3, 10, "rejections")
        assert "cameras[1].zones[0].polygon" in caplog.text and "outside 0..1" in caplog.text
        assert "changes detector" in caplog.text
        good = json.loads(json.dumps(doc))
        good["cameras"][0]["zones"][0]["dwell_s"] = 2
        push(good)
        wait_until(lambda: [a for a in read_recorded(record) if a.kind == "new"], 20,
                   "an alert under the pushed config")
        assert "pushed config applied" in caplog.text
        assert edge.is_alive()
    finally:
        stop.set()
        edge.join(20)
        pusher.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear retained
        close_client(pusher)
