"""Everything that leaves the edge: alerts, camera and edge status, heartbeats, and for the
engineer view its running config (secrets removed) and a recent frame per camera.

Alerts go to ``AlertSink``s: MQTT and optionally a folder recorder. ``MqttPublisher.send``
puts each alert in the on-disk store-and-forward queue (``edge.outbox``) first; a sender thread
hands queued alerts to paho in order, at most ``max_inflight`` unacknowledged at a time, only
while connected, and a row leaves the queue only when the broker acknowledged it (QoS 1). Paho
itself resends its in-flight messages after a reconnect; the queue covers the rest and a
restart. Status, heartbeats, the config state and frames are not queued: they are "now" facts
(retained, the last ones re-asserted on connect). Alert clips (``edge.clip_outbox``) go the
same way, chunk by chunk, only while no alert waits (``clip_inflight`` unacknowledged at most).

The publisher also subscribes to the retained ``gridwatch/v1/config/{edge_id}`` and hands any
config the center pushes to ``on_config`` (the runner validates and applies it), and to the
retained ``gridwatch/v1/model/{edge_id}``, whose model assignments go to ``on_model``
(``edge.model_switch``), and to ``gridwatch/v1/live/{edge_id}``, whose live view requests go to
``on_live`` (``edge.live.streams``, which publishes its segments through ``live``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from edge.capture.redact import redact
from edge.clip_outbox import ChunkKey, ClipOutbox
from edge.config import BrokerConfig, EdgeConfig, OutboxConfig
from edge.evidence import Evidence
from edge.outbox import EdgeStore
from wire.protocol import (
    QOS_RELIABLE,
    Alert,
    CameraState,
    CameraStatus,
    EdgeConfigState,
    EdgeStatus,
    Heartbeat,
    ModelState,
    alert_topic,
    camera_frame_topic,
    camera_status_topic,
    edge_config_state_topic,
    edge_config_topic,
    edge_status_topic,
    heartbeat_topic,
    live_request_topic,
    model_assignment_topic,
    parse_alert,
)

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
#: Once retries are RECONNECT_MAX_S apart, one failed connect in this many is logged (every
#: 5 minutes): a broker down all night is a few hundred lines, not thousands.
FAILURES_PER_LOG = 10


def to_alert(edge_id: str, evidence: Evidence) -> Alert:
    """The wire message for a rule event; the box is normalised so the center can draw it on a
    snapshot of any size."""
    event, v = evidence.event, evidence.event.violation
    height, width = event.frame.image.shape[:2]
    x1, y1, x2, y2 = (float(c) for c in v.bbox)
    bbox = (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))
    return Alert(
        alert_id=v.alert_id, seq=v.seq, kind=event.kind, edge_id=edge_id,
        camera_id=event.camera_id, zone_id=event.zone.id, event_type=event.event_type,
        label=v.label, score=round(min(max(v.score, 0.0), 1.0), 4), bbox=bbox,
        started_at=v.first_wall.astimezone(UTC),
        last_seen_at=max(v.last_wall, v.first_wall).astimezone(UTC),
        snapshot_jpeg=evidence.jpeg, frame=evidence.frame,
    )


def shareable(config: EdgeConfig) -> dict[str, Any]:
    """The config as the center may see it: no broker credentials, camera URLs redacted. A
    push of this document back (zones edited) keeps the secrets (``edge.reconfig``)."""
    doc = config.model_dump(mode="json")
    doc["broker"].pop("username", None)
    doc["broker"].pop("password", None)
    for camera in doc["cameras"]:
        camera["source"] = redact(camera["source"])
    return doc


def configure_security(client: mqtt.Client, broker: BrokerConfig) -> None:
    """The edge's account (``username`` + ``password``/``password_file``) and TLS on a paho
    client; raises ConfigError when the password file cannot be read."""
    if broker.username:
        client.username_pw_set(broker.username, broker.secret())
    if broker.tls is not None:
        broker.tls.apply(client)


class AlertSink(Protocol):
    def send(self, alert: Alert, **extra: Any) -> None: ...


class FolderRecorder:
    """Writes alerts to ``alerts.jsonl``, snapshots to ``<alert_id>-<seq>.jpg``, crops to
    ``<alert_id>-<seq>-crop.jpg`` and kept full frames to ``<alert_id>-<seq>-frame.jpg``, for
    offline replays that tune zones and for tests. Each JSON line is a valid ``Alert`` without
    the pictures."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, alert: Alert, *, crop_jpeg: bytes | None = None, **_: Any) -> None:
        line = alert.model_dump_json(exclude={"snapshot_jpeg", "frame"})
        with self._lock:
            if alert.frame is not None:
                (self.folder / f"{alert.alert_id}-{alert.seq}-frame.jpg").write_bytes(
                    alert.frame.jpeg)
            if crop_jpeg:
                (self.folder / f"{alert.alert_id}-{alert.seq}-crop.jpg").write_bytes(crop_jpeg)
            if alert.snapshot_jpeg:
                (self.folder / f"{alert.alert_id}-{alert.seq}.jpg").write_bytes(alert.snapshot_jpeg)
            with open(self.folder / "alerts.jsonl", "a", encoding="utf-8") as out:
                out.write(line + "\n")


class MqttPublisher:
    """One MQTT session per edge. ``clean_session=False`` plus QoS 1 means the broker keeps the
    session and paho resends unacknowledged alerts after a reconnect; the retained last-will
    tells the center the edge died even if it never says goodbye."""

    def __init__(self, edge_id: str, broker: BrokerConfig, *, store: EdgeStore | None = None,
                 outbox: OutboxConfig | None = None,
                 on_config: Callable[[bytes], None] | None = None,
                 on_model: Callable[[bytes], None] | None = None,
                 on_live: Callable[[bytes], None] | None = None,
                 clips: ClipOutbox | None = None, clip_inflight: int = 8) -> None:
        self.edge_id = edge_id
        self.clips = clips
        self._clip_inflight = clip_inflight
        #: Clip chunks handed to paho: mid -> chunk.
        self._chunk_of_mid: dict[int, ChunkKey] = {}
        outbox = outbox or OutboxConfig()
        self.store = store or EdgeStore(None, max_messages=outbox.max_messages,
                                        max_bytes=outbox.max_bytes)
        self._max_inflight = outbox.max_inflight
        self._on_config = on_config
        self._on_model = on_model
        self.on_live = on_live
        # Outbox rows handed to paho: mid -> row id; the sender's read position.
        self._row_of_mid: dict[int, int] = {}
        self._cursor = 0
        self._wake = threading.Event()
        self._sender: threading.Thread | None = None
        self._camera_states: dict[str, CameraStatus] = {}
        self._config_state: str | None = None
        # Message ids handed to paho but not yet acknowledged by the broker; on_publish may
        # run before publish() returns, so an early ack waits in _acked_early.
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self._lock = threading.Condition()
        self.connected = threading.Event()
        self._closing = False
        #: The wait paho takes before its next connect attempt, mirrored from its rule (start
        #: at RECONNECT_MIN_S, double per failure up to RECONNECT_MAX_S, reset on CONNACK) so
        #: the log can say when it retries; None while connected.
        self._retry_s: float | None = None
        self._failures = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"gridwatch-edge-{edge_id}", clean_session=False)
        client.will_set(edge_status_topic(edge_id),
                        EdgeStatus(edge_id=edge_id, state="offline").model_dump_json(),
                        qos=QOS_RELIABLE, retain=True)
        configure_security(client, broker)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.max_inflight_messages_set(max(self._max_inflight, 20) + 20)  # + status messages
        client.max_queued_messages_set(0)
        self._client = client
        self._broker = broker

    def start(self) -> None:
        """Connect in the background: the edge keeps analysing while the broker is away."""
        self._client.connect_async(self._broker.host, self._broker.port, self._broker.keepalive)
        self._client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-outbox", daemon=True)
        self._sender.start()

    def _send_loop(self) -> None:
        """Hand queued alerts to paho in order while connected, ``max_inflight`` at a time."""
        while not self._closing:
            self._wake.wait(0.5)
            self._wake.clear()
            while self.connected.is_set() and not self._closing:
                with self._lock:
                    room = self._max_inflight - len(self._row_of_mid)
                if room <= 0:
                    break
                rows = self.store.after(self._cursor, room)
                if not rows:
                    if self._send_clip_chunks():
                        continue  # alerts queued meanwhile still go first
                    break
                for row in rows:
                    self.store.inflight.add(row.id)
                    info = self._client.publish(row.topic, row.payload, qos=QOS_RELIABLE)
                    if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                        self.store.inflight.discard(row.id)
                        log.error("edge=%s publish of alert_id=%s refused: %s; retrying",
                                  self.edge_id, row.alert_id, mqtt.error_string(info.rc))
                        break
                    self._cursor = row.id
                    with self._lock:
                        if info.mid in self._acked_early:
                            self._acked_early.discard(info.mid)
                            self.store.ack(row.id)
                        else:
                            self._row_of_mid[info.mid] = row.id
                            self._unacked.add(info.mid)

    def _send_clip_chunks(self) -> bool:
        """Hand waiting clip chunks to paho (room permitting); whether any went."""
        if self.clips is None:
            return False
        with self._lock:
            room = self._clip_inflight - len(self._chunk_of_mid)
        chunks = self.clips.next_chunks(room) if room > 0 else []
        for i, chunk in enumerate(chunks):
            info = self._client.publish(chunk.topic, chunk.payload, qos=QOS_RELIABLE)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.error("edge=%s publish of clip %s chunk %d refused: %s; retrying",
                          self.edge_id, chunk.key[0], chunk.key[1], mqtt.error_string(info.rc))
                for left in chunks[i:]:
                    self.clips.release(left.key)
                return False
            with self._lock:
                if info.mid in self._acked_early:
                    self._acked_early.discard(info.mid)
                    self.clips.ack(chunk.key)
                else:
                    self._chunk_of_mid[info.mid] = chunk.key
                    self._unacked.add(info.mid)
        return bool(chunks)

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        if (message.topic == edge_config_topic(self.edge_id) and self._on_config is not None
                and message.payload):
            self._on_config(bytes(message.payload))
        elif (message.topic == model_assignment_topic(self.edge_id)
              and self._on_model is not None and message.payload):
            self._on_model(bytes(message.payload))
        elif (message.topic == live_request_topic(self.edge_id) and self.on_live is not None
              and message.payload):
            self.on_live(bytes(message.payload))

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.warning("edge=%s MQTT connect refused: %s", self.edge_id, reason)
            return
        log.info("edge=%s MQTT connected to %s:%s", self.edge_id, self._broker.host,
                 self._broker.port)
        self._retry_s, self._failures = None, 0
        if self._on_config is not None:
            client.subscribe(edge_config_topic(self.edge_id), qos=QOS_RELIABLE)
        if self._on_model is not None:
            client.subscribe(model_assignment_topic(self.edge_id), qos=QOS_RELIABLE)
        if self.on_live is not None:
            client.subscribe(live_request_topic(self.edge_id), qos=QOS_RELIABLE)
        hello = EdgeStatus(edge_id=self.edge_id, state="online", at=_now())
        self._publish(edge_status_topic(self.edge_id), hello.model_dump_json(), retain=True)
        # Re-assert camera states: a broker restarted without persistence forgot them.
        with self._lock:
            states = list(self._camera_states.values())
        for status in states:
            self._publish(camera_status_topic(self.edge_id, status.camera_id),
                          status.model_dump_json(), retain=True)
        if self._config_state is not None:
            self._publish(edge_config_state_topic(self.edge_id), self._config_state, retain=True)
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object,
                       flags: mqtt.DisconnectFlags, reason: mqtt.ReasonCode,
                       properties: object) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("edge=%s MQTT connection to %s:%s lost (%s); retrying in %.0f s; %s",
                        self.edge_id, self._broker.host, self._broker.port, reason,
                        self._next_retry(), self._where_alerts_wait())

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        """paho calls this from inside its ``except OSError`` around the connect attempt, so
        the exception being handled is the reason (refused, unreachable, DNS, TLS)."""
        error = sys.exc_info()[1]
        reason = f"{type(error).__name__}: {error}" if error else "reason unknown"
        self._failures += 1
        retry = self._next_retry()
        if retry < RECONNECT_MAX_S or self._failures % FAILURES_PER_LOG == 0:
            log.warning("edge=%s cannot connect to MQTT broker %s:%s (%s); retrying in %.0f s "
                        "(attempt %d); %s", self.edge_id, self._broker.host, self._broker.port,
                        reason, retry, self._failures, self._where_alerts_wait())

    def _next_retry(self) -> float:
        self._retry_s = (RECONNECT_MIN_S if self._retry_s is None
                         else min(self._retry_s * 2, RECONNECT_MAX_S))
        return self._retry_s

    def _where_alerts_wait(self) -> str:
        """Only a ``state_dir`` makes "queued on disk" true; say so either way."""
        if self.store.path is not None:
            return f"alerts are queued on disk in {self.store.path} until then"
        return ("alerts are held in memory until then and lost if the edge stops "
                "(no state_dir)")

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                row = self._row_of_mid.pop(mid, None)
                if row is not None:
                    self.store.ack(row)
                chunk = self._chunk_of_mid.pop(mid, None)
                if chunk is not None and self.clips is not None:
                    self.clips.ack(chunk)
                self._lock.notify_all()
            else:
                self._acked_early.add(mid)
        self._wake.set()

    def _publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
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

    def send(self, alert: Alert, *, violation: tuple[str, dict[str, Any] | None] | None = None,
             **_: Any) -> None:
        """Queue on disk (with the rule's violation state, in one transaction); the sender
        thread publishes it."""
        self.store.put(alert_topic(self.edge_id, alert.camera_id),
                       alert.model_dump_json().encode(), alert.kind, str(alert.alert_id),
                       alert.seq, violation)
        self._wake.set()
        log.info("camera=%s alert_id=%s seq=%d kind=%s queued for MQTT", alert.camera_id,
                 alert.alert_id, alert.seq, alert.kind)

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox and the clip outbox are empty (everything acknowledged);
        False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._waiting():
                return True
            self._wake.set()
            time.sleep(0.05)
        return not self._waiting()

    def _waiting(self) -> int:
        return self.store.pending() + (self.clips.pending() if self.clips else 0)

    def camera_status(self, camera_id: str, state: CameraState, detail: str = "",
                      fps: float | None = None) -> None:
        status = CameraStatus(edge_id=self.edge_id, camera_id=camera_id, state=state, at=_now(),
                              detail=detail[:500], fps=fps)
        with self._lock:
            self._camera_states[camera_id] = status
        self._publish(camera_status_topic(self.edge_id, camera_id), status.model_dump_json(),
                      retain=True)

    def config_state(self, config: EdgeConfig, model: ModelState | None = None) -> None:
        """Tell the center (retained) which config runs now, secrets removed, and which model
        (``edge.model_switch``)."""
        state = EdgeConfigState(edge_id=self.edge_id, at=_now(), config=shareable(config),
                                model=model)
        payload = state.model_dump_json()
        with self._lock:
            self._config_state = payload
        self._publish(edge_config_state_topic(self.edge_id), payload, retain=True)

    def camera_frame(self, camera_id: str, jpeg: bytes) -> None:
        """A recent frame of the camera (retained JPEG) for the engineer view; QoS 0, since a
        lost one is replaced by the next."""
        info = self._client.publish(camera_frame_topic(self.edge_id, camera_id), jpeg, qos=0,
                                    retain=True)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("camera=%s frame publish refused: %s", camera_id,
                        mqtt.error_string(info.rc))

    def live(self, topic: str, payload: str, qos: int) -> None:
        """A live view message (``edge.live.streams``): segment chunks at QoS 0 (a lost one
        is a second of video nobody would want late), stream states at QoS 1. Not queued on
        disk: live video is worthless once it is old."""
        if qos:
            self._publish(topic, payload)
            return
        info = self._client.publish(topic, payload, qos=0)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("edge=%s live publish to %s refused: %s", self.edge_id, topic,
                        mqtt.error_string(info.rc))

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
        if self.connected.is_set():
            self.drain(timeout)
        with self._lock:
            while self._unacked and time.monotonic() < deadline:
                self._lock.wait(0.1)
        self._closing = True
        self._wake.set()
        if self._sender is not None:
            self._sender.join(5)
        left = self.store.pending()
        if left and self.store.path is not None:
            log.warning("edge=%s %d alerts not yet acknowledged stay queued on disk in %s for "
                        "the next start", self.edge_id, left, self.store.path)
        elif left:
            log.error("edge=%s %d alerts not yet acknowledged are LOST: they were held in "
                      "memory (set state_dir to keep them across restarts)", self.edge_id, left)
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
