"""Live view of a camera whose key frames are far apart (``live.max_keyframe_interval_s``):
remuxed, its segments would be as long as the key-frame spacing (the demo's looped street clips:
one key frame per 6-8 s loop); with the option on, it is transcoded into ~1 s segments and
counted as transcoded, with the reason. Real PyAV encodes the source and reads the segments."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from fractions import Fraction

import av
import numpy as np
import pytest

from edge.capture.packets import CameraPackets, Packet, PacketRing, StreamInfo
from edge.live.segmenter import Segment, Segmenter
from edge.live.streams import LiveStreams
from wire.protocol import LiveChunk, LiveRequest

FPS = 25
#: A key frame every 6 s, like the demo's looped clips.
GOP = 150
SECONDS = 13


@pytest.fixture(scope="module")
def long_gop_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[StreamInfo,
                                                                       list[Packet]]:
    """An H.264 MP4 (320x240, 25 fps, B-frames, ``GOP`` frames per key frame, no scene-cut key
    frames), demuxed into the packets the edge's capture hands the live view."""
    path = tmp_path_factory.mktemp("gop") / "long-gop.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.options = {"sc_threshold": "0", "bf": "2"}  # B-frames, as cameras
        for i in range(FPS * SECONDS):
            picture = np.zeros((240, 320, 3), np.uint8)
            picture[:, (i * 4) % 320:(i * 4) % 320 + 20] = 255  # a moving bar
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = StreamInfo.from_stream(video)
        packets = [as_packet(p) for p in container.demux(video) if p.size]
    keys = [p.pts for p in packets if p.keyframe]
    assert [round(k) for k in keys] == [0, 6, 12], keys  # the source is what the test needs
    return info, packets


def as_packet(packet: av.Packet) -> Packet:
    """A demuxed packet as the capture hands it on (seconds)."""
    tb = packet.time_base
    assert packet.pts is not None and packet.dts is not None and tb is not None
    return Packet(float(packet.pts * tb), float(packet.dts * tb), bytes(packet),
                  packet.is_keyframe, float((packet.duration or 0) * tb))


def segments_of(info: StreamInfo, packets: list[Packet],
                max_key_s: float | None) -> tuple[Segmenter, list[Segment]]:
    got: list[Segment] = []
    segmenter = Segmenter(got.append, target_s=1.0, max_key_s=max_key_s)
    for packet in packets:
        segmenter.add(info, packet)
    return segmenter, got


def decoded_frames(segment: Segment) -> tuple[str, int]:
    """The codec of a segment and how many frames decode from it on their own."""
    with av.open(io.BytesIO(segment.data), "r") as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in container.decode(stream))


def test_long_key_frame_interval_is_transcoded_into_short_segments(
        long_gop_source: tuple[StreamInfo, list[Packet]]) -> None:
    segmenter, segments = segments_of(*long_gop_source, max_key_s=2.0)
    assert segmenter.transcoded
    assert "key frames more than 2 s apart" in segmenter.transcode_reason
    assert len(segments) >= SECONDS - 3
    assert all(s.transcoded for s in segments)
    assert max(s.duration_s for s in segments) <= 2.05, [s.duration_s for s in segments]
    # Nothing lost at the switch: the first segment starts at the first key frame and the
    # segments together cover the video (the last, open one is not out yet).
    assert sum(s.duration_s for s in segments) >= SECONDS - 2.5
    for segment in segments:
        codec, frames = decoded_frames(segment)
        assert codec == "h264" and frames >= 0.9 * segment.duration_s * FPS


def test_long_key_frame_interval_is_remuxed_when_the_option_is_off(
        long_gop_source: tuple[StreamInfo, list[Packet]]) -> None:
    segmenter, segments = segments_of(*long_gop_source, max_key_s=None)
    assert not segmenter.transcoded and segmenter.transcode_reason == ""
    assert [round(s.duration_s) for s in segments] == [6, 6]  # one per key frame
    assert not any(s.transcoded for s in segments)
    # Remuxed: the very packets of the source, not a re-encoding.
    packets = long_gop_source[1]
    assert sum(decoded_frames(s)[1] for s in segments) == sum(
        1 for p in packets if p.pts < 12)


def test_short_key_frame_interval_stays_remuxed(
        long_gop_source: tuple[StreamInfo, list[Packet]]) -> None:
    """The first 6 s of the source (one key frame) repeated: key frames 6 s apart are
    remuxed under a threshold of 8 s."""
    segmenter, segments = segments_of(*long_gop_source, max_key_s=8.0)
    assert not segmenter.transcoded and segments and not any(s.transcoded for s in segments)


def test_edge_counts_the_switched_stream_as_transcoded_with_its_reason(
        long_gop_source: tuple[StreamInfo, list[Packet]]) -> None:
    """Through ``LiveStreams`` (the edge's on-demand streams): the stream's state says it is
    transcoded and why, its chunks are flagged, and the edge's counters count it."""
    info, packets = long_gop_source
    camera = CameraPackets("cam-gop", PacketRing(30.0, 64 * 1024 * 1024))
    camera.stream(info)
    sent: list[tuple[str, str]] = []
    live = LiveStreams("edge-gop", ["cam-gop"], lambda _c: camera,
                       lambda topic, payload, _qos: sent.append((topic, payload)),
                       max_keyframe_interval_s=3.0)
    try:
        live.offer(LiveRequest(edge_id="edge-gop", camera_id="cam-gop",
                               stream_id=uuid.uuid4().hex, action="start",
                               ttl_s=60, at=datetime.now(UTC)).model_dump_json().encode())
        for packet in packets:
            camera.push(packet)
        states = [json.loads(p) for t, p in sent if "/live-state/" in t]
        chunks = [LiveChunk.model_validate_json(p) for t, p in sent if "/live-data/" in t]
        assert states[0]["state"] == "playing" and states[0]["transcoded"]
        assert "key frames more than 3 s apart" in states[0]["detail"]
        assert chunks and all(c.transcoded for c in chunks)
        assert max(c.duration_s for c in chunks) <= 2.05
        assert live.counters().transcoded == 1
    finally:
        live.close()
