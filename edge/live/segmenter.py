"""A camera's encoded packets in, short HLS segments (MPEG-TS, H.264) out.

H.264 is remuxed as it is: the packets are copied into a fresh MPEG-TS muxer per segment
(FFmpeg's muxer rewrites the MP4/RTSP framing to Annex B and puts the parameter sets in-band),
which costs a memory copy, never a decode. Segments start at key frames (a segment that does
not cannot be played on its own), so a segment lasts at least ``target_s`` and as long as the
camera's key-frame interval: the viewer's delay is about that interval plus a segment or two.

Any other codec (MJPEG, HEVC, which Chromium does not play through hls.js) is the fallback:
decoded and encoded to H.264 (libx264, ``ultrafast``/``zerolatency``, crf 28, a key frame every
``target_s``), and the stream says ``transcoded`` so the cost is counted and visible.

H.264 whose key frames come further apart than ``max_key_s`` (a camera in a "smart codec"
mode, a looped clip with one key frame per loop) is switched to that same fallback as soon as
the spacing is seen: remuxed, it would make segments as long as the spacing and put the picture
that far behind. The switch loses nothing: the open segment (which starts at a key frame) is
decoded from its start. Once switched, the stream stays transcoded until its input changes.

Packets come from the camera's packet source (``edge.capture.packets.CameraPackets``, shared
with alert clips), on the capture's clock. Each segment is a self-contained file with
continuous timestamps across segments, source loops and reconnects (the output clock is rebased
should the input clock jump), which is what hls.js needs to play a live playlist.
"""

from __future__ import annotations

import heapq
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from edge.capture.packets import Packet, StreamInfo
from wire.protocol import MAX_LIVE_SEGMENT_BYTES

log = logging.getLogger(__name__)

#: The MPEG-TS clock.
TS_BASE = Fraction(1, 90000)
#: Codecs browsers play through hls.js from MPEG-TS without re-encoding.
REMUX_CODECS = {"h264"}
#: An input clock that jumps further than this (or backwards) is a new timeline. The output
#: clock continues one frame after the last packet instead.
MAX_GAP_S = 5.0
#: Input pts a transcoder keeps for frames still inside its decoder (H.264 delays at most 16).
MAX_PENDING = 32
#: Frame length assumed where packets carry none.
DEFAULT_FRAME_S = 1 / 25


@dataclass(frozen=True)
class Segment:
    seq: int
    data: bytes
    duration_s: float
    transcoded: bool


SegmentCallback = Callable[[Segment], None]


class _Transcoder:
    """The fallback: any decodable video in, H.264 packets out, a key frame (forced, whatever
    the frame rate) every ``key_s`` seconds. Its encoder is a stream of ``holder``, the
    template of every segment's stream."""

    def __init__(self, source: Any, key_s: float, holder: Any) -> None:
        self.decoder = source.codec_context  # the template's own stream: never demuxed
        self.key = round(key_s / TS_BASE)
        self.last_key: int | None = None
        #: Input pts not yet given to a decoded frame. Frames come out in presentation
        #: order, later than their packets where the camera uses B-frames, so each takes the
        #: smallest pending pts, not its packet's.
        self.pending: list[int] = []
        self.stream = holder.add_stream("libx264", rate=25)
        self.stream.width, self.stream.height = self.decoder.width, self.decoder.height
        self.stream.pix_fmt = "yuv420p"
        encoder = self.stream.codec_context
        encoder.time_base = TS_BASE
        # crf 28 rather than x264's 23: ultrafast at 23 takes twice the camera's own bitrate
        # (the Vietnam street clip: 7.6 Mbit/s against 3.5), at 28 about the same (4.2), for
        # the same CPU; the uplink, not the picture, is what live view runs short of.
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "28"}

    def packets(self, data: bytes, pts: int) -> list[Any]:
        """The encoded packets for one input packet (``pts`` on the 90 kHz clock)."""
        out = []
        heapq.heappush(self.pending, pts)
        if len(self.pending) > MAX_PENDING:  # packets the decoder dropped (corrupt input)
            heapq.heappop(self.pending)
        for decoded in self.decoder.decode(av.Packet(data)):
            frame = decoded.reformat(format="yuv420p")
            frame_pts = heapq.heappop(self.pending) if self.pending else pts
            frame.pts, frame.time_base = frame_pts, TS_BASE
            if self.last_key is None or frame_pts - self.last_key >= self.key:
                frame.pict_type = av.video.frame.PictureType.I
                self.last_key = frame_pts
            out.extend(self.stream.encode(frame))
        return out


class Segmenter:
    """Feed it every packet of one camera (``add``, the ``CameraPackets`` listener); it calls
    ``on_segment`` with each finished segment. Runs on the camera's capture thread: a stream
    costs that thread a mux per segment (bench/bench_live.py)."""

    def __init__(self, on_segment: SegmentCallback, *, target_s: float = 1.0,
                 max_key_s: float | None = None) -> None:
        self.on_segment = on_segment
        self.target_s = target_s
        #: Longest key-frame spacing remuxed; None: any spacing is remuxed.
        self.max_key_s = max_key_s
        self.seq = 0
        self.transcoded = False
        #: Why the stream is transcoded ("" while it is remuxed), for its state and logs.
        self.transcode_reason = ""
        self._key_dts: int | None = None  # output dts of the input's last key frame
        self._info: StreamInfo | None = None  # the input the clock offset belongs to
        self._offset = 0.0  # output seconds = input seconds + offset
        self._last: float | None = None  # input seconds (decode time) of the last packet
        self._end = 0.0  # output seconds just after the last packet
        self._input: Any = None  # the template document, opened (its stream's parameters)
        self._holder: Any = None  # an output container never written: holds _template
        self._template: Any = None  # the stream every segment's stream copies
        self._transcoder: _Transcoder | None = None
        # The open segment: (dts_90k, pts_90k, key, data) per packet.
        self._packets: list[tuple[int, int, bool, bytes]] = []
        self._bytes = 0

    def add(self, info: StreamInfo, packet: Packet) -> None:
        decode_s = packet.decode_ts
        if info is not self._info and not info.same_codec(self._info):
            self._new_input(info)
        if self._last is None or not (
                self._last - 1.0 <= decode_s <= self._last + MAX_GAP_S):
            self._offset = self._end - decode_s  # a new timeline continues the output clock
        self._last = decode_s
        frame_s = packet.duration or DEFAULT_FRAME_S
        self._end = max(self._end, decode_s + self._offset + frame_s)
        dts = round((decode_s + self._offset) / TS_BASE)
        pts = round((packet.pts + self._offset) / TS_BASE)
        if self._transcoder is None and self._key_spacing_too_long(dts, packet.keyframe):
            self._transcode_open_segment()
        if self._transcoder is not None:
            self._transcode(packet.data, pts)
        else:
            self._take(dts, pts, packet.keyframe, packet.data)

    def _transcode(self, data: bytes, pts: int) -> None:
        assert self._transcoder is not None
        for out in self._transcoder.packets(data, pts):
            self._take(int(out.dts), int(out.pts), bool(out.is_keyframe), bytes(out))

    def _key_spacing_too_long(self, dts: int, key: bool) -> bool:
        """Whether the input's key frames are now seen to be more than ``max_key_s`` apart
        (measured on the output clock, so source loops and reconnects do not fool it)."""
        if key:
            self._key_dts = dts
            return False
        if self.max_key_s is None or self._key_dts is None or not self._packets:
            return False
        return (dts - self._key_dts) * TS_BASE > self.max_key_s

    def _transcode_open_segment(self) -> None:
        """Switch a remuxed stream to the fallback: the open segment's packets (from a key
        frame) are decoded and encoded again, so its picture is not lost."""
        assert self._info is not None and self._input is not None
        self.transcode_reason = (
            f"key frames more than {self.max_key_s:g} s apart "
            "(live.max_keyframe_interval_s)")
        log.warning("live: %s %s; transcoding to H.264 (a decode and an encode per frame)",
                    self._info.codec, self.transcode_reason)
        self._start_transcoder(self._input.streams.video[0])
        packets, self._packets, self._bytes = self._packets, [], 0
        for _dts, pts, _key, data in packets:
            self._transcode(data, pts)

    def _start_transcoder(self, source: Any) -> None:
        self._transcoder = _Transcoder(source, self.target_s, self._holder)
        self._template = self._transcoder.stream
        self.transcoded = True

    def _new_input(self, info: StreamInfo) -> None:
        """Other codec parameters: the open segment ends, the next uses the new ones."""
        self._flush()
        self._info = info
        self._input = av.open(io.BytesIO(info.template), "r")
        source = self._input.streams.video[0]
        self._holder = av.open(io.BytesIO(), "w", format="mpegts")
        self._key_dts = None
        if info.codec in REMUX_CODECS:
            self._transcoder = None
            self._template = self._holder.add_stream_from_template(source)
            return
        if not self.transcoded:
            log.warning("live: %s cannot be remuxed for browsers; transcoding to H.264 "
                        "(a decode and an encode per frame)", info.codec)
        self.transcode_reason = f"{info.codec}, which browsers do not play"
        self._start_transcoder(source)

    def _take(self, dts: int, pts: int, key: bool, data: bytes) -> None:
        if not self._packets and not key:
            return  # a segment must start with a key frame: wait for one
        if key and self._packets and (dts - self._packets[0][0]) * TS_BASE >= self.target_s:
            self._flush(until=dts)
        if self._bytes + len(data) > MAX_LIVE_SEGMENT_BYTES:
            log.warning("live: a segment grew past %d bytes without a key frame; dropped",
                        MAX_LIVE_SEGMENT_BYTES)
            self._packets, self._bytes = [], 0
            return
        self._packets.append((dts, pts, key, data))
        self._bytes += len(data)

    def _flush(self, until: int | None = None) -> None:
        """Mux the open segment and hand it on; ``until``: the next segment's first dts."""
        packets, self._packets, self._bytes = self._packets, [], 0
        if not packets or self._template is None:
            return
        end = until if until is not None else packets[-1][0] + round(DEFAULT_FRAME_S / TS_BASE)
        duration = float((end - packets[0][0]) * TS_BASE)
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts") as out:
            stream = out.add_stream_from_template(self._template)
            stream.time_base = TS_BASE
            for dts, pts, key, data in packets:
                packet = av.Packet(data)
                packet.dts, packet.pts, packet.is_keyframe = dts, pts, key
                packet.time_base = TS_BASE
                packet.stream = stream
                out.mux(packet)
        segment = Segment(self.seq, buffer.getvalue(), max(duration, 0.001), self.transcoded)
        self.seq += 1
        self.on_segment(segment)
