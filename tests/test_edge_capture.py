"""Camera sources on real media: sampling and stream time for both decoders, key-frame-only
decoding, a live HTTP MJPEG camera, reconnect with backoff and scrubbed credentials, frozen and
lagging pictures."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest

from edge.capture import CameraCapture, Frame, redact, scrub
from edge.capture.decode import OpenCVDecoder, PyAVDecoder
from edge.config import EdgeConfig
from simulators.mjpeg_server import MjpegServer, load_jpegs
from tests.conftest import shared
from tests.waiting import wait_until

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
BJ_CLIP = "media/cn_beijing_uadetrac_intersection_8s.mp4"
STILL = "media/darknet_dog_bicycle.jpg"
SECRET = "s3cr3t-pw"


def camera(source: str, **extra: Any) -> Any:
    return EdgeConfig.model_validate(
        {"edge_id": "e", "cameras": [{"id": "c", "source": source, **extra}]}).cameras[0]


class Recorder:
    """One capture thread, its frames and every status it reported."""

    def __init__(self, source: str, speed: float = 0, **extra: Any) -> None:
        self.stop = threading.Event()
        #: Set by the capture thread for every frame and at its end, and here for every
        #: status: what ``collect`` waits on.
        self.wakeup = threading.Event()
        self.states: list[tuple[str, str, float | None]] = []
        self.frames: list[Frame] = []
        self.capture = CameraCapture(camera(source, **extra), self.stop, speed=speed,
                                     on_state=self._on_state, wakeup=self.wakeup,
                                     queue_size=1000)

    def _on_state(self, camera_id: str, state: str, detail: str,
                  fps: float | None = None) -> None:
        self.states.append((state, detail, fps))
        self.wakeup.set()

    def __enter__(self) -> Recorder:
        self.capture.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.capture.join(10)
        assert not self.capture.is_alive()

    def collect(self, until: float, frames: int = 10**9,
                done: Callable[[], bool] = lambda: False) -> list[Frame]:
        """Take frames for ``until`` seconds, until there are ``frames`` of them, the capture
        has finished, or ``done()``; between frames it waits on the capture's wakeup."""
        deadline = time.monotonic() + until
        while len(self.frames) < frames and not done():
            self.wakeup.clear()  # before looking, so a frame put meanwhile is not missed
            frame = self.capture.queue.get_nowait()
            if frame is not None:
                self.frames.append(frame)
                continue
            if self.capture.finished.is_set():
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.wakeup.wait(left)
        return self.frames

    def wait_state(self, state: str, timeout: float) -> bool:
        """Whether the last status became ``state`` within ``timeout`` (frames are taken
        meanwhile, so a file replay that blocks on a full queue keeps going)."""
        self.collect(timeout, done=lambda: bool(self.states) and self.states[-1][0] == state)
        return bool(self.states) and self.states[-1][0] == state


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- files ------------------------------------------------------------------------------------

@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_file_sampling_and_loop_continuity(decoder: str) -> None:
    with Recorder(str(shared(VN_CLIP)), loop=True, sample_fps=2, decoder=decoder) as rec:
        frames = rec.collect(30, frames=20)
    ts = [f.ts for f in frames]
    # First pass on the 0.5 s grid; the clip is 191 frames at 30 fps = 6.367 s, so the second
    # pass starts at 6.367 and keeps to the grid: stream time never steps back.
    assert ts[:13] == [i / 2 for i in range(13)]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert ts[13] == pytest.approx(191 / 30 + 4 / 30)  # the first frame at or after 6.5 s
    assert all(b - a == pytest.approx(0.5, abs=0.04) for a, b in pairwise(ts[13:]))
    assert frames[0].image.shape == (720, 1280, 3)
    assert rec.states[0][0] == "online"


def test_both_decoders_sample_the_same_pictures() -> None:
    path = str(shared(BJ_CLIP))
    out = {}
    for cls in (PyAVDecoder, OpenCVDecoder):
        decoder = cls(path, period=1.0, live=False)
        out[cls.name] = list(decoder.frames())
        decoder.close()
        # Only sampled frames are converted to BGR.
        assert decoder.stats.converted == len(out[cls.name]) == 9
    assert [t for t, _ in out["pyav"]] == [t for t, _ in out["opencv"]]
    for (_, a), (_, b) in zip(out["pyav"], out["opencv"], strict=True):
        assert abs(a.astype(int) - b.astype(int)).mean() < 3  # same picture, two FFmpeg builds


def test_pyav_skips_non_reference_frames() -> None:
    decoder = PyAVDecoder(str(shared(BJ_CLIP)), period=1.0, live=False)
    ts = [t for t, _ in decoder.frames()]
    decoder.close()
    assert ts == [float(i) for i in range(9)]
    # 252 frames in the file; the non-reference B-frames between samples are never decoded.
    assert decoder.stats.packets == 252
    assert decoder.stats.decoded < 0.6 * 252


def _key_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(p.pts * stream.time_base) for p in container.demux(stream)
                if p.pts is not None and p.is_keyframe]


@pytest.mark.parametrize("clip", [BJ_CLIP, VN_CLIP, "media/vtest.avi"])
def test_keyframe_only_decoding_returns_the_key_frames(clip: str) -> None:
    path = shared(clip)
    keys = _key_times(path)  # Beijing: 0 and 8.33 s; Vietnam: 0 only; vtest: every 25 s
    decoder = PyAVDecoder(str(path), period=0.1, live=False, strategy="keyframes")
    got = list(decoder.frames())
    decoder.close()
    assert [t for t, _ in got] == pytest.approx(keys)
    assert decoder.stats.decoded == len(keys)


def test_auto_decodes_key_frames_only_when_sampling_is_sparser_than_the_gop() -> None:
    # vtest.avi has a key frame every 25 s; sampling every 50 s needs only every other one.
    path = shared("media/vtest.avi")
    decoder = PyAVDecoder(str(path), period=50.0, live=False)
    ts = [t for t, _ in decoder.frames()]
    decoder.close()
    assert ts == [0.0, 50.0]
    assert decoder.stats.mode == "keyframes" and decoder.stats.gop_s == pytest.approx(25.0)
    assert decoder.stats.decoded < 300  # of 795: the second GOP, then only key frames


def test_still_image_is_reported_frozen() -> None:
    with Recorder(str(shared(STILL)), speed=0, sample_fps=2, frozen_after_s=3) as rec:
        rec.collect(10, frames=10)
        assert rec.wait_state("frozen", 5)
    assert [s[0] for s in rec.states] == ["online", "frozen"]
    assert "unchanged" in rec.states[-1][1]


def test_a_moving_street_is_not_frozen() -> None:
    with Recorder(str(shared(VN_CLIP)), loop=False, sample_fps=2, frozen_after_s=2) as rec:
        rec.collect(20)
    assert [s[0] for s in rec.states] == ["online", "offline"]


def test_replay_that_cannot_keep_pace_is_lagging() -> None:
    # A 30 fps clip replayed at 200x would need 6000 frames/s from the decoder.
    with Recorder(str(shared(VN_CLIP)), speed=200, loop=True, sample_fps=10, lag_s=0.5) as rec:
        assert rec.wait_state("lagging", 20)
    assert "behind real time" in rec.states[-1][1]


# --- live: HTTP MJPEG ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vn_jpegs() -> list[bytes]:
    return load_jpegs(shared(VN_CLIP), max_frames=40, every=4)


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_http_mjpeg_camera(vn_jpegs: list[bytes], decoder: str) -> None:
    server = MjpegServer(jpegs=vn_jpegs, fps=10).start()
    try:
        with Recorder(server.url, sample_fps=2, decoder=decoder) as rec:
            frames = rec.collect(10, frames=5)
    finally:
        server.stop()
    assert len(frames) == 5
    assert frames[0].image.shape == (720, 1280, 3)
    ts = [f.ts for f in frames]
    assert all(0.35 < b - a < 0.8 for a, b in pairwise(ts)), ts  # wall-clock paced
    assert rec.states[0][0] == "online"
    assert rec.capture.health.fps == pytest.approx(10, rel=0.35)


def test_frozen_mjpeg_camera(vn_jpegs: list[bytes]) -> None:
    server = MjpegServer(jpegs=vn_jpegs, fps=10, freeze=True).start()
    try:
        with Recorder(server.url, sample_fps=2, frozen_after_s=2) as rec:
            assert rec.wait_state("frozen", 10)
    finally:
        server.stop()
    assert [s[0] for s in rec.states] == ["online", "frozen"]


def test_slow_mjpeg_camera_is_lagging(vn_jpegs: list[bytes]) -> None:
    server = MjpegServer(jpegs=vn_jpegs, fps=0.8).start()  # sampling needs 2 fps
    try:
        with Recorder(server.url, sample_fps=2) as rec:
            assert rec.wait_state("lagging", 10)
    finally:
        server.stop()
    _state, detail, fps = rec.states[-1]
    assert "delivers" in detail and fps == pytest.approx(0.8, rel=0.3)


def test_lost_mjpeg_camera_goes_offline_and_comes_back(vn_jpegs: list[bytes]) -> None:
    server = MjpegServer(jpegs=vn_jpegs, fps=10).start()
    port = server.port
    with Recorder(server.url, sample_fps=2, timeout_s=2) as rec:
        assert rec.wait_state("online", 10)
        server.stop()
        assert rec.wait_state("offline", 10)
        server = MjpegServer(jpegs=vn_jpegs, fps=10, port=port).start()
        try:
            assert rec.wait_state("online", 15)
        finally:
            server.stop()


# --- unreachable cameras and credentials -----------------------------------------------------

@pytest.mark.parametrize("url", [
    f"rtsp://admin:{SECRET}@127.0.0.1:{{port}}/Streaming/Channels/101",
    f"http://viewer:{SECRET}@127.0.0.1:{{port}}/video.mjpg?token={SECRET}",
])
def test_unreachable_camera_is_offline_with_backoff_and_no_credentials(
        url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    url = url.format(port=closed_port())
    caplog.set_level(logging.DEBUG)
    with Recorder(url, timeout_s=2) as bad, Recorder(str(shared(STILL)), speed=1,
                                                     sample_fps=2) as good:
        good_frames = good.collect(4.5)
        bad.collect(0.1)
    assert bad.states and all(s[0] == "offline" for s in bad.states)
    assert len(bad.states) == 1  # reported once, not once per retry
    waits = bad.capture.retry_waits
    assert waits[:3] == [1.0, 2.0, 4.0][:len(waits)] and len(waits) >= 2
    # The other camera of the same edge kept running, about 2 frames a second.
    assert 7 <= len(good_frames) <= 11
    seen = repr(bad.states) + caplog.text + "".join(capfd.readouterr())
    assert SECRET not in seen
    assert "***" in bad.states[0][1]


def test_backoff_is_capped() -> None:
    url = f"http://127.0.0.1:{closed_port()}/x.m3u8"
    cam = camera(url, reconnect_max_s=2)
    stop = threading.Event()
    capture = CameraCapture(cam, stop)
    capture.start()
    # 1 + 2 + 2 s of waits: the fourth retry is planned about 5 s in.
    wait_until(lambda: len(capture.retry_waits) >= 4, 15, "four reconnect attempts")
    stop.set()
    capture.join(5)
    assert capture.retry_waits[:4] == [1.0, 2.0, 2.0, 2.0]


def test_redaction() -> None:
    assert redact("rtsp://admin:pw@10.0.0.5:554/ch1") == "rtsp://admin:***@10.0.0.5:554/ch1"
    assert redact("http://cam/x.mjpg?user=a&password=pw") == "http://cam/x.mjpg?user=a&password=***"
    text = "Connection refused: 'rtsp://admin:pw@10.0.0.5/ch1'"
    assert scrub(text) == "Connection refused: 'rtsp://admin:***@10.0.0.5/ch1'"
    assert "pw" not in scrub("failed pw here", "rtsp://u:pw@h/x")


# --- live: RTSP (GStreamer's RTSP server from Debian, see simulators/rtsp_server.py) ----------

@pytest.fixture(scope="module")
def rtsp_camera() -> Any:
    import subprocess

    port = closed_port()
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(Path(__file__).parents[1] / "simulators" / "rtsp_server.py"),
         str(shared(BJ_CLIP)), "--port", str(port), "--user", "admin", "--password", SECRET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY"):
        proc.kill()
        pytest.fail("the RTSP test server did not start (Debian packages "
                    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad} "
                    f"python3-gi): {proc.stderr.read() if proc.stderr else ''}"[-2000:])
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_rtsp_camera_with_credentials(rtsp_camera: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{rtsp_camera}/cam"
    with Recorder(url, sample_fps=1) as rec:
        frames = rec.collect(15, frames=3)
    assert len(frames) == 3 and frames[0].image.shape == (540, 960, 3)
    assert [f.ts - frames[0].ts for f in frames] == pytest.approx([0, 1, 2], abs=0.1)
    assert rec.states[0][0] == "online"
    wrong = url.replace(SECRET, "wrong-" + SECRET)
    with Recorder(wrong, sample_fps=1, timeout_s=3) as rec:
        assert rec.wait_state("offline", 10)
    assert SECRET not in repr(rec.states) + caplog.text
