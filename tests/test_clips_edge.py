"""Alert clips on the edge (edge/clips.py, edge/clip_outbox.py): the real edge on a real clip
cuts a clip that reaches back to the bike's arrival, remuxed (not re-encoded) into an MP4 a
browser can start early, kept on disk until the broker has every chunk, resumed after a
restart."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import av
import paho.mqtt.client as mqtt
import pytest
from pydantic import ValidationError

from edge.capture import CameraCapture
from edge.capture.packets import CameraPackets, PacketRing
from edge.clip_outbox import ClipOutbox
from edge.clips import remux_mp4
from edge.config import CameraConfig, EdgeConfig
from edge.publish import read_recorded
from edge.runner import run
from simulators.demo import DEMO_CAMERAS, DEMO_DETECTOR
from tests.clip_media import VN_CLIP, arriving_bike_clip
from tests.conftest import shared
from tests.mqtt_helpers import close_client
from tests.waiting import wait_until
from wire.protocol import CLIP_CHUNK_BYTES, ClipChunk, ClipKind, clip_id_for

#: Seconds the pavement is hidden before the bike shows (tests/clip_media.py).
HIDDEN_S = 5.0


@pytest.fixture(scope="module")
def arriving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bike arrives at 5 s, stands 6.4 s, is hidden again for 7 s (the violation ends)."""
    return arriving_bike_clip(tmp_path_factory.mktemp("media") / "arriving.mp4",
                              hidden_s=HIDDEN_S, gone_s=7.0)


def demo_camera(source: Path, **extra: Any) -> dict[str, Any]:
    vn = next(c for c in DEMO_CAMERAS if c["id"] == "cam-vn-01")
    return {k: v for k, v in vn.items() if k != "media"} | {
        "source": str(source), "loop": False, **extra}


def edge_config(source: Path, **extra: Any) -> EdgeConfig:
    return EdgeConfig.model_validate({"edge_id": "edge-demo", "detector": DEMO_DETECTOR,
                                      "cameras": [demo_camera(source)], **extra})


def describe_mp4(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        codec = stream.codec_context.name
    return {"frames": len(frames), "codec": codec, "first_key": frames[0].key_frame,
            "moov_first": data.find(b"moov") < data.find(b"mdat"),
            "seconds": frames[-1].time - frames[0].time if frames else 0}


def test_violation_clip_starts_before_the_bike_arrived(arriving: Path, tmp_path: Path) -> None:
    """Offline replay: the ``new`` comes about 2 s after the bike appears (its dwell), and
    its clip reaches back to the pre-roll before the first sighting, not before the ``new``;
    the ``end`` clip shows the pavement clear."""
    run(edge_config(arriving), until_eof=True, speed=0, record_dir=tmp_path, mqtt=False)
    alerts = read_recorded(tmp_path)
    new = next(a for a in alerts if a.kind == "new" and a.zone_id == "pavement-east")
    assert any(a.kind == "end" and a.alert_id == new.alert_id for a in alerts)
    clips = {d["kind"]: d for d in (json.loads(p.read_text())
                                    for p in (tmp_path / "clips").glob("*.json"))}
    assert set(clips) == {"violation", "end"}
    violation = clips["violation"]
    assert violation["clip_id"] == str(clip_id_for(new.alert_id, "violation"))
    started = datetime.fromisoformat(violation["started_at"])
    # started_at is the first sighting; the clip begins the pre-roll (5 s) before it, at a
    # key frame (one a second here), so 4 to 6 s before.
    assert timedelta(seconds=4) <= new.started_at - started <= timedelta(seconds=6)
    assert datetime.fromisoformat(violation["ended_at"]) > new.last_seen_at
    mp4 = describe_mp4(tmp_path / "clips" / f"{violation['clip_id']}.mp4")
    assert mp4 | {"frames": 0, "seconds": 0} == {"frames": 0, "codec": "h264",
                                                 "first_key": True, "moov_first": True,
                                                 "seconds": 0}
    assert mp4["seconds"] >= 8  # pre-roll + dwell + post-roll (cut short by the file's end)
    assert violation["size"] == (tmp_path / "clips" / f"{violation['clip_id']}.mp4").stat().st_size
    end = clips["end"]
    assert end["alert_id"] == str(new.alert_id)
    assert 4 <= (datetime.fromisoformat(end["ended_at"])
                 - datetime.fromisoformat(end["started_at"])).total_seconds() <= 6.5


def test_remux_keeps_every_frame_of_a_b_frame_stream(tmp_path: Path) -> None:
    """The real clip has B-frames (pts != dts): cut from the buffer and remuxed, all 191
    frames decode again, from a key frame, without re-encoding (same packet bytes)."""
    camera = CameraConfig(id="cam1", source=str(shared(VN_CLIP)), loop=False, sample_fps=1)
    packets = CameraPackets("cam1", PacketRing(max_s=60, max_bytes=64 * 1024 * 1024))
    capture = CameraCapture(camera, threading.Event(), speed=0, packets=packets)
    capture.start()
    while not (capture.finished.is_set() and not len(capture.queue)):
        capture.queue.get_nowait()
    capture.join(5)
    window = packets.ring.window(0, 100)
    assert window is not None
    remux_mp4(window, tmp_path / "clip.mp4")
    assert describe_mp4(tmp_path / "clip.mp4")["frames"] == 191
    with av.open(str(tmp_path / "clip.mp4")) as container:
        sizes = [p.size for p in container.demux(video=0) if p.size]
    assert sizes == [len(p.data) for p in window.packets]


def _description(clip: bytes, alert_id: uuid.UUID,
                 kind: ClipKind = "violation") -> dict[str, Any]:
    return {"clip_id": str(clip_id_for(alert_id, kind)), "alert_id": str(alert_id), "kind": kind,
            "edge_id": "edge-demo", "camera_id": "cam-vn-01",
            "started_at": "2026-12-07T10:00:00+00:00", "ended_at": "2026-12-07T10:00:12+00:00",
            "codec": "h264", "content_type": "video/mp4", "size": len(clip),
            "sha256": hashlib.sha256(clip).hexdigest(), "count": -(-len(clip) // CLIP_CHUNK_BYTES)}


def _put(outbox: ClipOutbox, clip: bytes, alert_id: uuid.UUID) -> str:
    description = _description(clip, alert_id)
    path = outbox.temp_path(description["clip_id"])
    path.write_bytes(clip)
    outbox.put(description, path)
    return str(description["clip_id"])


def test_outbox_deletes_a_clip_only_when_every_chunk_is_acknowledged(tmp_path: Path) -> None:
    clip = bytes(range(256)) * (CLIP_CHUNK_BYTES * 2 // 256 + 10)  # three chunks
    outbox = ClipOutbox(tmp_path)
    clip_id = _put(outbox, clip, uuid.uuid4())
    chunks = outbox.next_chunks(10)
    assert [c.key[1] for c in chunks] == [0, 1, 2]
    assert outbox.next_chunks(10) == []  # in flight: not handed out twice
    parsed = [ClipChunk.model_validate_json(c.payload) for c in chunks]
    assert b"".join(p.data for p in parsed) == clip
    outbox.ack(chunks[0].key)
    outbox.close()
    # A restart: the two unacknowledged chunks go again, the acknowledged one does not.
    again = ClipOutbox(tmp_path)
    assert [c.key for c in again.next_chunks(10)] == [(clip_id, 1), (clip_id, 2)]
    again.ack((clip_id, 1))
    assert (tmp_path / f"{clip_id}.mp4").exists()
    again.ack((clip_id, 2))
    assert again.pending() == 0 and not list(tmp_path.iterdir())


def test_outbox_bound_drops_the_oldest_waiting_clip(tmp_path: Path) -> None:
    outbox = ClipOutbox(tmp_path, max_clips=2)
    first = _put(outbox, b"a" * 100, uuid.uuid4())
    _put(outbox, b"b" * 100, uuid.uuid4())
    _put(outbox, b"c" * 100, uuid.uuid4())
    assert outbox.pending() == 2 and outbox.dropped == 1
    assert not (tmp_path / f"{first}.mp4").exists()
    # Leftovers of a crash (an MP4 without its description, a half-written file) go at start.
    (tmp_path / "orphan.mp4").write_bytes(b"x")
    (tmp_path / "half.mp4.tmp").write_bytes(b"x")
    assert ClipOutbox(tmp_path).pending() == 2
    assert not (tmp_path / "orphan.mp4").exists() and not (tmp_path / "half.mp4.tmp").exists()


class ChunkCollector:
    """Subscribes to every clip topic and keeps the chunks, as the center would."""

    def __init__(self, port: int) -> None:
        self.chunks: dict[tuple[str, int], ClipChunk] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"clips-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("gridwatch/v1/clips/#", qos=1)
        self.client.loop_start()

    def _message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        chunk = ClipChunk.model_validate_json(message.payload)
        self.chunks[str(chunk.clip_id), chunk.index] = chunk

    def whole(self) -> dict[str, bytes]:
        """The clips whose every chunk arrived."""
        out = {}
        for clip_id in {k[0] for k in self.chunks}:
            parts = sorted((k[1], c) for k, c in self.chunks.items() if k[0] == clip_id)
            if len(parts) == parts[0][1].count:
                out[clip_id] = b"".join(c.data for _, c in parts)
        return out

    def close(self) -> None:
        close_client(self.client)


def test_clips_cross_the_broker_and_resume_after_a_restart(arriving: Path, tmp_path: Path,
                                                           mqtt_broker: Any) -> None:
    """An edge whose broker is unreachable keeps its clips on disk; restarted with the broker
    back, it sends them, whole (sha256), and deletes them once acknowledged."""
    state = tmp_path / "state"
    offline = edge_config(arriving, state_dir=str(state), broker={"port": 1})
    run(offline, until_eof=True, speed=0)
    waiting = sorted(p.name for p in (state / "clips").glob("*.json"))
    assert len(waiting) == 2
    collector = ChunkCollector(mqtt_broker.port)
    try:
        # Restarted on an empty camera (a still image), broker reachable: the clips go out.
        still = tmp_path / "still.jpg"
        still.write_bytes(shared("media/darknet_person.jpg").read_bytes())
        online = edge_config(still, state_dir=str(state), broker={"port": mqtt_broker.port})
        stop = threading.Event()
        edge = threading.Thread(target=run, args=(online,), kwargs={"stop_event": stop})
        edge.start()
        try:
            wait_until(lambda: len(collector.whole()) == 2, 60, "both clips at the subscriber")
            wait_until(lambda: not list((state / "clips").glob("*.json")), 30,
                       "the edge to delete its acknowledged clips")
        finally:
            stop.set()
            edge.join(30)
        for clip_id, data in collector.whole().items():
            first = collector.chunks[clip_id, 0]
            assert hashlib.sha256(data).hexdigest() == first.sha256 and len(data) == first.size
    finally:
        collector.close()


def test_a_buffer_too_short_for_the_dwell_is_refused_with_the_reason(tmp_path: Path) -> None:
    from edge.config import ConfigError, load_config

    path = tmp_path / "edge.yaml"
    path.write_text(
        "edge_id: edge-1\n"
        "cameras:\n"
        "  - id: cam1\n"
        "    source: street.mp4\n"
        "    clips: {buffer_s: 20, pre_roll_s: 5}\n"
        "    zones:\n"
        "      - {id: z, polygon: [[0, 0], [1, 0], [1, 1]], dwell_s: 30,\n"
        "         rules: [{type: illegal_parking}]}\n")
    with pytest.raises(ConfigError, match=r"edge.yaml:3: .*clips.buffer_s 20 is shorter than "
                                          r"the longest dwell \(30 s\) \+ clips.pre_roll_s"):
        load_config(path)
    with pytest.raises(ValidationError, match=r"cameras\.0\.clips\.pre_roll_s"):
        EdgeConfig.model_validate({"edge_id": "e", "cameras": [
            {"id": "c", "source": "x.mp4", "clips": {"pre_roll_s": -1}}]})
