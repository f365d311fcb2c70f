"""Everything that leaves the edge: alerts, camera and edge status, heartbeats.

Alerts go to ``AlertSink``s. Today that is MQTT (QoS 1, paho's own in-memory queue across
reconnects) and optionally a folder recorder; an on-disk store-and-forward queue for long
outages will be another sink wrapped around ``MqttPublisher.send`` without touching the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt

from center.protocol import (
    QOS_RELIABLE,
    Alert,
    CameraState,
    CameraStatus,
    EdgeStatus,
    Heartbeat,
    alert_topic,
    camera_status_topic,
    edge_status_topic,
    heartbeat_topic,
    parse_alert,
)
from edge.config import BrokerConfig
from edge.evidence import Evidence

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


def to_alert(edge_id: str, evidence: Evidence) -> Alert:
    """The wire message for a rule event; the box is normalised so the center can draw it on a
    snapshot of any size."""
    event, site = evidence.event, evidence.event.site
    height, width = event.frame.image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in site.last_bbox)
    bbox = (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))
    assert site.alert_id is not None, "rules emit events only for sites with an alert id"
    return Alert(
        alert_id=site.alert_id, seq=site.seq, kind=event.kind, edge_id=edge_id,
        camera_id=event.camera_id, zone_id=event.zone.id, event_type=event.zone.event_type,
        label=site.label, score=round(site.score, 4), bbox=bbox,
        started_at=site.first_wall.astimezone(UTC), last_seen_at=site.last_wall.astimezone(UTC),
        snapshot_jpeg=evidence.jpeg,
    )


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class FolderRecorder:
    """Writes alerts to ``alerts.jsonl`` and snapshots to ``<alert_id>-<seq>.jpg``, for offline
    replays that tune zones and for tests. Each JSON line is a valid ``Alert`` without the
    picture."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        line = alert.model_dump_json(exclude={"snapshot_jpeg"})
        with self._lock:
            if alert.snapshot_jpeg:
                (self.folder / f"{alert.alert_id}-{alert.seq}.jpg").write_bytes(alert.snapshot_jpeg)
            with open(self.folder / "alerts.jsonl", "a", encoding="utf-8") as out:
                out.write(line + "\n")


class MqttPublisher:
    """One MQTT session per edge. ``clean_session=False`` plus QoS 1 means the broker keeps the
    session and paho resends unacknowledged alerts after a reconnect; the retained last-will
    tells the center the edge died even if it never says goodbye."""

    def __init__(self, edge_id: str, broker: BrokerConfig) -> None:
        self.edge_id = edge_id
        self._camera_states: dict[str, CameraStatus] = {}
        # Message ids handed to paho but not yet acknowledged by the broker; on_publish may
        # run before publish() returns, so an early ack waits in _acked_early.
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self._lock = threading.Condition()
        self.connected = threading.Event()
        self._closing = False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"gridwatch-edge-{edge_id}", clean_session=False)
        client.will_set(edge_status_topic(edge_id),
                        EdgeStatus(edge_id=edge_id, state="offline").model_dump_json(),
                        qos=QOS_RELIABLE, retain=True)
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._broker = broker

    def start(self) -> None:
        """Connect in the background: the edge keeps analysing while the broker is away."""
        self._client.connect_async(self._broker.host, self._broker.port, self._broker.keepalive)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.warning("edge=%s MQTT connect refused: %s", self.edge_id, reason)
            return
        log.info("edge=%s MQTT connected to %s:%s", self.edge_id, self._broker.host,
                 self._broker.port)
        hello = EdgeStatus(edge_id=self.edge_id, state="online", at=_now())
        self._publish(edge_status_topic(self.edge_id), hello.model_dump_json(), retain=True)
        # Re-assert camera states: a broker restarted without persistence forgot them.
        with self._lock:
            states = list(self._camera_states.values())
        for status in states:
            self._publish(camera_status_topic(self.edge_id, status.camera_id),
                          status.model_dump_json(), retain=True)
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object,
                       flags: mqtt.DisconnectFlags, reason: mqtt.ReasonCode,
                       properties: object) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("edge=%s MQTT disconnected (%s); paho reconnects", self.edge_id, reason)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                self._lock.notify_all()
            else:
                self._acked_early.add(mid)

    def _publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Hand a QoS 1 message to paho. While disconnected paho keeps it (info.rc says
        NO_CONN) and sends it after reconnecting, so that is not an error here."""
        info = self._client.publish(topic, payload, qos=QOS_RELIABLE, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("edge=%s MQTT publish to %s refused: %s", self.edge_id, topic,
                      mqtt.error_string(info.rc))
            return
        with self._lock:
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
            else:
                self._unacked.add(info.mid)

    def send(self, alert: Alert) -> None:
        self._publish(alert_topic(self.edge_id, alert.camera_id), alert.model_dump_json())
        log.info("camera=%s alert_id=%s seq=%d kind=%s queued for MQTT", alert.camera_id,
                 alert.alert_id, alert.seq, alert.kind)

    def camera_status(self, camera_id: str, state: CameraState, detail: str = "",
                      fps: float | None = None) -> None:
        status = CameraStatus(edge_id=self.edge_id, camera_id=camera_id, state=state, at=_now(),
                              detail=detail[:500], fps=fps)
        with self._lock:
            self._camera_states[camera_id] = status
        self._publish(camera_status_topic(self.edge_id, camera_id), status.model_dump_json(),
                      retain=True)

    def heartbeat(self, cameras: int, frames_analysed: int, frames_dropped: int) -> None:
        beat = Heartbeat(edge_id=self.edge_id, at=_now(), cameras=cameras,
                         frames_analysed=frames_analysed, frames_dropped=frames_dropped)
        self._publish(heartbeat_topic(self.edge_id), beat.model_dump_json())

    def close(self, timeout: float = 5.0) -> None:
        """Say goodbye (cameras and edge offline, retained), give queued messages ``timeout``
        seconds to reach the broker, then disconnect without triggering the last-will."""
        for camera_id in list(self._camera_states):
            self.camera_status(camera_id, "offline", "edge stopped")
        goodbye = EdgeStatus(edge_id=self.edge_id, state="offline", at=_now())
        self._publish(edge_status_topic(self.edge_id), goodbye.model_dump_json(), retain=True)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._unacked and time.monotonic() < deadline:
                self._lock.wait(0.1)
            unsent = len(self._unacked)
        if unsent:
            # Until the store-and-forward queue exists these die with the process.
            log.warning("edge=%s %d MQTT messages not delivered at shutdown", self.edge_id, unsent)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()


def _now() -> datetime:
    return datetime.now(UTC)


def read_recorded(folder: Path) -> list[Alert]:
    """The alerts a ``FolderRecorder`` wrote, validated again as protocol messages."""
    path = Path(folder) / "alerts.jsonl"
    if not path.exists():
        return []
    return [parse_alert(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
