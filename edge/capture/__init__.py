"""Camera sources: one thread per camera turns a file, stream or device into sampled `Frame`s.

Sampling happens here, before decoding where possible (see `edge.capture.decode`), because
analysing every frame of a 25 fps stream would cost the CPU that other cameras need; 1-2 fps
is enough to judge parking. The thread also judges the camera's health (`edge.capture.health`)
and reports every change of state through ``on_state``: online, offline (cannot open, lost,
end of file; reconnecting with exponential backoff), frozen, lagging.

Sources: a file (video, or a still image, which behaves as a frozen camera), ``rtsp://``,
``http(s)://`` (MJPEG multipart streams, HLS ``.m3u8``, anything FFmpeg reads) and a local
device index such as ``"0"``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture.decode import DecodeStats, OpenCVDecoder, PyAVDecoder, choose_decoder
from edge.capture.frames import Frame, FrameQueue
from edge.capture.health import Health, SourceState
from edge.capture.packets import CameraPackets
from edge.capture.redact import redact, scrub
from edge.config import CameraConfig

__all__ = ["CameraCapture", "Frame", "FrameQueue", "SourceState", "StateCallback", "redact",
           "scrub"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
RECONNECT_MIN_S = 1.0
#: A state is re-reported (retained, with a fresh fps) at most this often when only fps moved.
REFRESH_S = 60.0

#: ``on_state(camera_id, state, detail)``, called when the state changes; a callback that
#: accepts an ``fps`` keyword also gets the measured input frame rate.
StateCallback = Callable[..., None]


def _takes_fps(callback: Callable[..., None]) -> bool:
    try:
        inspect.signature(callback).bind("c", "online", "", fps=None)
    except (TypeError, ValueError):
        return False
    return True


class CameraCapture(threading.Thread):
    """Reads one camera into ``queue`` until EOF (files with ``loop: false``) or ``stop``."""

    def __init__(self, camera: CameraConfig, stop: threading.Event, *, speed: float = 1.0,
                 on_state: StateCallback | None = None, wakeup: threading.Event | None = None,
                 queue_size: int = 2, packets: CameraPackets | None = None) -> None:
        super().__init__(name=f"capture-{camera.id}", daemon=True)
        self.camera = camera
        self.speed = speed
        self.queue = FrameQueue(queue_size, block_when_full=camera.is_file)
        self.finished = threading.Event()
        self.health = Health(sample_fps=camera.sample_fps, frozen_after_s=camera.frozen_after_s,
                             lag_s=camera.lag_s)
        self.decode_stats: DecodeStats | None = None
        #: Waits between reconnect attempts so far (seconds), for tests and diagnostics.
        self.retry_waits: list[float] = []
        self.state: SourceState | None = None
        self._stop_event = stop
        self._on_state: StateCallback = on_state or (lambda *_, **__: None)
        self._state_fps = _takes_fps(self._on_state)
        self._reported_at = 0.0
        self._reported_fps: float | None = None
        self._wakeup = wakeup
        self._period = 1.0 / camera.sample_fps
        self._safe_source = redact(camera.source)
        #: Every demuxed packet goes here (alert clips, live view); PyAV sources only.
        self.packets = packets

    def _packet_options(self, decoder_class: type[PyAVDecoder] | type[OpenCVDecoder],
                        offset: float = 0.0) -> dict[str, Any]:
        """The decoder's packet keywords: OpenCV reads decoded pictures only, so a camera on
        it has no packets (no clips), which is said once."""
        if self.packets is None:
            return {}
        if decoder_class is OpenCVDecoder:
            log.warning("camera=%s is read through OpenCV, which gives no encoded packets: "
                        "no alert clips for it (use decoder: pyav)", self.camera.id)
            self.packets = None
            return {}
        return {"packets": self.packets, "packet_offset": offset}

    def run(self) -> None:
        try:
            if self.camera.is_file:
                self._run_file()
            else:
                self._run_live()
        except Exception as exc:  # noqa: BLE001 - the thread's top: log it, report the camera
            log.error("camera=%s capture crashed: %s", self.camera.id,
                      scrub(f"{type(exc).__name__}: {exc}", self.camera.source))
            self._set_state("offline", "capture crashed")
        finally:
            self.finished.set()
            if self._wakeup:
                self._wakeup.set()

    # --- state ------------------------------------------------------------------------------

    def _set_state(self, state: SourceState, detail: str) -> None:
        """Report changes only (a camera retrying every 30 s is one "offline", not a flood),
        plus a refresh now and then when only the measured fps has moved."""
        detail = scrub(detail, self.camera.source)
        fps = self.health.fps if state != "offline" else None
        now = time.monotonic()
        refresh = (state == self.state and self._state_fps and fps is not None
                   and now - self._reported_at >= REFRESH_S
                   and (self._reported_fps is None
                        or abs(fps - self._reported_fps) > 0.1 * self._reported_fps))
        if state == self.state and not refresh:
            return
        if state != self.state:
            log.info("camera=%s state=%s fps=%s %s", self.camera.id, state, fps, detail)
        self.state = state
        self._reported_at, self._reported_fps = now, fps
        if self._state_fps:
            self._on_state(self.camera.id, state, detail, fps=fps)
        else:
            self._on_state(self.camera.id, state, detail)

    def _judge(self, now: float | None = None) -> None:
        state, why = self.health.state(now)
        stats = self.decode_stats
        how = f"{stats.describe()}" if stats else ""
        self._set_state(state, why or how)

    def _emit(self, image: np.ndarray, ts: float, wall: datetime | None = None,
              now: float | None = None) -> None:
        self.health.sampled(image, ts)
        self._judge(now)
        frame = Frame(self.camera.id, image, ts, wall or datetime.now(UTC))
        self.queue.put(frame, self._stop_event)
        if self._wakeup:
            self._wakeup.set()

    def _pace(self, started: float, ts: float) -> None:
        """Hold a replay to ``speed`` x real time, so a file can stand in for a live camera;
        a replay that cannot keep that pace is lagging."""
        if self.speed > 0:
            delay = started + ts / self.speed - time.monotonic()
            self.health.behind(-delay)
            if delay > 0:
                self._stop_event.wait(delay)

    # --- files -----------------------------------------------------------------------------

    def _run_file(self) -> None:
        path = Path(self.camera.source)
        if not path.exists():
            log.error("camera=%s source file missing: %s", self.camera.id, path)
            self._set_state("offline", f"file not found: {path}")
            return
        started = time.monotonic()
        # A replay's wall clock is stream time from the start of the replay, so an alert's
        # started_at..last_seen_at spans its real dwell at any replay speed.
        wall_zero = datetime.now(UTC)
        still = path.suffix.lower() in IMAGE_SUFFIXES
        frames = self._still(path) if still else self._video(path)
        end = self.camera.duration_s
        for image, ts in frames:
            if self._stop_event.is_set():
                return
            if end is not None and ts >= end:
                break
            self._pace(started, ts)
            if self.state is None:
                self._set_state("online", "still image" if still else "")
            self._emit(image, ts, wall_zero + timedelta(seconds=ts))
        if self._stop_event.is_set():
            return
        log.info("camera=%s end of file %s", self.camera.id, path.name)
        if self.state is None:
            self._set_state("online", "")
        self._set_state("offline", "end of file")

    def _still(self, path: Path) -> Iterator[tuple[np.ndarray, float]]:
        image = cv2.imread(str(path))
        if image is None:
            raise OSError(f"cannot decode image {path}")
        n = 0
        while True:
            self.health.arrival(n * self._period, live=False)
            yield image, n * self._period
            n += 1
            if not self.camera.loop and self.camera.duration_s is None:
                log.warning("camera=%s still image with loop: false and no duration_s: one "
                            "frame only, so no dwell can build (set duration_s)", self.camera.id)
                return

    def _video(self, path: Path) -> Iterator[tuple[np.ndarray, float]]:
        """Every pass through the file continues stream time where the last one ended."""
        decoder_class = choose_decoder(str(path), self.camera.decoder)
        offset = 0.0  # stream time at the start of this pass through the file
        next_sample = 0.0
        while True:
            def arrived(t: float, start: float = offset) -> None:
                self.health.arrival(start + t, live=False)

            decoder = decoder_class(str(path), period=self._period, live=False,
                                    next_sample=next_sample - offset, on_arrival=arrived,
                                    **self._packet_options(decoder_class, offset))
            self.decode_stats = decoder.stats
            try:
                for ts, image in decoder.frames():
                    yield image, offset + ts
                next_sample = offset + decoder.next_sample
            finally:
                decoder.close()
            if not self.camera.loop or decoder.stats.packets == 0:
                return
            offset += decoder.duration  # the last frame's time plus one frame

    # --- live streams and devices ----------------------------------------------------------

    def _run_live(self) -> None:
        source = self.camera.source
        decoder_class = choose_decoder(source, self.camera.decoder)
        backoff = RECONNECT_MIN_S
        started = time.monotonic()  # one clock across reconnects: stream time never goes back
        next_sample = 0.0
        while not self._stop_event.is_set():
            self.health.reset()
            try:
                decoder = decoder_class(
                    source, period=self._period, live=True, timeout_s=self.camera.timeout_s,
                    next_sample=0.0,
                    on_arrival=lambda now: self.health.arrival(now, live=True),
                    **self._packet_options(decoder_class))
            except Exception as exc:  # noqa: BLE001 - PyAV, OpenCV, network: retry whatever it is
                reason = scrub(f"{type(exc).__name__}: {exc}", source)
                self._set_state("offline", f"cannot open {self._safe_source}: {reason}; "
                                f"retrying every {backoff:.0f}s or less")
                log.warning("camera=%s cannot open %s (%s); retry in %.0fs", self.camera.id,
                            self._safe_source, reason, backoff)
                self.retry_waits.append(backoff)
                self._stop_event.wait(backoff)
                backoff = min(backoff * 2, self.camera.reconnect_max_s)
                continue
            self.decode_stats = decoder.stats
            connected = time.monotonic() - started
            if isinstance(decoder, PyAVDecoder):
                decoder.packet_offset = connected  # packets on the frames' clock
            first: tuple[float, float] | None = None  # (wall, stream ts) of the first frame
            reason = "stream ended"
            try:
                for ts, image in decoder.frames():
                    if self._stop_event.is_set():
                        break
                    now = time.monotonic()
                    if first is None:
                        first = (now, ts)
                        backoff = RECONNECT_MIN_S
                    # How far this frame's stream time trails the wall clock since the first.
                    self.health.behind((now - first[0]) - (ts - first[1]))
                    absolute = max(connected + ts, next_sample)
                    next_sample = absolute
                    self._emit(image, absolute, now=now)
            except Exception as exc:  # noqa: BLE001 - a lost stream of any kind: reconnect
                reason = scrub(f"{type(exc).__name__}: {exc}", source)
            finally:
                decoder.close()
            if self._stop_event.is_set():
                return
            self._set_state("offline", f"{self._safe_source}: {reason}; reconnecting")
            log.warning("camera=%s stream lost (%s); reconnect in %.0fs", self.camera.id,
                        reason, backoff)
            self.retry_waits.append(backoff)
            self._stop_event.wait(backoff)
            backoff = min(backoff * 2, self.camera.reconnect_max_s)
