"""The edge end to end on real street clips: file capture -> NanoDet -> rules -> JPEG -> MQTT.

Zones were chosen by looking at the clips (see the report in models/README.md): NanoDet-m sees
the motorbike parked behind the vendor's sign on the Vietnamese pavement at only 0.20-0.27, so
these zones use a 0.2 score floor; dwell is 2 s at 2 fps so the 6.4 s clip can fire.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge.capture import CameraCapture, Frame
from edge.config import EdgeConfig
from edge.publish import read_recorded
from edge.runner import run
from tests.conftest import shared
from tests.waiting import wait_until
from wire.protocol import (
    TOPIC_ROOT,
    Alert,
    CameraStatus,
    EdgeStatus,
    alert_topic,
    camera_status_topic,
    edge_status_topic,
    parse_alert,
)

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
BJ_CLIP = "media/cn_beijing_uadetrac_intersection_8s.mp4"
#: Right-hand pavement of the Vietnamese clip, from the kerb line to the frame edge.
VN_PAVEMENT = [[0.80, 0.42], [0.93, 0.38], [1.0, 0.36], [1.0, 1.0], [0.86, 1.0], [0.79, 0.62]]
#: Foreground carriageway of the Beijing intersection, below the far stop line, where the
#: e-bikes and bicycles ride through. (Above it a tricycle waits at the light for the whole clip:
#: genuinely stationary, so it is left out of a zone meant to show that riders never alert.)
BJ_ROAD = [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]]


def edge_config(clip: str, polygon: list[list[float]], port: int = 1883) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": "edge-test",
        "broker": {"port": port},
        "detector": {"score_threshold": 0.2, "threads": 2},
        "heartbeat_s": 1,
        "cameras": [{
            "id": "cam1", "source": str(shared(clip)), "loop": False, "sample_fps": 2,
            "zones": [{"id": "zone1", "polygon": polygon, "event_type": "0506",
                       "classes": ["two_wheeler"], "dwell_s": 2, "clear_s": 2,
                       "min_score": 0.2}],
        }],
    })


class Subscriber:
    """Collects every gridwatch message, retained ones included."""

    def __init__(self, port: int) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, msg: self.messages.append(msg)
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_connect = lambda c, *args: c.subscribe(f"{TOPIC_ROOT}/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def on(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic == topic]

    def said_goodbye(self, edge_id: str) -> bool:
        """Whether a live (not retained) offline status of the edge has arrived."""
        return any(EdgeStatus.model_validate_json(m.payload).state == "offline"
                   for m in self.messages
                   if m.topic == edge_status_topic(edge_id) and m.payload and not m.retain)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def vn_run(mqtt_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One replay of the Vietnamese clip, recorded to a folder and published over MQTT."""
    record = tmp_path_factory.mktemp("vn-record")
    sub = Subscriber(mqtt_broker.port)
    try:
        stats = run(edge_config(VN_CLIP, VN_PAVEMENT, mqtt_broker.port), until_eof=True,
                    speed=0, record_dir=record)
        # The edge's goodbye is the last thing it publishes: once it is here, so is every
        # alert it sent before (one connection, QoS 1, in order).
        wait_until(lambda: sub.said_goodbye("edge-test"), 10, "the edge's offline status")
    finally:
        sub.close()
    return {"stats": stats, "record": record, "sub": sub}


def test_parked_motorbike_on_pavement_alerts(vn_run: dict[str, Any]) -> None:
    alerts = read_recorded(vn_run["record"])
    new = [a for a in alerts if a.kind == "new" and a.event_type == "0506"]
    assert new, f"no 'new' 0506 alert recorded; stats {vn_run['stats']}"
    alert = new[0]
    assert alert.label == "two_wheeler" and alert.camera_id == "cam1"
    x1, _y1, _x2, y2 = alert.bbox
    assert x1 > 0.75 and y2 > 0.4  # on the right-hand pavement
    assert (alert.last_seen_at - alert.started_at).total_seconds() >= 2
    jpeg = (vn_run["record"] / f"{alert.alert_id}-0.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 960
    assert vn_run["stats"].frames_analysed == 13  # 6.4 s at 2 fps


def test_alert_arrives_over_mqtt_and_validates(vn_run: dict[str, Any]) -> None:
    sub = vn_run["sub"]
    payloads = sub.on(alert_topic("edge-test", "cam1"))
    assert payloads, f"no alert on MQTT; topics seen: {sorted({m.topic for m in sub.messages})}"
    alerts = [parse_alert(p) for p in payloads]
    recorded = {(a.alert_id, a.seq) for a in read_recorded(vn_run["record"])}
    assert {(a.alert_id, a.seq) for a in alerts} == recorded
    assert all(isinstance(a, Alert) and a.snapshot_jpeg and a.snapshot_jpeg[:2] == b"\xff\xd8"
               for a in alerts if a.kind == "new")

    statuses = [EdgeStatus.model_validate_json(p) for p in sub.on(edge_status_topic("edge-test"))]
    assert [s.state for s in statuses][-1] == "offline"  # said goodbye on the way out
    assert "online" in [s.state for s in statuses]
    cams = [CameraStatus.model_validate_json(p)
            for p in sub.on(camera_status_topic("edge-test", "cam1"))]
    assert cams and cams[-1].state == "offline"
    assert sub.on(f"{TOPIC_ROOT}/heartbeat/edge-test"), "no heartbeat"


def test_riders_crossing_the_road_never_alert(tmp_path: Path) -> None:
    stats = run(edge_config(BJ_CLIP, BJ_ROAD), until_eof=True, speed=0, record_dir=tmp_path,
                mqtt=False)
    assert stats.frames_analysed == 17  # 8.4 s at 2 fps
    assert [a for a in read_recorded(tmp_path) if a.kind == "new"] == []


def _frames(source: str, stop_after: int = 100, **camera: Any) -> tuple[list[Frame], list[str]]:
    """Frames and state changes of one capture thread replaying as fast as possible."""
    config = EdgeConfig.model_validate({"edge_id": "e", "cameras": [{"id": "c", "source": source,
                                                                     **camera}]})
    stop, wakeup = threading.Event(), threading.Event()
    states: list[str] = []
    capture = CameraCapture(config.cameras[0], stop, speed=0, wakeup=wakeup,
                            on_state=lambda cam, state, detail: states.append(state))
    capture.start()
    frames: list[Frame] = []
    while len(frames) < stop_after and not (capture.finished.is_set() and not len(capture.queue)):
        wakeup.clear()  # before looking, so a frame put meanwhile is not missed
        frame = capture.queue.get_nowait()
        if frame is None:
            assert wakeup.wait(30), "the capture thread neither sent a frame nor finished"
        else:
            frames.append(frame)
    stop.set()
    capture.join(5)
    return frames, states


def test_video_capture_samples_on_stream_time() -> None:
    frames, states = _frames(str(shared(VN_CLIP)), loop=False, sample_fps=2)
    assert [f.ts for f in frames] == [i / 2 for i in range(13)]
    assert frames[0].image.shape == (720, 1280, 3)
    assert states == ["online", "offline"]


def test_looping_video_continues_stream_time() -> None:
    frames, _ = _frames(str(shared(VN_CLIP)), stop_after=16, loop=True, sample_fps=2)
    ts = [f.ts for f in frames]
    assert ts == sorted(ts) and ts[-1] > 6.4  # second pass, time still increasing


def test_still_image_is_a_frozen_camera() -> None:
    frames, _ = _frames(str(shared("media/darknet_dog_bicycle.jpg")), stop_after=3,
                        sample_fps=0.5)
    assert [f.ts for f in frames] == [0.0, 2.0, 4.0]
    frames, _ = _frames(str(shared("media/darknet_dog_bicycle.jpg")), loop=False)
    assert len(frames) == 1
