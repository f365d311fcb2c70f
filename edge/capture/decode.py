"""Decoders: a file, stream or device in, sampled ``(ts, image)`` pairs out, decoding as little
as the sampling rate allows.

Sampling 1 fps from a 25 fps camera needs one picture in 25, but an H.264 picture can only be
decoded after the pictures it references. `PyAVDecoder` therefore works per *packet*, before
decoding: a group of pictures (GOP) that holds no sample is never sent to the decoder (so when
the sample interval is at least the key-frame interval only key frames are decoded, with
``skip_frame = "NONKEY"``); inside a GOP that holds one, frames nobody references and nobody
samples are skipped by the decoder (``skip_frame = "NONREF"``); and only sampled frames are
converted to BGR, which costs as much as decoding. Timestamps come from pts (stream time).

`OpenCVDecoder` is the fallback (and the path for local devices): it cannot skip decoding
(``grab()`` decodes), but it converts only sampled frames.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import cv2
import numpy as np

from edge.capture.packets import CameraPackets, Packet, StreamInfo
from edge.capture.redact import redact

EPS = 1e-6
#: PyAV packet strategies: ``auto`` skips what is not needed (GOPs without a sample, then
#: non-reference frames); the others exist to measure it against (bench/bench_decode.py).
WALL_CLOCK_FORMATS = {"mpjpeg", "mjpeg", "jpeg_pipe", "image2pipe"}
Strategy = Literal["auto", "full", "keyframes", "nonref"]
#: ``on_arrival(clock)`` for every frame the source delivers, decoded or not.
ArrivalCallback = Callable[[float], None]


@dataclass
class DecodeStats:
    packets: int = 0  # frames the source delivered (demuxed packets / grabs)
    skipped: int = 0  # packets never sent to the decoder
    decoded: int = 0  # pictures that came out of the decoder
    converted: int = 0  # pictures converted to BGR (= sampled)
    gop_s: float | None = None  # key-frame interval seen so far (largest of the last few)
    mode: str = ""

    def describe(self) -> str:
        gop = f" gop={self.gop_s:.2f}s" if self.gop_s else ""
        return f"{self.mode}{gop}"


class _Sampler:
    """The sampling rule shared by both decoders: the first frame at or after ``next_sample``
    is taken, then ``next_sample`` moves on by whole periods past it."""

    def __init__(self, period: float, next_sample: float) -> None:
        self.period = period
        self.next_sample = next_sample

    def wants(self, ts: float) -> bool:
        return ts + EPS >= self.next_sample

    def took(self, ts: float) -> None:
        while self.next_sample <= ts + EPS:
            self.next_sample += self.period


def _noop(_clock: float) -> None:
    pass


class PyAVDecoder:
    name = "pyav"

    def __init__(self, source: str, *, period: float, live: bool, timeout_s: float = 10.0,
                 next_sample: float = 0.0, on_arrival: ArrivalCallback | None = None,
                 strategy: Strategy = "auto", packets: CameraPackets | None = None,
                 packet_offset: float = 0.0) -> None:
        import av  # imported here so an OpenCV-only edge does not need it

        options: dict[str, str] = {}
        if source.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        self.live = live
        self.strategy = strategy
        self.sampler = _Sampler(period, next_sample)
        self.stats = DecodeStats(mode="full" if strategy == "full" else "skip-nonref")
        self._on_arrival = on_arrival or _noop
        self.container = av.open(source, options=options,
                                 timeout=(timeout_s, timeout_s) if live else None)
        try:
            self.stream = self.container.streams.video[0]
        except IndexError:
            self.container.close()
            raise OSError(f"no video stream in {redact(source)}") from None
        # One thread: the skip decision is made per packet, and on a box that runs several
        # cameras and a detector, threads buy latency nobody needs at 1 fps.
        self.stream.codec_context.thread_count = 1
        # MJPEG over HTTP has no timestamps: FFmpeg numbers the parts at a made-up 25 fps.
        self.wall_clock = live and self.container.format.name in WALL_CLOCK_FORMATS
        self.rate = Fraction(self.stream.average_rate or self.stream.guessed_rate or 25)
        self.frame_s = float(1 / self.rate)
        #: Where every demuxed packet goes, decoded or not (``edge.capture.packets``), with
        #: ``packet_offset`` added to its times so they are on the capture's clock (a live
        #: capture sets it once the stream is open, as it does for frames).
        self.packets = packets
        self.packet_offset = packet_offset
        if packets is not None:
            packets.stream(StreamInfo.from_stream(self.stream))

    @property
    def duration(self) -> float:
        """Stream time of the packets read so far (a whole file's, after the last frame)."""
        return float(self.stats.packets / self.rate)

    @property
    def next_sample(self) -> float:
        return self.sampler.next_sample

    def close(self) -> None:
        self.container.close()

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        stream, cc, sampler, stats = self.stream, self.stream.codec_context, self.sampler, \
            self.stats
        tb = stream.time_base or Fraction(1, 90000)
        base: int | None = None if self.live else (stream.start_time or 0)
        opened = time.monotonic()
        count = 0
        tol = self.frame_s / 2
        last_key: float | None = None
        intervals: deque[float] = deque(maxlen=4)
        skipping = False

        def ts_of(pts: int | None, now: float) -> float:
            nonlocal base
            if pts is None or self.wall_clock:  # arrival time is all there is
                return now - opened if self.live else count * self.frame_s
            if base is None:
                base = pts
            return float((pts - base) * tb)

        for packet in self.container.demux(stream):
            flush = packet.size == 0
            if not flush:
                now = time.monotonic()
                t = ts_of(packet.pts, now)
                count += 1
                stats.packets += 1
                self._on_arrival(now if self.live else t)
                if self.packets is not None:
                    self._keep(packet, t, tb, base)
                if self.strategy == "full":
                    pass
                elif packet.is_keyframe:
                    if last_key is not None and t > last_key + EPS:
                        intervals.append(t - last_key)
                    last_key = t
                    gop = max(intervals) if intervals else None
                    stats.gop_s = gop
                    key_only = self.strategy == "keyframes" or (
                        self.strategy == "auto" and gop is not None and sampler.period >= gop - tol)
                    if key_only:
                        stats.mode = "keyframes"
                    # This whole GOP ends before the next sample: not even its key frame.
                    if (gop is not None and self.strategy == "auto"
                            and sampler.next_sample > t + gop - tol) or (
                            self.strategy == "keyframes" and not sampler.wants(t)):
                        skipping = True
                        stats.skipped += 1
                        continue
                    skipping = False
                    cc.skip_frame = "NONKEY" if key_only else "DEFAULT"
                else:
                    if self.strategy == "keyframes" or skipping:
                        stats.skipped += 1
                        continue
                    if (self.strategy == "auto" and stats.gop_s is not None
                            and last_key is not None
                            and sampler.next_sample > last_key + stats.gop_s - tol):
                        skipping = True  # the rest of this GOP holds no sample
                        stats.skipped += 1
                        continue
                    if stats.mode == "keyframes":
                        stats.mode = "skip-nonref"
                    cc.skip_frame = "NONREF" if t + EPS < sampler.next_sample else "DEFAULT"
            for frame in stream.decode(packet):
                stats.decoded += 1
                ft = t if frame.pts is None or self.wall_clock else ts_of(frame.pts, 0.0)
                if not sampler.wants(ft):
                    continue
                stats.converted += 1
                image = frame.to_ndarray(format="bgr24")
                sampler.took(ft)
                yield ft, image


    def _keep(self, packet: Any, t: float, tb: Fraction, base: int | None) -> None:
        """Hand a packet to ``packets`` before any skipping: clips and live view need every
        one, and copying it is all it costs (the demuxer reuses its buffer)."""
        assert self.packets is not None
        off = self.packet_offset
        dts = None
        if packet.dts is not None and base is not None and not self.wall_clock:
            dts = off + float((packet.dts - base) * tb)
        self.packets.push(Packet(off + t, dts, bytes(packet), bool(packet.is_keyframe),
                                 float(packet.duration * tb) if packet.duration else 0.0))


class OpenCVDecoder:
    name = "opencv"

    def __init__(self, source: str, *, period: float, live: bool, timeout_s: float = 10.0,
                 next_sample: float = 0.0, on_arrival: ArrivalCallback | None = None,
                 read_all: bool = False) -> None:
        # RTSP over TCP: UDP loses packets (grey smears) on any busy network.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        target: str | int = int(source) if source.isdigit() else source
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout_s * 1000)]
        self.cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
        if not self.cap.isOpened():
            self.cap.release()
            raise OSError(f"cannot open {redact(source)}")
        self.live = live
        self.read_all = read_all
        self.sampler = _Sampler(period, next_sample)
        self.stats = DecodeStats(mode="read-all" if read_all else "grab-retrieve")
        self._on_arrival = on_arrival or _noop
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0

    @property
    def duration(self) -> float:
        return self.stats.packets / self.fps

    @property
    def next_sample(self) -> float:
        return self.sampler.next_sample

    def close(self) -> None:
        self.cap.release()

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        cap, sampler, stats = self.cap, self.sampler, self.stats
        opened = time.monotonic()
        index = 0
        while True:
            if self.read_all:
                ok, image = cap.read()
            else:
                ok, image = cap.grab(), None
            if not ok:
                return
            now = time.monotonic()
            ts = now - opened if self.live else index / self.fps
            index += 1
            stats.packets += 1
            stats.decoded += 1
            self._on_arrival(now if self.live else ts)
            if not sampler.wants(ts):
                continue  # grabbed (decoded, sadly) but never converted
            if image is None:
                ok, image = cap.retrieve()
                if not ok:
                    continue
            stats.converted += 1
            sampler.took(ts)
            yield ts, image


Decoder = PyAVDecoder | OpenCVDecoder


def choose_decoder(source: str, wanted: str) -> type[PyAVDecoder] | type[OpenCVDecoder]:
    """``auto``: PyAV wherever it is installed, except local devices (OpenCV's V4L2)."""
    if wanted == "opencv" or source.isdigit():
        return OpenCVDecoder
    if wanted == "pyav":
        return PyAVDecoder
    try:
        import av  # noqa: F401
    except ImportError:
        return OpenCVDecoder
    return PyAVDecoder
