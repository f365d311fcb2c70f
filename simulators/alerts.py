"""Alert storms: protocol-valid alert streams from many virtual cameras, at a chosen rate.

``AlertStorm`` publishes ``wire.protocol.Alert`` messages (QoS 1, a bounded number in flight)
for the cameras of a district, as the edges would: each violation is a ``new`` (seq 0), a few
``update``s and usually an ``end``, at one place (camera, zone, event type) at a time. A chosen
share of the messages is malformed (each kind of mistake the center must dead-letter) and a
chosen share repeats an earlier message byte for byte (what QoS 1 redelivery looks like).
Every message says ``simulated: true``: its box is made up, and the wall, the phone and the
API badge it 模拟 / SIMULATED (docs/simulators.md).

It keeps an exact account of what the broker acknowledged (``StormReport``), so a test or a
drill can reconcile the database with it: every distinct ``(alert_id, seq)`` stored once,
every malformed payload in ``dead_letters`` (matched by SHA-256 of the payload).

    storm = AlertStorm(district_cameras(Path("district")), "127.0.0.1", 1883, seed=1)
    report = storm.run(rate=200, duration=30, burst=parse_burst("10-15:x5"))
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from wire.protocol import QOS_RELIABLE, Alert, AlertKind, alert_topic

log = logging.getLogger(__name__)

#: Event types the storm raises, with the zone they happen in and the label the edge sends.
EVENTS = (("0506", "pavement", "two_wheeler"), ("0504", "shopfront", "vending_cue"),
          ("0505", "bay", "car"))
MALFORMED_KINDS = ("not_json", "missing_field", "bad_bbox", "topic_mismatch",
                   "unknown_event_type", "bad_schema_version", "seq_kind")


@dataclass(frozen=True)
class SimCamera:
    id: str
    edge_id: str


def district_cameras(district: Path | str, only: list[str] | None = None,
                     edge_id: str | None = None) -> list[SimCamera]:
    """The active cameras of a district folder (or its ``district.yaml``), validated by the
    center's own loader; ``only`` keeps those ids, ``edge_id`` publishes them all as one edge."""
    from center.domain.district import load_district

    path = Path(district)
    if path.is_dir():
        path = path / "district.yaml"
    d = load_district(path)
    cams = [SimCamera(c.id, edge_id or c.edge_id or "edge-sim")
            for c in d.cameras.values() if c.active and (only is None or c.id in only)]
    if not cams:
        raise ValueError(f"no cameras to simulate in {path}")
    return cams


def parse_burst(pattern: str | None) -> list[tuple[float, float, float]]:
    """``"10-15:x5,40-45:x3"``: from second 10 to 15 the rate is 5 times the base, and so on.
    Empty / ``none``: a steady rate. Returns (start_s, end_s, factor) triples."""
    if not pattern or pattern == "none":
        return []
    out = []
    for part in pattern.split(","):
        try:
            span, factor = part.strip().split(":x")
            start, end = span.split("-")
            out.append((float(start), float(end), float(factor)))
        except ValueError:
            raise ValueError(f"bad burst {part!r}: expected START-END:xFACTOR, "
                             "e.g. 10-15:x5") from None
        if out[-1][1] <= out[-1][0] or out[-1][2] <= 0:
            raise ValueError(f"bad burst {part!r}: need END > START and FACTOR > 0")
    return out


def rate_at(t: float, base: float, burst: list[tuple[float, float, float]]) -> float:
    for start, end, factor in burst:
        if start <= t < end:
            return base * factor
    return base


def synthetic_jpeg(text: str = "gridwatch sim") -> bytes:
    """A small grey picture with a caption: the snapshot when no clip is given."""
    image = np.full((120, 160, 3), 90, np.uint8)
    cv2.putText(image, text[:20], (4, 64), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return buf.tobytes()


def snapshot_pool(files: list[Path], per_file: int = 12) -> list[bytes]:
    """JPEG frames from real clips or stills, small enough for alert snapshots."""
    from simulators.mjpeg_server import load_jpegs

    pool: list[bytes] = []
    for f in files:
        pool += load_jpegs(Path(f), max_frames=per_file, every=10, max_width=640, quality=70)
    return pool


@dataclass
class StormReport:
    """What the broker acknowledged, exactly. ``alerts``: distinct (alert_id, seq) of valid
    messages; ``duplicates``: repeats of those; ``malformed``: one entry per bad message."""

    valid: int = 0
    duplicates: int = 0
    malformed: int = 0
    unacked: int = 0
    published: int = 0
    seconds: float = 0.0
    violations: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    malformed_by_kind: dict[str, int] = field(default_factory=dict)
    alerts: list[tuple[str, int]] = field(default_factory=list)
    malformed_sha256: list[str] = field(default_factory=list)
    #: Valid messages published but never acknowledged: stored or not, either is right.
    unacked_alerts: list[tuple[str, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("alerts")
        d.pop("malformed_sha256")
        d.pop("unacked_alerts")
        d["rate_achieved"] = round(self.published / self.seconds, 1) if self.seconds else 0.0
        return d

    def to_json(self) -> str:
        return json.dumps({**self.summary(), "alerts": self.alerts,
                           "malformed_sha256": self.malformed_sha256,
                           "unacked_alerts": self.unacked_alerts}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> StormReport:
        d = json.loads(text)
        d.pop("rate_achieved", None)
        d["alerts"] = [tuple(a) for a in d["alerts"]]
        d["unacked_alerts"] = [tuple(a) for a in d.get("unacked_alerts", [])]
        return cls(**d)


@dataclass
class _Violation:
    camera: SimCamera
    zone_id: str
    event_type: str
    label: str
    alert_id: uuid.UUID
    started_at: datetime
    planned: int  # messages still to send after `new`, the last one `end` if it ends
    ends: bool
    seq: int = 0


@dataclass
class _Out:
    topic: str
    payload: bytes
    what: str  # "valid" | "duplicate" | "malformed"
    key: tuple[str, int] | None = None
    kind: str = ""


class AlertStorm:
    """Publishes alert streams for ``cameras`` to the broker at ``host:port``."""

    def __init__(self, cameras: list[SimCamera], host: str, port: int, *, seed: int = 1,
                 malformed: float = 0.0, duplicates: float = 0.0, max_inflight: int = 100,
                 snapshots: list[bytes] | None = None, snapshot_share: float = 0.3,
                 camera_snapshots: dict[str, list[bytes]] | None = None,
                 zone_prefix: str = "", client_id: str | None = None,
                 username: str | None = None, password: str | None = None,
                 events: tuple[tuple[str, str, str], ...] = EVENTS) -> None:
        if not 0 <= malformed < 1 or not 0 <= duplicates < 1 or malformed + duplicates >= 1:
            raise ValueError("malformed and duplicates are shares in [0, 1) summing below 1")
        self.cameras = cameras
        self.rng = random.Random(seed)
        self.malformed = malformed
        self.duplicates = duplicates
        self.snapshots = snapshots if snapshots is not None else [synthetic_jpeg()]
        self.snapshot_share = snapshot_share
        self.camera_snapshots = camera_snapshots or {}
        self.zone_prefix = zone_prefix
        self.events = events
        self.report = StormReport()
        self._active: dict[tuple[str, str, str], _Violation] = {}
        self._recent: list[_Out] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._pending: dict[int, _Out] = {}
        self._acked_early: set[int] = set()
        self._stop = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"sim-alerts-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self._host, self._port = host, port

    # --- the messages ---------------------------------------------------------------------

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _alert(self, v: _Violation, kind: AlertKind, snapshot: bool) -> Alert:
        now = datetime.now(UTC)
        x = self.rng.uniform(0.05, 0.8)
        y = self.rng.uniform(0.3, 0.8)
        return Alert(alert_id=v.alert_id, seq=v.seq, kind=kind, edge_id=v.camera.edge_id,
                     camera_id=v.camera.id, zone_id=v.zone_id, event_type=v.event_type,
                     label=v.label, score=round(self.rng.uniform(0.4, 0.95), 3),
                     bbox=(round(x, 3), round(y, 3), round(x + 0.1, 3), round(y + 0.15, 3)),
                     started_at=v.started_at, last_seen_at=max(now, v.started_at),
                     snapshot_jpeg=self.rng.choice(self.camera_snapshots.get(v.camera.id)
                                                   or self.snapshots) if snapshot else None,
                     simulated=True)  # a random box on a real frame: screens must say so

    def _next_valid(self) -> _Out:
        """Start a violation somewhere, or move an active one on (update / end)."""
        if not self._active or (len(self._active) < 4 * len(self.cameras)
                                and self.rng.random() < 0.4):
            for _ in range(20):
                cam = self.rng.choice(self.cameras)
                event_type, zone, label = self.rng.choice(self.events)
                zone_id = f"{self.zone_prefix}{zone}"
                place = (cam.id, zone_id, event_type)
                if place not in self._active:
                    break
            else:
                return self._advance(self.rng.choice(list(self._active)))
            v = _Violation(cam, zone_id, event_type, label, self._uuid(),
                           datetime.now(UTC) - timedelta(seconds=self.rng.uniform(5, 60)),
                           planned=self.rng.randint(1, 4), ends=self.rng.random() < 0.8)
            self._active[place] = v
            self.report.violations += 1
            return self._out(v, "new", snapshot=True)
        return self._advance(self.rng.choice(list(self._active)))

    def _advance(self, place: tuple[str, str, str]) -> _Out:
        v = self._active[place]
        v.seq += 1
        v.planned -= 1
        if v.planned <= 0:
            del self._active[place]
            if v.ends:
                return self._out(v, "end", snapshot=True)
        return self._out(v, "update", snapshot=self.rng.random() < self.snapshot_share)

    def _out(self, v: _Violation, kind: AlertKind, snapshot: bool) -> _Out:
        alert = self._alert(v, kind, snapshot)
        return _Out(alert_topic(alert.edge_id, alert.camera_id),
                    alert.model_dump_json().encode(), "valid", (str(alert.alert_id), alert.seq),
                    kind)

    def _malformed(self) -> _Out:
        kind = self.rng.choice(MALFORMED_KINDS)
        cam = self.rng.choice(self.cameras)
        now = datetime.now(UTC)
        event_type, zone, label = self.rng.choice(self.events)
        good: dict[str, Any] = {
            "schema_version": 1, "alert_id": str(self._uuid()), "seq": 0, "kind": "new",
            "edge_id": cam.edge_id, "camera_id": cam.id, "zone_id": f"{self.zone_prefix}{zone}",
            "event_type": event_type, "label": label, "score": 0.7,
            "bbox": [0.1, 0.2, 0.3, 0.4], "started_at": now.isoformat(),
            "last_seen_at": now.isoformat()}
        topic = alert_topic(cam.edge_id, cam.id)
        if kind == "not_json":
            payload = f"{{not json {good['alert_id']}".encode()
        else:
            if kind == "missing_field":
                del good["label"]
            elif kind == "bad_bbox":
                good["bbox"] = [0.5, 0.2, 0.3, 0.4]
            elif kind == "topic_mismatch":
                topic = alert_topic(cam.edge_id, "cam-nobody")
            elif kind == "unknown_event_type":
                good["event_type"] = "0999"
            elif kind == "bad_schema_version":
                good["schema_version"] = 2
            elif kind == "seq_kind":
                good["seq"] = 3
            payload = json.dumps(good).encode()
        return _Out(topic, payload, "malformed", kind=kind)

    def next_message(self) -> _Out:
        r = self.rng.random()
        if r < self.malformed:
            return self._malformed()
        if r < self.malformed + self.duplicates and self._recent:
            d = self.rng.choice(self._recent)
            return _Out(d.topic, d.payload, "duplicate", d.key, d.kind)
        out = self._next_valid()
        self._recent.append(out)
        if len(self._recent) > 200:
            self._recent.pop(0)
        return out

    # --- publishing -------------------------------------------------------------------------

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
        with self._lock:
            out = self._pending.pop(mid, None)
            if out is None:  # acked before publish() returned and we filed it
                self._acked_early.add(mid)
                return
            self._count(out)
        self._slots.release()

    def _count(self, out: _Out) -> None:
        r = self.report
        if out.what == "valid":
            r.valid += 1
            r.alerts.append(out.key)  # type: ignore[arg-type]
            r.by_kind[out.kind] = r.by_kind.get(out.kind, 0) + 1
        elif out.what == "duplicate":
            r.duplicates += 1
        else:
            r.malformed += 1
            r.malformed_by_kind[out.kind] = r.malformed_by_kind.get(out.kind, 0) + 1
            r.malformed_sha256.append(hashlib.sha256(out.payload).hexdigest())

    def connect(self) -> None:
        self.client.connect_async(self._host, self._port, keepalive=15)
        self.client.loop_start()
        deadline = time.monotonic() + 15
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                self.client.loop_stop()
                raise ConnectionError(f"could not connect to the MQTT broker at {self._host}:"
                                      f"{self._port} (down, or refused the credentials)")
            time.sleep(0.05)

    def publish(self, out: _Out) -> None:
        """Publish one message once a slot is free. Our lock is never held across paho's
        ``publish()``: paho calls ``on_publish`` under its own lock."""
        self._slots.acquire()
        info = self.client.publish(out.topic, out.payload, qos=QOS_RELIABLE)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued
            self._slots.release()
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            self.report.published += 1
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                self._count(out)
                early = True
            else:
                self._pending[info.mid] = out
                early = False
        if early:
            self._slots.release()

    def stop(self) -> None:
        """Ask a running ``run()`` to stop after the message in hand."""
        self._stop.set()

    def run(self, rate: float, duration: float, burst: Sequence[tuple[float, float, float]] = (),
            *, progress: bool = False, ack_timeout: float = 60.0,
            count: int | None = None) -> StormReport:
        """Publish at ``rate`` messages/s (times the burst factor) for ``duration`` seconds
        (0: until ``stop()``) or ``count`` messages, then wait for the broker's acks."""
        if not self.client.is_connected():
            self.connect()
        t0 = time.monotonic()
        due = 0.0
        last_print = 0.0
        try:
            while not self._stop.is_set():
                t = time.monotonic() - t0
                if (duration and t >= duration) or (count is not None
                                                    and self.report.published >= count):
                    break
                if due > t:
                    self._stop.wait(due - t)
                    continue
                self.publish(self.next_message())
                due += 1.0 / rate_at(due, rate, list(burst))
                if progress and t - last_print >= 1.0:
                    last_print = t
                    r = self.report
                    print(f"\r{t:6.1f}s sent {r.published} acked valid={r.valid} "
                          f"dup={r.duplicates} malformed={r.malformed}", end="", flush=True)
        finally:
            self.report.seconds = round(time.monotonic() - t0, 2)
            self.wait_acked(ack_timeout)
            if progress:
                print(flush=True)
        return self.report

    def wait_acked(self, timeout: float = 60.0) -> StormReport:
        """Wait for the broker to acknowledge what is in flight; the rest counts as unacked."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            self.report.unacked = len(self._pending)
            self.report.unacked_alerts = [o.key for o in self._pending.values()
                                          if o.what == "valid" and o.key is not None]
        return self.report

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
