"""Live view with real parts: a live H.264 camera (simulators/clock_camera.py) read by a real
edge process, segments over Mosquitto to the real center, played by hls.js in Chromium."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import yaml
from PIL import Image
from playwright.sync_api import Browser, expect

from simulators.clock_camera import ClockCamera
from tests.browser import browser, new_page, new_ticket_card  # noqa: F401 - the fixture
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, close_client, make_alert
from tests.waiting import wait_until
from wire.protocol import (
    LiveRequest,
    LiveState,
    live_data_topic,
    live_request_topic,
    live_state_topic,
)

#: The demo district's camera on edge-demo, in micro-grid mg-011 (worker w-0111's).
CAMERA = "cam-vn-01"
EDGE = "edge-demo"
#: A worker of another micro-grid, with no case at CAMERA.
OUTSIDER = "w-0211"


@pytest.fixture
def center_settings() -> dict[str, Any]:
    """Short timers, so that a stream nobody watches stops within seconds; not so short
    that a loaded box's late playlist fetch or renewal ends a watched stream (a full run
    once lost one at idle 3 s / TTL 4 s: the page then asked again, after a 404)."""
    return {"live": {"idle_s": 6.0, "keepalive_s": 1.0, "edge_ttl_s": 8.0,
                     "viewers_per_camera": 2,
                     "start_timeout_s": 15.0}}


@pytest.fixture
def clock_camera() -> Iterator[ClockCamera]:
    camera = ClockCamera(fps=25, gop_s=0.5).start()
    yield camera
    camera.stop()


def edge_config(tmp_path: Path, broker_port: int, source: str) -> Path:
    boxes = tmp_path / "boxes.yaml"
    boxes.write_text("frames: {}\n")
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge_id": EDGE, "broker": {"port": broker_port},
        "detector": {"model": "fake", "path": str(boxes)},
        "cameras": [{"id": CAMERA, "source": source, "sample_fps": 1, "timeout_s": 5,
                     "reconnect_max_s": 2}]}))
    return config


def start_edge(center: RunningCenter, config: Path, log: Any) -> subprocess.Popen[str]:
    """The real edge process, once its camera is online at the center."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gridwatch.cli", "edge", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    client = center.client("op-01")
    try:
        wait_until(lambda: process.poll() is None and any(
            c["id"] == CAMERA and c["state"] == "online"
            for c in client.get("/api/v1/cameras").json()), 30, "the camera online")
    except BaseException:
        process.terminate()
        process.wait(20)
        raise
    return process


@pytest.fixture
def edge_yaml(mqtt_broker: Any, clock_camera: ClockCamera, tmp_path: Path) -> Path:
    return edge_config(tmp_path, mqtt_broker.port, clock_camera.url)


@pytest.fixture
def edge(center: RunningCenter, edge_yaml: Path,
         tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with (tmp_path / "edge.log").open("a") as log:
        process = start_edge(center, edge_yaml, log)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(20)


class LiveWatcher:
    """Every live-state and live-data message of the broker, as a test sees them."""

    def __init__(self, port: int) -> None:
        self.states: list[LiveState] = []
        self.chunks = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(live_state_topic("+", "+"), 1), (live_data_topic("+", "+"), 0)])
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if "/live-state/" in msg.topic:
                self.states.append(LiveState.model_validate_json(msg.payload))
            else:
                self.chunks += 1

    def said(self, state: str, reason: str | None = None,
             stream_id: str | None = None) -> LiveState | None:
        """The first ``state`` heard (of that stream: a retained state of an earlier test's
        stream may come first)."""
        with self._lock:
            return next((s for s in self.states if s.state == state
                         and (reason is None or s.reason == reason)
                         and (stream_id is None or s.stream_id == stream_id)), None)

    def close(self) -> None:
        close_client(self.client)


@pytest.fixture
def watcher(mqtt_broker: Any) -> Iterator[LiveWatcher]:
    w = LiveWatcher(mqtt_broker.port)
    yield w
    w.close()


def open_live(client: Any, camera: str = CAMERA) -> Any:
    return client.post(f"/api/v1/cameras/{camera}/live")


def wait_playing(client: Any) -> dict[str, Any]:
    def playing() -> dict[str, Any] | None:
        r = open_live(client)
        assert r.status_code == 200, r.text
        return r.json() if r.json()["state"] == "playing" else None

    return wait_until(playing, 30, "the live stream to play")


def test_live_stream_is_remuxed_h264_segments_over_mqtt(
        center: RunningCenter, edge: Any, watcher: LiveWatcher) -> None:
    client = center.client("op-01")
    answer = wait_playing(client)
    assert answer["camera_id"] == CAMERA and answer["transcoded"] is False
    assert "sig=" in answer["playlist"] and "rtsp" not in json.dumps(answer)
    playlist = center.client().get(answer["playlist"])  # no bearer: the signed URL is enough
    assert playlist.status_code == 200, playlist.text
    assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    urls = [line for line in playlist.text.splitlines() if line and not line.startswith("#")]
    assert urls and all("sig=" in u for u in urls)
    segment = center.client().get(urls[-1])
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp2t"
    with av.open(io.BytesIO(segment.content)) as ts:
        stream = ts.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in ts.decode(stream)]
    assert len(frames) >= 5 and not np.array_equal(frames[0], frames[-1])
    assert watcher.said("playing") is not None
    metrics = center.client().get("/metrics").text
    assert "gridwatch_live_streams 1.0" in metrics
    assert "gridwatch_live_transcoded_total 0.0" in metrics
    # Without the signature (or with another path's) nothing is served.
    assert center.client().get(urls[-1].split("?")[0]).status_code == 401


def test_idle_stream_stops_at_the_center_and_the_edge(
        center: RunningCenter, edge: Any, watcher: LiveWatcher) -> None:
    client = center.client("op-01")
    wait_playing(client)
    # Nobody asks any more: after idle_s the center sends stop, the edge says it stopped.
    stopped = wait_until(lambda: watcher.said("stopped"), 20, "the edge to stop the stream")
    assert stopped.reason == "stopped" and stopped.camera_id == CAMERA
    chunks = watcher.chunks
    # Once stopped, no more video flows (a later chunk would be from a new ask).
    wait_until(lambda: watcher.chunks == chunks, 5, "video to stop flowing")


def test_edge_stops_on_its_own_when_the_keepalive_runs_out(
        mqtt_broker: Any, edge: Any, watcher: LiveWatcher) -> None:
    """A center that asked once and died: the edge streams for the request's TTL, then stops
    by itself. The ask is published as the center would, and never renewed."""
    request = LiveRequest(edge_id=EDGE, camera_id=CAMERA, stream_id="orphan-stream",
                          action="start", ttl_s=3.0, at=datetime.now(UTC))
    publisher = Publisher(mqtt_broker.port)
    try:
        publisher.send(live_request_topic(EDGE), request.model_dump_json())
    finally:
        publisher.close()
    wait_until(lambda: watcher.said("playing", stream_id="orphan-stream"), 20,
               "the edge to stream")
    stopped = wait_until(lambda: watcher.said("stopped", stream_id="orphan-stream"), 20,
                         "the edge to stop by itself")
    assert stopped.reason == "expired"


def test_stream_goes_on_across_an_edge_restart(center: RunningCenter, edge_yaml: Path,
                                               tmp_path: Path) -> None:
    """The edge restarts mid-stream: the center keeps the stream and its viewer, the new edge
    process takes the renewal as a start, and the playlist marks where its clock began
    again (EXT-X-DISCONTINUITY) so hls.js plays on."""
    client = center.client("op-01")
    watching = threading.Event()

    def keep_watching(playlist: str) -> None:  # as hls.js does while the edge is away
        while not watching.wait(1.0):
            center.client().get(playlist)

    with (tmp_path / "edge.log").open("a") as log:
        first = start_edge(center, edge_yaml, log)
        try:
            answer = wait_playing(client)
            stream_id = answer["stream_id"]
            viewer = threading.Thread(target=keep_watching, args=(answer["playlist"],))
            viewer.start()
        finally:
            first.terminate()
            first.wait(20)
        try:
            second = start_edge(center, edge_yaml, log)
        finally:
            watching.set()
            viewer.join()
        try:
            answer = wait_playing(client)
            assert answer["stream_id"] == stream_id

            def resumed() -> str | None:
                text = center.client().get(open_live(client).json()["playlist"]).text
                after = text.split("#EXT-X-DISCONTINUITY\n", 1)
                return after[1] if len(after) == 2 and "sig=" in after[1] else None

            rest = wait_until(resumed, 30, "segments of the restarted edge")
            url = next(line for line in rest.splitlines() if line and not line.startswith("#"))
            with av.open(io.BytesIO(center.client().get(url).content)) as ts:
                assert sum(1 for _ in ts.decode(video=0)) >= 5
        finally:
            second.terminate()
            second.wait(20)


def test_scope_and_the_viewer_limit(center: RunningCenter, edge: Any) -> None:
    """A worker outside the camera's area gets 403, the area's worker and its leader may
    watch; past live.viewers_per_camera (2 here) the next person gets 429; asking again is
    no second viewer."""
    refused = open_live(center.client(OUTSIDER))
    assert refused.status_code == 403
    assert CAMERA in refused.json()["detail"] and OUTSIDER in refused.json()["detail"]
    assert open_live(center.client("w-0111")).status_code == 200
    assert open_live(center.client("l-011")).status_code == 200
    assert open_live(center.client("w-0111")).status_code == 200
    full = open_live(center.client("op-01"))
    assert full.status_code == 429 and "viewers_per_camera" in full.json()["detail"]
    assert open_live(center.client("op-01"), "no-such-camera").status_code == 404


def test_offline_camera_says_so(center: RunningCenter, mqtt_broker: Any,
                                tmp_path: Path) -> None:
    """An edge whose camera cannot be reached: the center answers 503 with the reason."""
    config = edge_config(tmp_path, mqtt_broker.port, "http://127.0.0.1:9/none.ts")
    process = subprocess.Popen(
        [sys.executable, "-m", "gridwatch.cli", "edge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = center.client("op-01")
        wait_until(lambda: any(c["id"] == CAMERA and c["state"] == "offline"
                               for c in client.get("/api/v1/cameras").json()), 30,
                   "the camera reported offline")
        answer = open_live(client)
        assert answer.status_code == 503
        assert "offline" in answer.json()["detail"] and CAMERA in answer.json()["detail"]
    finally:
        process.terminate()
        process.wait(20)


def test_malformed_live_messages_do_not_break_ingest(
        center: RunningCenter, mqtt_broker: Any, edge: Any) -> None:
    """Garbage on the live topics becomes dead letters; a real stream still plays."""
    publisher = Publisher(mqtt_broker.port)
    try:
        for payload in (b"", b"{", b'{"schema_version": 1}', b"\xff" * 10,
                        json.dumps({"schema_version": 1, "edge_id": EDGE, "camera_id": CAMERA,
                                    "stream_id": "abcdefgh", "seq": 0, "part": 3, "parts": 2,
                                    "duration_s": 1, "data": "%%%"})):
            publisher.send(live_data_topic(EDGE, CAMERA), payload)
        publisher.send(live_state_topic(EDGE, CAMERA), b'{"state": "playing"}')
        publisher.send(live_data_topic(EDGE, "cam-sim-12"), b"{}")
    finally:
        publisher.close()
    wait_playing(center.client("op-01"))


def test_live_tile_plays_in_chromium(center: RunningCenter, edge: Any,
                                     browser: Browser) -> None:  # noqa: F811
    """The engineer view's live button: the video's time grows and its picture changes."""
    page, errors = new_page(browser, 1280, 900, center=center, person_id="eng-01")
    page.goto(f"{center.url}/engineer?camera={CAMERA}")
    page.get_by_test_id("live-toggle").click()
    video = page.get_by_test_id("live-video")
    expect(video).to_have_attribute("data-live-state", "playing", timeout=30_000)

    def current_time() -> float:
        return float(video.evaluate("v => v.currentTime"))

    start = wait_until(current_time, 20, "the video to start")
    wait_until(lambda: current_time() > start + 1.0, 20, "the video's time to grow")
    first = Image.open(io.BytesIO(video.screenshot()))
    wait_until(lambda: np.abs(np.asarray(Image.open(io.BytesIO(video.screenshot())),
                                         dtype=np.int16) - np.asarray(first)).max() > 40,
               10, "the picture to change")
    page.get_by_test_id("live-toggle").click()
    expect(video).to_be_hidden()
    assert not [e for e in errors if "favicon" not in e], errors


def test_worker_watches_their_cases_camera_on_the_phone(
        center: RunningCenter, mqtt_broker: Any, edge: Any,
        browser: Browser) -> None:  # noqa: F811
    """The phone's case sheet: the worker plays the case's camera live (online only)."""
    page, errors = new_page(browser, 375, 812, center=center, person_id="w-0111")
    page.goto(f"{center.url}/phone?worker_id=w-0111")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    new_ticket_card(page, mqtt_broker.port).click()
    page.get_by_test_id("phone-live-toggle").click()
    video = page.get_by_test_id("phone-live-video")
    expect(video).to_have_attribute("data-live-state", "playing", timeout=30_000)
    start = float(video.evaluate("v => v.currentTime"))
    wait_until(lambda: float(video.evaluate("v => v.currentTime")) > start + 1.0, 20,
               "the phone's video to advance")
    page.get_by_test_id("detail-back").click()
    expect(video).to_be_hidden()
    assert not [e for e in errors if "favicon" not in e], errors


def test_leader_watches_a_cases_camera_live(center: RunningCenter, mqtt_broker: Any,
                                            edge: Any, browser: Browser) -> None:  # noqa: F811
    """The leader view: a case's camera plays live under its facts, as the micro-grid's
    leader may (l-011 leads mg-011)."""
    publisher = Publisher(mqtt_broker.port)
    try:
        publisher.alert(make_alert())
    finally:
        publisher.close()
    ticket = wait_until(lambda: center.client("l-011").get("/api/v1/tickets?open=true").json(),
                        15, "the case")[0]
    page, errors = new_page(browser, 1600, 1000, center=center, person_id="l-011")
    page.goto(f"{center.url}/leader?ticket={ticket['id']}")
    page.get_by_test_id("leader-live-toggle").click()
    video = page.get_by_test_id("leader-live-video")
    expect(video).to_have_attribute("data-live-state", "playing", timeout=30_000)
    start = float(video.evaluate("v => v.currentTime"))
    wait_until(lambda: float(video.evaluate("v => v.currentTime")) > start + 1.0, 20,
               "the leader's video to advance")
    page.get_by_test_id("leader-live-toggle").click()
    expect(video).to_have_count(0)
    assert not [e for e in errors if "favicon" not in e], errors
