"""The rolling packet buffer of alert clips (edge/capture/packets.py): bounds in seconds and
bytes, whole key-frame groups, and a real camera's packets fed by the capture thread."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import pytest

from edge.capture import CameraCapture
from edge.capture.packets import CameraPackets, Packet, PacketRing, StreamInfo
from edge.config import CameraConfig
from tests.conftest import shared
from tests.waiting import wait_until

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
INFO = StreamInfo("h264", 64, 64, Fraction(1, 90000), b"template", b"sps-pps")


def feed(ring: PacketRing, seconds: float, *, fps: int = 25, gop: int = 25,
         size: int = 1000) -> None:
    """``seconds`` of a synthetic camera: a key frame every ``gop`` packets."""
    for i in range(int(seconds * fps)):
        ring.append(Packet(i / fps, i / fps, bytes(size), keyframe=i % gop == 0,
                           duration=1 / fps))


def test_ring_keeps_at_least_max_s_in_whole_gops() -> None:
    ring = PacketRing(max_s=5, max_bytes=10**9)
    ring.reset(INFO)
    feed(ring, 30)
    latest, earliest = ring.latest, ring.earliest
    assert latest is not None and earliest is not None
    # Reaches back at least 5 s, and not more than one GOP (1 s) beyond.
    assert 5 <= latest - earliest <= 6 + 1e-9
    window = ring.window(0, 100)
    assert window is not None and window.packets[0].keyframe
    assert window.packets[0].pts == earliest


def test_ring_bytes_bound_is_hard() -> None:
    ring = PacketRing(max_s=60, max_bytes=30_000)
    ring.reset(INFO)
    feed(ring, 10)
    assert ring.size <= 30_000
    window = ring.window(0, 100)
    assert window is not None and window.packets[0].keyframe


def test_a_gop_bigger_than_the_budget_is_dropped_and_counted() -> None:
    ring = PacketRing(max_s=60, max_bytes=20_000)
    ring.reset(INFO)
    feed(ring, 4, gop=100)  # one 100-packet GOP of 100 kB
    assert ring.overflows >= 1 and ring.size <= 20_000


def test_packets_before_the_first_key_frame_are_not_kept() -> None:
    ring = PacketRing(max_s=10, max_bytes=10**9)
    ring.reset(INFO)
    ring.append(Packet(0.0, 0.0, b"p", keyframe=False))
    assert len(ring) == 0 and ring.window(0, 1) is None
    ring.append(Packet(0.04, 0.04, b"k", keyframe=True))
    assert len(ring) == 1


def test_window_starts_at_the_key_frame_before_start_and_cuts_in_decode_order() -> None:
    ring = PacketRing(max_s=60, max_bytes=10**9)
    ring.reset(INFO)
    feed(ring, 10)  # key frames at 0, 1, 2, ... s
    window = ring.window(3.5, 6.0)
    assert window is not None
    assert window.packets[0].keyframe and window.packets[0].pts == 3.0
    assert all(p.decode_ts <= 6.0 for p in window.packets)
    assert window.packets[-1].pts == pytest.approx(6.0)
    # Before the buffer: from the oldest key frame kept.
    assert ring.window(-10, 1).packets[0].pts == 0.0  # type: ignore[union-attr]


def test_new_codec_parameters_start_the_buffer_again() -> None:
    ring = PacketRing(max_s=60, max_bytes=10**9)
    ring.reset(INFO)
    feed(ring, 2)
    ring.reset(INFO)  # the same stream again (a file's next loop): kept
    assert len(ring) == 50
    ring.reset(StreamInfo("h264", 64, 64, Fraction(1, 90000), b"other", b"sps-pps"))
    assert len(ring) == 50  # another template of the same parameters
    ring.reset(StreamInfo("h264", 128, 128, Fraction(1, 90000), b"other", b"sps-pps"))
    assert len(ring) == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_s > 0"):
        PacketRing(max_s=0, max_bytes=1)


def test_capture_feeds_every_packet_of_a_real_file_without_decoding_more() -> None:
    """The capture thread pushes every demuxed packet of the file (191), key frame first, on
    the frames' clock, while sampling 1 fps still skips decoding; listeners see them too."""
    camera = CameraConfig(id="cam1", source=str(shared(VN_CLIP)), loop=False, sample_fps=1)
    packets = CameraPackets("cam1", PacketRing(max_s=60, max_bytes=64 * 1024 * 1024))
    seen: list[float] = []
    stop_listening = packets.listen(lambda _info, p: seen.append(p.pts))
    capture = CameraCapture(camera, threading.Event(), speed=0, packets=packets)
    capture.start()
    frames = []
    while not (capture.finished.is_set() and not len(capture.queue)):
        frame = capture.queue.get_nowait()
        if frame is not None:
            frames.append(frame)
    capture.join(5)
    stop_listening()
    assert len(packets.ring) == 191 and len(seen) == 191
    assert packets.ring.info is not None and packets.ring.info.codec == "h264"
    assert packets.ring.info.browser_playable
    window = packets.ring.window(0, 100)
    assert window is not None and window.packets[0].keyframe and window.start == 0.0
    assert window.end == pytest.approx(6.366, abs=0.05)
    assert [f.ts for f in frames][:2] == [0.0, 1.0]
    # A camera read through OpenCV has no packets to give.
    stop = threading.Event()
    opencv = CameraCapture(camera.model_copy(update={"decoder": "opencv"}), stop, speed=0,
                           packets=CameraPackets("cam1", PacketRing(60, 10**8)))
    opencv.start()
    wait_until(lambda: len(opencv.queue) > 0, 10, "the OpenCV capture's first frame")
    stop.set()
    opencv.join(10)
    assert opencv.packets is None


def test_stream_info_template_copies_codec_parameters() -> None:
    with av.open(str(shared(VN_CLIP))) as container:
        info = StreamInfo.from_stream(container.streams.video[0])
    with av.open(str(shared(VN_CLIP))) as container:
        again = StreamInfo.from_stream(container.streams.video[0])
    assert (info.codec, info.width, info.height) == ("h264", 1280, 720)
    assert len(info.template) < 4096
    assert info.same_codec(again)  # the file opened again (a loop): the buffer goes on


def test_a_looping_file_keeps_one_buffer_across_its_loops() -> None:
    """A file replayed in a loop (like a camera reconnecting to the same stream) continues
    the buffer on one clock instead of starting it again at every pass."""
    camera = CameraConfig(id="cam1", source=str(shared(VN_CLIP)), loop=True, duration_s=15,
                          sample_fps=1)
    packets = CameraPackets("cam1", PacketRing(max_s=60, max_bytes=64 * 1024 * 1024))
    capture = CameraCapture(camera, threading.Event(), speed=0, packets=packets)
    capture.start()
    while not (capture.finished.is_set() and not len(capture.queue)):
        capture.queue.get_nowait()
    capture.join(5)
    earliest, latest = packets.ring.earliest, packets.ring.latest
    assert earliest == 0.0 and latest is not None and latest > 12
    assert len(packets.ring) > 191  # more than one pass of the file
