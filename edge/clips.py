"""Alert clips: when a rule opens or ends a violation, cut the camera's packet buffer
(``edge.capture.packets``) into an MP4 and queue it for the center (``edge.clip_outbox``).

- ``violation`` clip: from the site's **first sighting** minus ``pre_roll_s`` (the bike
  arriving, not the moment its dwell ran out) to ``post_roll_s`` after the ``new``. The rules
  keep the first sighting as the violation's ``first_wall``; on the capture's clock it is
  ``frame.ts - (frame.wall - first_wall)``. The clip is cut once the buffer holds the
  post-roll (or the camera stopped delivering: whatever it holds then).
- ``end`` clip: the ``end_clip_s`` before the ``end`` message, when the zone has been clear
  for ``clear_s``: the camera's proof of the fix.

Cutting is a remux (PyAV, no decoding or re-encoding: milliseconds) into an MP4 with its index
in front (``movflags=faststart``), so a browser starts playing before the whole file arrived.
It runs on a thread of its own, never on the inference loop. Clip ids are
``uuid5(alert_id, kind)``: a clip cut twice (an edge restarted mid-post-roll) is one clip.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from edge.capture.packets import CameraPackets, Window
from edge.clip_outbox import ClipOutbox
from edge.config import ClipConfig
from edge.rules import RuleEvent
from wire.protocol import CLIP_CHUNK_BYTES, MAX_CLIP_BYTES, ClipKind, clip_id_for

log = logging.getLogger(__name__)

#: Time base of the clips' timestamps (the MPEG one; any camera's frame times fit it).
CLIP_TIME_BASE = Fraction(1, 90000)
#: A request whose post-roll has not arrived this long after it was due (wall seconds) is cut
#: with what the buffer holds: the camera went offline, the edge is not waiting forever.
GIVE_UP_AFTER_S = 30.0
POLL_S = 0.2


def remux_mp4(window: Window, path: Path) -> None:
    """Write ``window``'s packets into an MP4 at ``path`` without decoding them. Timestamps
    start at 0 and are forced increasing in decode order (a file replay's loop seam can
    repeat one); presentation never precedes decoding."""
    import av

    with av.open(io.BytesIO(window.info.template)) as template, \
            av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream_from_template(template.streams.video[0])
        zero = min(p.decode_ts for p in window.packets)
        last_dts = -1
        for p in window.packets:
            dts = max(round((p.decode_ts - zero) / CLIP_TIME_BASE), last_dts + 1)
            pts = max(round((p.pts - zero) / CLIP_TIME_BASE), dts)
            packet = av.Packet(p.data)
            packet.dts, packet.pts, last_dts = dts, pts, dts
            packet.time_base = CLIP_TIME_BASE
            packet.duration = round(p.duration / CLIP_TIME_BASE)
            packet.is_keyframe = p.keyframe
            packet.stream = stream
            out.mux(packet)


@dataclass
class ClipRequest:
    """A clip to cut from ``camera_id``'s buffer: ``start``..``end`` on the capture clock;
    ``frame_ts``/``frame_wall`` map that clock to wall time (the event's frame)."""

    kind: ClipKind
    alert_id: uuid.UUID
    camera_id: str
    start: float
    end: float
    frame_ts: float
    frame_wall: datetime
    due: float  # time.monotonic() by which the buffer should hold ``end``

    def wall(self, ts: float) -> datetime:
        return (self.frame_wall + timedelta(seconds=ts - self.frame_ts)).astimezone(UTC)


def request_for(event: RuleEvent, settings: ClipConfig) -> ClipRequest | None:
    """The clip a rule event asks for, or None (updates; an end clip of length 0)."""
    frame, v = event.frame, event.violation
    kind: ClipKind
    if event.kind == "new":
        first_seen = frame.ts - (frame.wall - v.first_wall).total_seconds()
        start, end = first_seen - settings.pre_roll_s, frame.ts + settings.post_roll_s
        kind, wait = "violation", settings.post_roll_s
    elif event.kind == "end" and settings.end_clip_s > 0:
        start, end, kind, wait = frame.ts - settings.end_clip_s, frame.ts, "end", 0.0
    else:
        return None
    return ClipRequest(kind, v.alert_id, event.camera_id, start, end, frame.ts,
                       frame.wall, time.monotonic() + wait + GIVE_UP_AFTER_S)


class ClipCutter:
    """Cuts requested clips from each camera's buffer when their end has arrived, on its own
    thread, and hands them to the outbox. ``close`` cuts what is still waiting with whatever
    the buffers hold (an edge stopping, a file replay's end)."""

    def __init__(self, edge_id: str, packets: dict[str, CameraPackets],
                 settings: dict[str, ClipConfig], outbox: ClipOutbox) -> None:
        self.edge_id = edge_id
        self.packets, self.settings, self.outbox = packets, settings, outbox
        self.cut = 0
        self._pending: list[ClipRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-cutter", daemon=True)
        self._thread.start()

    def on_event(self, event: RuleEvent) -> None:
        settings = self.settings.get(event.camera_id)
        if settings is None or not settings.enabled or event.camera_id not in self.packets:
            return
        request = request_for(event, settings)
        if request is not None:
            with self._lock:
                self._pending.append(request)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._cut_ready(force=False)

    def _cut_ready(self, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            ready = [r for r in self._pending if force or now >= r.due
                     or (self.packets[r.camera_id].ring.latest or float("-inf")) >= r.end]
            self._pending = [r for r in self._pending if r not in ready]
        for request in ready:
            try:
                self._cut(request)
            except Exception:  # one broken clip must not stop the others
                log.exception("camera=%s alert_id=%s %s clip failed", request.camera_id,
                              request.alert_id, request.kind)

    def _cut(self, request: ClipRequest) -> None:
        window = self.packets[request.camera_id].ring.window(request.start, request.end)
        if window is None:
            log.warning("camera=%s alert_id=%s no packets for the %s clip (%.1f..%.1f s): "
                        "none buffered", request.camera_id, request.alert_id, request.kind,
                        request.start, request.end)
            return
        clip_id = str(clip_id_for(request.alert_id, request.kind))
        path = self.outbox.temp_path(clip_id)
        remux_mp4(window, path)
        data = path.read_bytes()
        if len(data) > MAX_CLIP_BYTES:
            path.unlink(missing_ok=True)
            log.error("camera=%s alert_id=%s %s clip of %d bytes is over the protocol's %d: "
                      "not sent", request.camera_id, request.alert_id, request.kind, len(data),
                      MAX_CLIP_BYTES)
            return
        started, ended = request.wall(window.start), request.wall(window.end)
        self.outbox.put({
            "clip_id": clip_id, "alert_id": str(request.alert_id), "kind": request.kind,
            "edge_id": self.edge_id, "camera_id": request.camera_id,
            "started_at": started.isoformat(), "ended_at": ended.isoformat(),
            "codec": window.info.codec, "content_type": "video/mp4", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "count": -(-len(data) // CLIP_CHUNK_BYTES)}, path)
        self.cut += 1
        short = " (the buffer did not reach back that far)" if window.start > request.start \
            + 0.5 else ""
        log.info("camera=%s alert_id=%s %s clip %s: %.1f s from %s, %d bytes, %s%s",
                 request.camera_id, request.alert_id, request.kind, clip_id,
                 window.end - window.start, started.isoformat(), len(data), window.info.codec,
                 short)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._cut_ready(force=True)
