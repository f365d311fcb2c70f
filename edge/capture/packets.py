"""A camera's encoded packets, as the PyAV demuxer hands them over: never decoded here.

Two users want them: alert clips (``edge.clips``) look *back* in a rolling buffer
(`PacketRing`) for the seconds before the bike arrived, and live view looks *forward* at
packets as they come. `CameraPackets` is that one source per camera: the capture thread
calls ``stream`` when it (re)opens the camera and ``push`` for every demuxed packet; clips
read ``ring.window(start, end)``; live registers a listener with ``listen``.

Costs are what matter on an edge box running many cameras: a packet is copied once into
``bytes`` (the demuxer reuses its buffer) and appended to a deque of key-frame groups; no
decoding, no parsing. ``bench/bench_clip_buffer.py`` measures it (docs/performance.md).

Only the PyAV path (``edge.capture.decode.PyAVDecoder``) has packets; a camera read through
OpenCV (a local device, ``decoder: opencv``, or no PyAV installed) has none, so it has no
clips and no remuxed live view.

Timestamps are seconds on the capture's clock, the one ``Frame.ts`` uses (a file's position
across loops, a live stream's time since the capture started), so a rule's stream times map
straight onto packets.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from wire.protocol import BROWSER_CODECS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamInfo:
    """What a muxer needs to write a stream's packets into a file without decoding them.

    ``template`` is a tiny Matroska document holding the stream's codec parameters (SPS/PPS
    in ``extradata``, size, time base) and one dummy packet: PyAV can only copy codec
    parameters from an open stream (``add_stream_from_template``), and a camera's input
    container is long closed (reconnects, file loops) when a clip is cut."""

    codec: str
    width: int
    height: int
    time_base: Fraction
    template: bytes = field(repr=False)
    #: The codec's global header (H.264 SPS/PPS): what must match for packets to share a file.
    extradata: bytes = field(default=b"", repr=False)

    @property
    def browser_playable(self) -> bool:
        return self.codec in BROWSER_CODECS

    @classmethod
    def from_stream(cls, stream: Any) -> StreamInfo:
        """From a PyAV input video stream (``container.streams.video[0]``)."""
        import av

        buf = io.BytesIO()
        with av.open(buf, "w", format="matroska") as out:
            copy = out.add_stream_from_template(stream)
            dummy = av.Packet(b"\x00\x00\x00\x01")
            dummy.pts = dummy.dts = 0
            dummy.time_base = stream.time_base or Fraction(1, 90000)
            dummy.is_keyframe = True
            dummy.stream = copy
            out.mux(dummy)
        return cls(stream.codec_context.name, stream.codec_context.width or 0,
                   stream.codec_context.height or 0,
                   Fraction(stream.time_base or Fraction(1, 90000)), buf.getvalue(),
                   bytes(stream.codec_context.extradata or b""))

    def same_codec(self, other: StreamInfo | None) -> bool:
        """Whether packets of ``other`` can follow ours in one file (a file's next loop, a
        reconnect to the same camera): same codec, size and global header. (Not the template:
        a Matroska header holds a random segment id.)"""
        return other is not None and (self.codec, self.width, self.height, self.extradata) == (
            other.codec, other.width, other.height, other.extradata)


@dataclass(frozen=True)
class Packet:
    """One encoded packet. ``pts``/``dts``: capture-clock seconds (``dts`` None when the
    container gives none); ``duration`` in seconds (0 when unknown)."""

    pts: float
    dts: float | None
    data: bytes
    keyframe: bool
    duration: float = 0.0

    @property
    def decode_ts(self) -> float:
        return self.pts if self.dts is None else self.dts


@dataclass
class _Gop:
    """A key frame and the packets that depend on it, in decode order."""

    packets: list[Packet]
    size: int

    @property
    def start(self) -> float:
        return self.packets[0].pts


@dataclass(frozen=True)
class Window:
    """Packets for a clip: from a key frame, in decode order, with their stream's info."""

    info: StreamInfo
    packets: list[Packet]

    @property
    def start(self) -> float:
        return min(p.pts for p in self.packets)

    @property
    def end(self) -> float:
        return max(p.pts + p.duration for p in self.packets)

    @property
    def size(self) -> int:
        return sum(len(p.data) for p in self.packets)


class PacketRing:
    """The last ``max_s`` seconds of a camera's packets, at most ``max_bytes``, always starting
    at a key frame so whatever is cut from it decodes.

    It holds whole key-frame groups (GOPs): the oldest goes only once the one after it alone
    still covers ``max_s``, so the buffer reaches back at least ``max_s`` (plus up to one GOP).
    ``max_bytes`` is the hard memory bound: past it the oldest GOPs go regardless, and a
    single GOP bigger than the whole budget (a camera with a 60 s key-frame interval) is
    dropped and counted in ``overflows``. Packets before the first key frame are useless to a
    decoder and are not kept. Thread-safe: the capture thread appends, clip cutters read."""

    def __init__(self, max_s: float, max_bytes: int) -> None:
        if max_s <= 0 or max_bytes <= 0:
            raise ValueError("a packet ring needs max_s > 0 and max_bytes > 0")
        self.max_s, self.max_bytes = max_s, max_bytes
        self.info: StreamInfo | None = None
        self.overflows = 0
        self._gops: deque[_Gop] = deque()
        self._bytes = 0
        self._latest: float | None = None
        self._lock = threading.Lock()

    def reset(self, info: StreamInfo | None) -> None:
        """A (re)opened stream: packets of other codec parameters cannot share a file with
        the ones kept, so those are dropped; the same parameters continue the buffer."""
        with self._lock:
            if info is None or not info.same_codec(self.info):
                self._gops.clear()
                self._bytes = 0
                self._latest = None
            self.info = info

    def append(self, packet: Packet) -> None:
        with self._lock:
            if packet.keyframe:
                self._gops.append(_Gop([packet], len(packet.data)))
            elif self._gops:
                gop = self._gops[-1]
                gop.packets.append(packet)
                gop.size += len(packet.data)
            else:
                return  # no key frame yet: nothing could decode it
            self._bytes += len(packet.data)
            self._latest = packet.pts if self._latest is None else max(self._latest, packet.pts)
            self._evict()

    def _evict(self) -> None:
        gops, latest = self._gops, self._latest
        assert latest is not None
        while len(gops) > 1 and (latest - gops[1].start >= self.max_s
                                 or self._bytes > self.max_bytes):
            self._bytes -= gops.popleft().size
        if self._bytes > self.max_bytes:  # one GOP larger than the whole budget
            self._bytes = 0
            gops.clear()
            self.overflows += 1

    @property
    def latest(self) -> float | None:
        """Capture time of the newest packet kept (None while empty)."""
        with self._lock:
            return self._latest if self._gops else None

    @property
    def earliest(self) -> float | None:
        with self._lock:
            return self._gops[0].start if self._gops else None

    @property
    def size(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return sum(len(g.packets) for g in self._gops)

    def window(self, start: float, end: float) -> Window | None:
        """Packets from the last key frame at or before ``start`` (the oldest kept when the
        buffer does not reach back that far) through the last packet, in decode order, that
        decodes at or before ``end``. Cutting in decode order keeps every reference a kept
        packet needs. None when nothing of ``[start, end]`` is held."""
        with self._lock:
            if self.info is None or not self._gops:
                return None
            first = 0
            for i, gop in enumerate(self._gops):
                if gop.start <= start:
                    first = i
                else:
                    break
            packets: list[Packet] = []
            for gop in list(self._gops)[first:]:
                for p in gop.packets:
                    if p.decode_ts > end:
                        break
                    packets.append(p)
                else:
                    continue
                break
            if not packets:
                return None
            return Window(self.info, packets)


#: ``listener(info, packet)``, called on the capture thread for every packet: keep it short.
PacketListener = Callable[[StreamInfo, Packet], None]


class CameraPackets:
    """One camera's packet source: the rolling buffer plus any listeners (live view)."""

    def __init__(self, camera_id: str, ring: PacketRing) -> None:
        self.camera_id = camera_id
        self.ring = ring
        self._listeners: list[PacketListener] = []
        self._lock = threading.Lock()

    def stream(self, info: StreamInfo | None) -> None:
        """The capture opened the camera (``info``) or lost it (None keeps the buffer: the
        seconds before a lost stream are still worth a clip)."""
        if info is not None:
            self.ring.reset(info)

    def push(self, packet: Packet) -> None:
        self.ring.append(packet)
        info = self.ring.info
        if info is None:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(info, packet)
            except Exception:  # a viewer's failure must never stop the capture
                log.exception("camera=%s packet listener failed; removed", self.camera_id)
                self.unlisten(listener)

    def listen(self, listener: PacketListener) -> Callable[[], None]:
        """Call ``listener`` for every packet from now on; returns the function that stops it."""
        with self._lock:
            self._listeners.append(listener)
        return lambda: self.unlisten(listener)

    def unlisten(self, listener: PacketListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
