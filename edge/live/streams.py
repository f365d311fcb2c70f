"""Live streams on demand: the center asks, the edge carries a camera's video until the ask
runs out (docs/video.md "Live view").

The center sends ``LiveRequest``s on ``gridwatch/v1/live/{edge_id}``: ``start`` (repeated
as the keep-alive) with a ``ttl_s``, or ``stop``. While a camera has a stream, a `Segmenter`
listens to its packet source (``edge.capture.packets.CameraPackets``, on the capture thread),
and its segments go out in chunks of at most ``MAX_LIVE_CHUNK_BYTES`` on
``gridwatch/v1/live-data/{edge_id}/{camera}``. A camera nobody watches costs nothing here.

The edge stops a stream on its own when the last keep-alive's ``ttl_s`` has run out, so a
center that died (or lost the broker) never leaves a camera streaming. It refuses a start
beyond ``live.max_streams`` streams, for an unknown camera, or for a camera that is offline,
and says why on ``gridwatch/v1/live-state/{edge_id}/{camera}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from pydantic import ValidationError

from edge.capture.packets import CameraPackets, Packet, StreamInfo
from edge.live.segmenter import REMUX_CODECS, Segment, Segmenter
from wire.protocol import (
    MAX_LIVE_CHUNK_BYTES,
    LiveChunk,
    LiveReason,
    LiveRequest,
    LiveState,
    LiveStreamState,
    live_data_topic,
    live_state_topic,
)

log = logging.getLogger(__name__)

#: ``publish(topic, payload, qos)``: hands a message to the edge's MQTT session.
Publish = Callable[[str, str, int], None]
#: ``packets(camera_id)``: the camera's packet source; None while it has none (read through
#: OpenCV, which decodes without giving packets).
PacketsLookup = Callable[[str], CameraPackets | None]


@dataclass
class _Stream:
    camera_id: str
    stream_id: str
    deadline: float
    segmenter: Segmenter
    segments: int = 0
    bytes: int = 0
    counted_transcoded: bool = False
    stopped: threading.Event = field(default_factory=threading.Event)
    unlisten: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class LiveCounters:
    """What the edge has streamed since it started (logged at stop)."""

    started: int
    refused: int
    transcoded: int
    segments: int
    bytes: int


class LiveStreams:
    def __init__(self, edge_id: str, cameras: list[str], packets: PacketsLookup,
                 publish: Publish, *, max_streams: int = 4,
                 segment_s: float = 1.0, transcode: bool = True,
                 max_keyframe_interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.edge_id = edge_id
        self.cameras = set(cameras)
        self._packets = packets
        #: camera_id -> its capture's last (state, detail) (``camera_state``).
        self._states: dict[str, tuple[str, str]] = {}
        self.max_streams = max_streams
        self.segment_s = segment_s
        self.transcode = transcode
        #: H.264 with key frames further apart is transcoded (``Segmenter``'s ``max_key_s``);
        #: ignored (remuxed whatever the spacing) where ``transcode`` is off.
        self.max_key_s = max_keyframe_interval_s if transcode else None
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self._by_camera: dict[str, _Stream] = {}
        self._started = self._refused = self._transcoded = self._segments = self._bytes = 0
        self._closing = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="live-reaper", daemon=True)
        self._reaper.start()

    def camera_state(self, camera_id: str, state: str, detail: str) -> None:
        """A camera's state changed (the runner's ``on_state``): an offline camera's start is
        refused with its reason."""
        self._states[camera_id] = (state, detail)

    # --- center -> edge (paho's thread) ------------------------------------------------------

    def offer(self, payload: bytes) -> None:
        """A request from the center; a malformed one is logged and changes nothing."""
        try:
            request = LiveRequest.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("edge=%s live request refused: %s", self.edge_id,
                        str(exc).replace("\n", "; ")[:500])
            return
        if request.edge_id != self.edge_id:
            log.warning("edge=%s live request for edge %s ignored", self.edge_id,
                        request.edge_id)
            return
        if request.action == "stop":
            self._stop(request.camera_id, request.stream_id, "stopped", "stopped by the center")
            return
        self._start(request)

    def _start(self, request: LiveRequest) -> None:
        camera_id, stream_id = request.camera_id, request.stream_id
        if camera_id not in self.cameras:
            self._refuse(request, "offline", f"this edge has no camera {camera_id}")
            return
        source = self._packets(camera_id)
        if source is None:
            self._refuse(request, "unsupported", "the camera is read through OpenCV, which "
                         "gives no encoded packets (set its decoder to pyav)")
            return
        # A camera still opening (no state yet: the edge has just started and the center's
        # renewal came first) gets its stream; it plays once the camera's packets come.
        state = self._states.get(camera_id)
        if state is not None and state[0] == "offline":
            self._refuse(request, "offline", f"camera offline: {state[1] or 'no picture'}")
            return
        deadline = self._clock() + request.ttl_s
        with self._lock:
            current = self._by_camera.get(camera_id)
            if current is not None and current.stream_id == stream_id:
                current.deadline = deadline  # the keep-alive
                return
            others = len(self._by_camera) - (current is not None)
            if others >= self.max_streams:
                refused = (f"this edge already streams {others} cameras "
                           f"(live.max_streams {self.max_streams})")
            else:
                refused = None
                stream = _Stream(camera_id, stream_id, deadline, Segmenter(
                    partial(self._send, camera_id), target_s=self.segment_s,
                    max_key_s=self.max_key_s))
                self._by_camera[camera_id] = stream
                self._started += 1
        if refused is not None:
            self._refuse(request, "limit", refused)
            return
        if current is not None:  # the center restarted and asks again under a new id
            current.stopped.set()
            current.unlisten()
            self._state(current, "stopped", "stopped", "replaced by a new stream")
        stream.unlisten = source.listen(self._listener(stream))
        log.info("edge=%s camera=%s live stream %s started (ttl %.0f s)", self.edge_id,
                 camera_id, stream_id, request.ttl_s)

    def _refuse(self, request: LiveRequest, reason: LiveReason, why: str) -> None:
        with self._lock:
            self._refused += 1
        log.info("edge=%s camera=%s live stream %s refused: %s", self.edge_id,
                 request.camera_id, request.stream_id, why)
        self._publish(live_state_topic(self.edge_id, request.camera_id), LiveState(
            edge_id=self.edge_id, camera_id=request.camera_id, stream_id=request.stream_id,
            state="refused", reason=reason, detail=why,
            at=datetime.now(UTC)).model_dump_json(), 1)

    def _stop(self, camera_id: str, stream_id: str | None, reason: LiveReason,
              why: str) -> None:
        with self._lock:
            stream = self._by_camera.get(camera_id)
            if stream is None or (stream_id is not None and stream.stream_id != stream_id):
                return
            del self._by_camera[camera_id]
        stream.stopped.set()
        stream.unlisten()
        log.info("edge=%s camera=%s live stream %s stopped after %d segments (%d bytes): %s",
                 self.edge_id, camera_id, stream.stream_id, stream.segments, stream.bytes, why)
        self._state(stream, "stopped", reason, why)

    def _state(self, stream: _Stream, state: LiveStreamState, reason: LiveReason | None,
               detail: str) -> None:
        self._publish(live_state_topic(self.edge_id, stream.camera_id), LiveState(
            edge_id=self.edge_id, camera_id=stream.camera_id, stream_id=stream.stream_id,
            state=state, reason=reason, detail=detail, transcoded=stream.segmenter.transcoded,
            at=datetime.now(UTC)).model_dump_json(), 1)

    def _reap(self) -> None:
        """Stops streams whose keep-alive ran out, also when their camera sends nothing."""
        while not self._closing.wait(0.5):
            now = self._clock()
            with self._lock:
                expired = [s for s in self._by_camera.values() if now > s.deadline]
            for stream in expired:
                self._stop(stream.camera_id, stream.stream_id, "expired",
                           "no keep-alive from the center")

    # --- capture threads ---------------------------------------------------------------------

    def _listener(self, stream: _Stream) -> Callable[[StreamInfo, Packet], None]:
        """The packet listener of one stream, on its camera's capture thread."""

        def on_packet(info: StreamInfo, packet: Packet) -> None:
            if stream.stopped.is_set():
                return
            if not self.transcode and info.codec not in REMUX_CODECS:
                self._stop(stream.camera_id, stream.stream_id, "unsupported",
                           f"the camera sends {info.codec}, which browsers do not play, and "
                           "live.transcode is off")
                return
            try:
                stream.segmenter.add(info, packet)
            except Exception as exc:  # live view must never stop the capture
                log.exception("edge=%s camera=%s live segmenting failed", self.edge_id,
                              stream.camera_id)
                self._stop(stream.camera_id, stream.stream_id, "error",
                           f"segmenting failed: {type(exc).__name__}: {exc}")

        return on_packet

    def _send(self, camera_id: str, segment: Segment) -> None:
        stream = self._by_camera.get(camera_id)
        if stream is None or stream.stopped.is_set():
            return
        data = segment.data
        parts = max(1, -(-len(data) // MAX_LIVE_CHUNK_BYTES))
        topic = live_data_topic(self.edge_id, camera_id)
        for part in range(parts):
            chunk = LiveChunk(
                edge_id=self.edge_id, camera_id=camera_id, stream_id=stream.stream_id,
                seq=segment.seq, part=part, parts=parts, duration_s=segment.duration_s,
                transcoded=segment.transcoded,
                data=data[part * MAX_LIVE_CHUNK_BYTES:(part + 1) * MAX_LIVE_CHUNK_BYTES])
            self._publish(topic, chunk.model_dump_json(), 0)
        first = stream.segments == 0
        newly_transcoded = segment.transcoded and not stream.counted_transcoded
        stream.counted_transcoded |= segment.transcoded
        stream.segments += 1
        stream.bytes += len(data)
        with self._lock:
            self._segments += 1
            self._bytes += len(data)
            if newly_transcoded:
                self._transcoded += 1
        if first or newly_transcoded:
            reason = stream.segmenter.transcode_reason
            self._state(stream, "playing", None,
                        f"transcoded to H.264: {reason}" if segment.transcoded else "remuxed")

    # --- totals and stop ---------------------------------------------------------------------

    def counters(self) -> LiveCounters:
        with self._lock:
            return LiveCounters(self._started, self._refused, self._transcoded,
                                self._segments, self._bytes)

    def close(self) -> None:
        """Stop every stream (the edge is stopping) and the reaper."""
        self._closing.set()
        for camera_id in list(self._by_camera):
            self._stop(camera_id, None, "stopped", "edge stopped")
        self._reaper.join(timeout=2)
        counts = self.counters()
        if counts.started or counts.refused:
            log.info("edge=%s live view: %d streams (%d transcoded), %d refused, %d segments, "
                     "%d bytes", self.edge_id, counts.started, counts.transcoded,
                     counts.refused, counts.segments, counts.bytes)
