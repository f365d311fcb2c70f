"""Camera sources: one thread per camera turns a file, stream or device into sampled `Frame`s.

Sampling happens here, before decoding where possible, because analysing every frame of a
30 fps stream would cost the CPU that other cameras need; 1-2 fps is enough to judge parking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from edge.config import CameraConfig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0

SourceState = Literal["online", "offline"]
#: ``on_state(camera_id, state, detail)``, called when the state changes.
StateCallback = Callable[[str, SourceState, str], None]


@dataclass(frozen=True)
class Frame:
    """A sampled picture. ``ts`` is stream time in seconds (a file's position, a live stream's
    time since connecting), so rules behave the same whether a file replays at 1x or 100x;
    ``wall`` is when it was taken, for people reading alerts."""

    camera_id: str
    image: np.ndarray
    ts: float
    wall: datetime


class FrameQueue:
    """Bounded hand-over from a capture thread to inference.

    Live cameras drop the oldest frame when inference falls behind, so alerts are judged on
    what the street looks like now and the drop is counted rather than hidden. A file replayed
    as fast as possible (speed 0) blocks instead: there is no "now" to keep up with, and
    dropping would make replays non-deterministic.
    """

    def __init__(self, maxsize: int = 2, *, block_when_full: bool = False) -> None:
        self._items: deque[Frame] = deque()
        self._maxsize = maxsize
        self._block = block_when_full
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            if self._block:
                while len(self._items) >= self._maxsize and not stop.is_set():
                    self._cond.wait(0.1)
            elif len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)

    def get_nowait(self) -> Frame | None:
        with self._cond:
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def redact(source: str) -> str:
    """The source with any password removed, for logs and status messages."""
    parts = urlsplit(source)
    if parts.password is None:
        return source
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class CameraCapture(threading.Thread):
    """Reads one camera into ``queue`` until EOF (files with ``loop: false``) or ``stop``."""

    def __init__(self, camera: CameraConfig, stop: threading.Event, *, speed: float = 1.0,
                 on_state: StateCallback | None = None, wakeup: threading.Event | None = None,
                 queue_size: int = 2) -> None:
        super().__init__(name=f"capture-{camera.id}", daemon=True)
        self.camera = camera
        self.speed = speed
        self.queue = FrameQueue(queue_size, block_when_full=camera.is_file and speed == 0)
        self.finished = threading.Event()
        self._stop_event = stop
        self._on_state = on_state or (lambda *_: None)
        self._state: SourceState | None = None
        self._wakeup = wakeup
        self._period = 1.0 / camera.sample_fps

    def run(self) -> None:
        try:
            if self.camera.is_file:
                self._run_file()
            else:
                self._run_live()
        except Exception:
            log.exception("camera=%s capture crashed", self.camera.id)
            self._set_state("offline", "capture crashed")
        finally:
            self.finished.set()
            if self._wakeup:
                self._wakeup.set()

    def _set_state(self, state: SourceState, detail: str) -> None:
        """Report changes only: a camera retrying every 30 s is one "offline", not a flood."""
        if state != self._state:
            self._state = state
            self._on_state(self.camera.id, state, detail)

    def _emit(self, image: np.ndarray, ts: float, wall: datetime | None = None) -> None:
        frame = Frame(self.camera.id, image, ts, wall or datetime.now(UTC))
        self.queue.put(frame, self._stop_event)
        if self._wakeup:
            self._wakeup.set()

    def _pace(self, started: float, ts: float) -> None:
        """Hold a replay to ``speed`` x real time, so a file can stand in for a live camera."""
        if self.speed > 0:
            delay = started + ts / self.speed - time.monotonic()
            if delay > 0:
                self._stop_event.wait(delay)

    # --- files -----------------------------------------------------------------------------

    def _run_file(self) -> None:
        path = Path(self.camera.source)
        if not path.exists():
            log.error("camera=%s source file missing: %s", self.camera.id, path)
            self._set_state("offline", f"file not found: {path}")
            return
        self._set_state("online", "")
        started = time.monotonic()
        # A replay's wall clock is stream time from the start of the replay, so an alert's
        # started_at..last_seen_at spans its real dwell at any replay speed.
        wall_zero = datetime.now(UTC)
        frames = self._still(path) if path.suffix.lower() in IMAGE_SUFFIXES else self._video(path)
        for image, ts in frames:
            if self._stop_event.is_set():
                return
            self._pace(started, ts)
            self._emit(image, ts, wall_zero + timedelta(seconds=ts))
        log.info("camera=%s end of file %s", self.camera.id, path.name)
        self._set_state("offline", "end of file")

    def _still(self, path: Path) -> Iterator[tuple[np.ndarray, float]]:
        image = cv2.imread(str(path))
        if image is None:
            raise OSError(f"cannot decode image {path}")
        n = 0
        while True:
            yield image, n * self._period
            n += 1
            if not self.camera.loop:
                return

    def _video(self, path: Path) -> Iterator[tuple[np.ndarray, float]]:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise OSError(f"cannot open video {path}")
        try:
            fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            next_sample = 0.0
            offset = 0.0  # stream time at the start of this pass through the file
            index = 0
            while True:
                if not cap.grab():
                    if index == 0 or not self.camera.loop:
                        return
                    offset += index / fps
                    index = 0
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                ts = offset + index / fps
                index += 1
                if ts + 1e-6 < next_sample:
                    continue  # grabbed but never decoded: skipping is cheap
                ok, image = cap.retrieve()
                if not ok:
                    continue
                yield image, ts
                while next_sample <= ts + 1e-6:
                    next_sample += self._period
        finally:
            cap.release()

    # --- live streams and devices ----------------------------------------------------------

    def _run_live(self) -> None:
        source = self.camera.source
        target: str | int = int(source) if source.isdigit() else source
        backoff = RECONNECT_MIN_S
        started = time.monotonic()  # one clock across reconnects: stream time never goes back
        while not self._stop_event.is_set():
            cap = cv2.VideoCapture(target)
            if not cap.isOpened():
                cap.release()
                self._set_state("offline", f"cannot open {redact(source)}")
                log.warning("camera=%s cannot open %s; retry in %.0fs",
                            self.camera.id, redact(source), backoff)
                self._stop_event.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            self._set_state("online", "")
            backoff = RECONNECT_MIN_S
            self._read_live(cap, started)
            cap.release()
            if not self._stop_event.is_set():
                self._set_state("offline", "stream ended or read failed")
                log.warning("camera=%s stream lost; reconnecting", self.camera.id)

    def _read_live(self, cap: cv2.VideoCapture, started: float) -> None:
        """Read every frame (so the decoder's buffer never lags behind the street), keep only
        one per sampling period."""
        next_sample = 0.0
        while not self._stop_event.is_set():
            if not cap.grab():
                return
            ts = time.monotonic() - started
            if ts < next_sample:
                continue
            ok, image = cap.retrieve()
            if ok:
                self._emit(image, ts)
                next_sample = ts + self._period
