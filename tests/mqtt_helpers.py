"""Small helpers for tests that talk MQTT and build protocol messages."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from tests.waiting import wait_until  # also imported from here by older tests
from wire.protocol import Alert, alert_topic


def tiny_jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


def make_alert(kind: str = "new", *, alert_id: uuid.UUID | None = None, seq: int | None = None,
               camera_id: str = "cam-vn-01", zone_id: str = "pavement-east",
               event_type: str = "0506", edge_id: str = "edge-demo",
               snapshot: bool = True) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=alert_id or uuid.uuid4(),
        seq=seq if seq is not None else (0 if kind == "new" else 1),
        kind=kind, edge_id=edge_id, camera_id=camera_id, zone_id=zone_id,
        event_type=event_type, label="two_wheeler", score=0.8, bbox=(0.6, 0.5, 0.7, 0.8),
        started_at=now - timedelta(seconds=30), last_seen_at=now,
        snapshot_jpeg=tiny_jpeg() if snapshot else None,
    )


def alert_json(alert: Alert) -> dict[str, Any]:
    data = alert.model_dump(mode="json")
    if alert.snapshot_jpeg is not None:
        data["snapshot_jpeg"] = base64.b64encode(alert.snapshot_jpeg).decode()
    return data


def close_client(client: mqtt.Client) -> None:
    """Disconnect a paho client whose network loop runs in its thread, then end that thread.

    In this order, not the other: ``disconnect`` wakes the loop thread, which then ends at
    once; ``loop_stop`` first waits for the thread's select() to time out (paho's 1 s), so
    every client closed that way cost a test a second (about 6 minutes of the suite). Call it
    after the QoS 1 publishes that matter were acknowledged (``wait_for_publish``).
    """
    client.disconnect()
    client.loop_stop()


class Publisher:
    """A connected paho client that publishes with QoS 1 and waits for the broker's ack."""

    def __init__(self, port: int, client_id: str | None = None, *, inflight: int = 20) -> None:
        """``inflight``: how many QoS 1 messages may wait for their PUBACK (paho's 20 by
        default; ``send_all`` keeps that many under way)."""
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-{uuid.uuid4().hex[:8]}")
        self.inflight = inflight
        self.client.max_inflight_messages_set(inflight)  # paho takes it only before connecting
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(10)

    def alert(self, alert: Alert) -> None:
        self.send(alert_topic(alert.edge_id, alert.camera_id), alert.model_dump_json())

    def send_all(self, alerts: list[Alert], *, rate: float = 0.0) -> None:
        """Publish ``alerts`` with QoS 1 as edges do in a storm: at most ``inflight``
        unacknowledged, ``rate`` per second (0: flat out); the broker's PUBACK is all it
        waits for. Returns once every one was acknowledged."""
        t0 = time.monotonic()
        pending: list[mqtt.MQTTMessageInfo] = []
        for i, a in enumerate(alerts):
            if rate and (delay := t0 + i / rate - time.monotonic()) > 0:
                time.sleep(delay)  # paces the load generator: the edges send at a rate
            pending.append(self.client.publish(alert_topic(a.edge_id, a.camera_id),
                                               a.model_dump_json(), qos=1))
            if len(pending) >= self.inflight:
                pending.pop(0).wait_for_publish(60)
        for info in pending:
            info.wait_for_publish(60)

    def close(self) -> None:
        close_client(self.client)


def clear_retained(port: int, root: str = "gridwatch/#", timeout: float = 10.0) -> int:
    """Empty every retained message under ``root`` on a shared broker; returns how many.

    Edges publish their status, config state and frames retained, so on the session's one
    broker a test's center would otherwise receive what earlier tests' edges left behind (and
    dead-letter it when the district gives those cameras to no such edge). A retained marker
    subscribed after ``root`` arrives after all of ``root``'s retained messages (the broker
    queues them in the order of the SUBSCRIBEs), so the sweep waits on that, not on a pause.
    """
    marker = f"gridwatch-test/marker/{uuid.uuid4().hex}"
    seen: set[str] = set()
    done = False

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal done
        if msg.topic == marker:
            done = True
        elif msg.retain and msg.payload:
            seen.add(msg.topic)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"test-sweep-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(marker, b"1", qos=1, retain=True).wait_for_publish(timeout)
        client.subscribe(root, qos=1)
        client.subscribe(marker, qos=1)
        wait_until(lambda: done, timeout, "the broker to send the retained marker back")
        for topic in [*seen, marker]:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout)
    finally:
        close_client(client)
    return len(seen)


class Storm(threading.Thread):
    """``Publisher.send_all`` in a thread of its own, so a test can kill or drain a center
    while the storm arrives. ``done`` is set when it ended; ``sent`` counts the alerts the
    broker acknowledged (all or none); ``error`` is what stopped it, if anything."""

    def __init__(self, port: int, alerts: list[Alert], rate: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port, self.alerts, self.rate = port, alerts, rate
        self.sent = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            publisher = Publisher(self.port, f"storm-{uuid.uuid4().hex[:8]}", inflight=500)
            try:
                publisher.send_all(self.alerts, rate=self.rate)
                self.sent = len(self.alerts)
            finally:
                publisher.close()
        except BaseException as exc:  # noqa: BLE001 - anything: the test asserts there was none
            self.error = exc
        finally:
            self.done.set()


def forget_session(port: int, client_id: str, timeout: float = 10.0) -> None:
    """End a stopped client's persistent session on a shared broker: connect as it with a
    clean session, which makes the broker drop the old one, and leave.

    A center's session outlives it (``clean_session=False``, so that a restart misses no
    alert) and keeps its subscriptions: on the session's one broker every later test's alerts
    were queued for every earlier test's center. Late in the suite the broker held hundreds of
    such sessions, and a 3 s storm paced for 750 messages got 164 acknowledged (CI; with 400
    stale sessions and 12,000 earlier alerts, 101-148 here, against 751 on a fresh broker).
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(client.is_connected, timeout, f"the broker to take {client_id}'s clean start")
    finally:
        close_client(client)
