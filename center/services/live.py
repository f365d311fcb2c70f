"""Live view at the center: one stream per watched camera, its last few HLS segments in
memory, and the limits (docs/video.md "Live view").

A stream exists while someone watches: the first viewer's ask (``open``) sends the edge a
``start`` request; every later ask and every playlist fetch counts as that viewer still
watching (``touch``). ``run`` renews the edge's time-to-live every ``keepalive_s`` while a
viewer is left, and stops the stream (a ``stop`` to the edge) once the last viewer has been
silent for ``idle_s``. The edge stops on its own when a renewal does not come, so a center
that dies leaves nothing streaming.

Segments arrive in chunks (``LiveChunk``) and are assembled here; only complete ones are
served. They are numbered by the center as they complete (the playlist's media sequence), so a
segment lost on the way (QoS 0) leaves no hole in the numbering hls.js follows.

Nothing here is stored: a center restart ends every stream and the pages ask again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from center.domain.district import District
from center.platform.settings import LiveSettings
from center.services.auth import Principal
from center.store import camera_cases
from center.store.db import Connection
from wire.protocol import (
    MAX_LIVE_SEGMENT_BYTES,
    LiveChunk,
    LiveRequest,
    LiveState,
    live_request_topic,
)

log = logging.getLogger(__name__)

#: ``publish(topic, payload)``: a request to an edge (the center's MQTT connection).
Publish = Callable[[str, str], Awaitable[None]]
StreamState = Literal["starting", "playing", "stopped", "refused"]
#: Segments assembled at once per stream: a newer one's chunks make the oldest incomplete
#: one hopeless (a chunk of it was lost).
ASSEMBLING = 2


class LiveRefused(Exception):
    """The ask cannot be served: ``status`` 503 (camera or edge offline) or 429 (a limit)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Segment:
    msn: int  # media sequence number, given by the center
    duration_s: float
    data: bytes
    #: The edge's numbering went back (the edge restarted and streams again under the same
    #: id): its clock starts again too, which hls.js must be told (EXT-X-DISCONTINUITY).
    discontinuity: bool = False


@dataclass
class _Parts:
    parts: int
    duration_s: float
    got: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Stream:
    camera_id: str
    edge_id: str
    stream_id: str
    created: float
    state: StreamState = "starting"
    detail: str = ""
    status: int = 503  # the HTTP status a refusal is answered with
    transcoded: bool = False
    counted_transcoded: bool = False
    #: person id -> when they last asked or fetched the playlist (monotonic).
    viewers: dict[str, float] = field(default_factory=dict)
    segments: deque[Segment] = field(default_factory=deque)
    #: Segments dropped off the playlist, still served for as long again: a player that
    #: read the playlist just before they went may still fetch them (RFC 8216 6.2.2; a
    #: loaded box's player asking for one got 404 and a console error).
    retired: deque[Segment] = field(default_factory=deque)
    next_msn: int = 0
    last_seq: int = -1  # the edge's number of the newest segment completed
    discontinuities: int = 0  # discontinuities dropped off the playlist's front
    renewed: float = 0.0
    assembling: dict[int, _Parts] = field(default_factory=dict)

    def segment(self, msn: int) -> Segment | None:
        return next((s for held in (self.segments, self.retired) for s in held
                     if s.msn == msn), None)


async def why_not_watch(conn: Connection, who: Principal, district: District,
                        camera_id: str) -> str | None:
    """Why ``who`` may not watch ``camera_id``, or None: they see a camera's video where they
    see its cases. Operators, engineers and admins see every camera; leaders the cameras of
    their micro-grids; a worker those of their own micro-grid; anyone the cameras of the open
    cases assigned to them."""
    if who.is_wall:
        return None
    micro_grid = district.micro_grid_of(camera_id)
    areas = who.micro_grids(district)
    if who.role == "worker" and who.person.micro_grid is not None:
        areas = {who.person.micro_grid}
    if areas is not None and micro_grid in areas:
        return None
    if await camera_cases.has_open_case_at(conn, who.id, camera_id):
        return None
    where = f"micro-grid {micro_grid}" if micro_grid else "no micro-grid"
    return (f"camera {camera_id} is in {where}, outside what {who.id} ({who.role}) sees, and "
            f"{who.id} has no open case there")


@dataclass
class LiveCounts:
    started: int = 0  # streams asked of an edge
    transcoded: int = 0  # of those, re-encoded by the edge (the fallback)
    segments: int = 0  # segments completed from edges' chunks
    chunks_refused: int = 0
    served_bytes: int = 0  # segment bytes served to viewers


class LiveService:
    def __init__(self, settings: LiveSettings, publish: Publish,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._publish = publish
        self._clock = clock
        self._by_camera: dict[str, Stream] = {}
        self._by_id: dict[str, Stream] = {}
        #: Counters for /metrics (center/platform/metrics.py).
        self.counts = LiveCounts()

    # --- viewers -------------------------------------------------------------------------

    async def open(self, camera_id: str, edge_id: str, viewer: str) -> Stream:
        """The stream ``viewer`` may watch ``camera_id`` on: the running one, or a new one
        the edge is asked for. LiveRefused past a limit or after the edge refused."""
        now = self._clock()
        stream = self._by_camera.get(camera_id)
        if stream is not None and stream.state in ("stopped", "refused"):
            if stream.state == "refused" and now - stream.created < self.settings.keepalive_s:
                raise LiveRefused(stream.status, stream.detail)  # asked again later: retried
            self._drop(stream)
            stream = None
        if stream is None:
            running = sum(1 for s in self._by_camera.values() if s.edge_id == edge_id)
            if running >= self.settings.streams_per_edge:
                raise LiveRefused(429, f"edge {edge_id} already streams {running} cameras "
                                  f"(live.streams_per_edge {self.settings.streams_per_edge})")
            stream = Stream(camera_id, edge_id, secrets.token_urlsafe(12), now)
            # Its first viewer before the ask's await: ``tick`` runs meanwhile and stops a
            # stream it finds with no viewer, which left the asker a playlist that 404s.
            stream.viewers[viewer] = now
            self._by_camera[camera_id] = stream
            self._by_id[stream.stream_id] = stream
            log.info("live camera=%s edge=%s stream %s asked for by %s", camera_id, edge_id,
                     stream.stream_id, viewer)
            self.counts.started += 1
            await self._ask(stream, "start")
        self._expire_viewers(stream, now)
        if viewer not in stream.viewers and (
                len(stream.viewers) >= self.settings.viewers_per_camera):
            raise LiveRefused(429, f"camera {camera_id} already has {len(stream.viewers)} "
                              f"viewers (live.viewers_per_camera "
                              f"{self.settings.viewers_per_camera})")
        stream.viewers[viewer] = now
        return stream

    def find(self, camera_id: str, stream_id: str) -> Stream | None:
        stream = self._by_id.get(stream_id)
        return stream if stream is not None and stream.camera_id == camera_id else None

    def touch(self, stream: Stream, viewer: str) -> bool:
        """A playlist fetch: ``viewer`` still watches. False when they are no viewer of it
        (never asked, or gone idle): they must ask again."""
        if viewer not in stream.viewers:
            return False
        stream.viewers[viewer] = self._clock()
        return True

    def playlist(self, stream: Stream, url_of: Callable[[Segment], str]) -> str:
        """The live HLS playlist of the segments held (no ENDLIST: hls.js keeps reloading)."""
        segments = list(stream.segments)
        target = max((math.ceil(s.duration_s) for s in segments), default=1)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{segments[0].msn if segments else 0}",
                 f"#EXT-X-DISCONTINUITY-SEQUENCE:{stream.discontinuities}"]
        for segment in segments:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines += [f"#EXTINF:{segment.duration_s:.3f},", url_of(segment)]
        return "\n".join(lines) + "\n"

    # --- from the edges (transport) ------------------------------------------------------

    def chunk(self, chunk: LiveChunk) -> str | None:
        """Take one chunk; the reason it was refused, or None. A chunk of a stream the center
        no longer has is dropped quietly (the edge has not heard the stop yet)."""
        stream = self._by_id.get(chunk.stream_id)
        if stream is None or stream.state in ("stopped", "refused"):
            return None
        if (chunk.camera_id, chunk.edge_id) != (stream.camera_id, stream.edge_id):
            self.counts.chunks_refused += 1
            return (f"stream {chunk.stream_id} is camera {stream.camera_id} of edge "
                    f"{stream.edge_id}, not {chunk.camera_id} of {chunk.edge_id}")
        parts = stream.assembling.get(chunk.seq)
        if parts is None:
            parts = stream.assembling[chunk.seq] = _Parts(chunk.parts, chunk.duration_s)
            while len(stream.assembling) > ASSEMBLING:
                del stream.assembling[min(stream.assembling)]
        if parts.parts != chunk.parts:
            self.counts.chunks_refused += 1
            return f"segment {chunk.seq} said {parts.parts} parts, now {chunk.parts}"
        parts.got[chunk.part] = chunk.data
        if len(parts.got) < parts.parts:
            return None
        del stream.assembling[chunk.seq]
        data = b"".join(parts.got[i] for i in range(parts.parts))
        if len(data) > MAX_LIVE_SEGMENT_BYTES:
            self.counts.chunks_refused += 1
            return f"segment {chunk.seq} larger than {MAX_LIVE_SEGMENT_BYTES} bytes"
        stream.segments.append(Segment(stream.next_msn, parts.duration_s, data,
                                       discontinuity=chunk.seq <= stream.last_seq))
        self.counts.segments += 1
        if chunk.transcoded and not stream.counted_transcoded:
            self.counts.transcoded += 1
            stream.counted_transcoded = True
        stream.next_msn += 1
        stream.last_seq = chunk.seq
        while len(stream.segments) > self.settings.segments_kept:
            retired = stream.segments.popleft()
            stream.discontinuities += retired.discontinuity
            stream.retired.append(retired)
        while len(stream.retired) > self.settings.segments_kept:
            stream.retired.popleft()
        stream.transcoded = chunk.transcoded
        if stream.state == "starting":
            stream.state = "playing"
        return None

    def state(self, state: LiveState) -> str | None:
        """An edge's word on a stream; the reason it was refused, or None."""
        stream = self._by_id.get(state.stream_id)
        if stream is None:
            return None
        if (state.camera_id, state.edge_id) != (stream.camera_id, stream.edge_id):
            return (f"stream {state.stream_id} is camera {stream.camera_id} of edge "
                    f"{stream.edge_id}, not {state.camera_id} of {state.edge_id}")
        stream.transcoded = state.transcoded
        if state.state == "refused" or (state.state == "stopped"
                                        and state.reason not in ("stopped", None)):
            stream.state = "refused"
            stream.status = 429 if state.reason == "limit" else 503
            stream.detail = state.detail or f"the edge {state.state} the stream"
            stream.created = self._clock()  # a refusal is remembered keepalive_s from now
            log.info("live camera=%s stream %s %s by edge %s: %s", stream.camera_id,
                     stream.stream_id, state.state, stream.edge_id, stream.detail)
        return None

    # --- the loop ------------------------------------------------------------------------

    async def run(self, every_s: float = 1.0) -> None:
        """Renew watched streams with their edges, stop idle ones, give up on silent ones."""
        while True:
            await asyncio.sleep(every_s)
            await self.tick()

    async def tick(self) -> None:
        now = self._clock()
        for stream in list(self._by_camera.values()):
            self._expire_viewers(stream, now)
            if stream.state in ("stopped", "refused"):
                if now - stream.created >= self.settings.keepalive_s:
                    self._drop(stream)
                continue
            if not stream.viewers:
                await self.stop(stream, "no viewer left")
            elif stream.state == "starting" and (
                    now - stream.created >= self.settings.start_timeout_s):
                stream.state, stream.status = "refused", 503
                stream.detail = (f"no video from edge {stream.edge_id} within "
                                 f"{self.settings.start_timeout_s:g} s")
                await self._ask(stream, "stop")
            elif now - stream.renewed >= self.settings.keepalive_s:
                await self._ask(stream, "start")

    async def stop(self, stream: Stream, why: str) -> None:
        log.info("live camera=%s stream %s stopped: %s", stream.camera_id, stream.stream_id,
                 why)
        stream.state = "stopped"
        self._drop(stream)
        await self._ask(stream, "stop")

    def _drop(self, stream: Stream) -> None:
        if self._by_camera.get(stream.camera_id) is stream:
            del self._by_camera[stream.camera_id]
        self._by_id.pop(stream.stream_id, None)

    def _expire_viewers(self, stream: Stream, now: float) -> None:
        for viewer, seen in list(stream.viewers.items()):
            if now - seen > self.settings.idle_s:
                del stream.viewers[viewer]

    async def _ask(self, stream: Stream, action: Literal["start", "stop"]) -> None:
        request = LiveRequest(edge_id=stream.edge_id, camera_id=stream.camera_id,
                              stream_id=stream.stream_id, action=action,
                              ttl_s=self.settings.edge_ttl_s, at=datetime.now(UTC))
        stream.renewed = self._clock()
        try:
            await self._publish(live_request_topic(stream.edge_id), request.model_dump_json())
        except Exception as exc:  # noqa: BLE001 - the broker away: the next renewal retries
            log.warning("live camera=%s %s request not sent: %s", stream.camera_id, action, exc)

    def served(self, segment: Segment) -> bytes:
        """A segment's bytes, counted as served."""
        self.counts.served_bytes += len(segment.data)
        return segment.data

    def streams(self) -> list[Stream]:
        return list(self._by_camera.values())
