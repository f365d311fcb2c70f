"""Per-camera health from what the capture thread sees: measured input fps, a frozen picture,
a source that lags behind real time. Cheap enough to run on every sampled frame."""

from __future__ import annotations

from collections import deque
from typing import Literal

import cv2
import numpy as np

#: The states of wire/protocol.py's ``CameraState``.
SourceState = Literal["online", "offline", "frozen", "lagging"]

#: Frozen detection compares grey thumbnails this size: downscaling averages sensor and
#: compression noise away, while anything that moves still changes a few thumbnail pixels.
THUMB = (64, 36)
PIXEL_DIFF = 10  # grey levels a thumbnail pixel must change by to count as changed
CHANGED_PIXELS = 3  # this many changed pixels = the picture changed
FPS_WINDOW = 30  # arrivals kept for the fps estimate


def thumbnail(image: np.ndarray) -> np.ndarray:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)


class Health:
    """Fed by a capture thread: ``arrival`` for every frame the source delivers (decoded or
    not), ``sampled`` for every frame analysed, ``behind`` with how late the thread is against
    real time. ``state()`` is then online, frozen or lagging (offline is the thread's call)."""

    def __init__(self, *, sample_fps: float, frozen_after_s: float, lag_s: float) -> None:
        self.sample_fps = sample_fps
        self.frozen_after_s = frozen_after_s
        self.lag_s = lag_s
        self._arrivals: deque[float] = deque(maxlen=FPS_WINDOW)
        self._reference: np.ndarray | None = None
        self._changed_at = 0.0
        self._last_ts = 0.0
        self._behind = 0.0
        self._live_rate = False

    def reset(self) -> None:
        """A new connection: forget the rate and lateness (the picture history is kept, so a
        camera that reconnects to the same frozen picture stays frozen)."""
        self._arrivals.clear()
        self._behind = 0.0

    def arrival(self, clock: float, *, live: bool) -> None:
        """A frame arrived at ``clock`` (wall seconds for live sources, stream seconds for
        files, whose own rate is what matters whatever the replay speed)."""
        self._live_rate = live
        self._arrivals.append(clock)

    def sampled(self, image: np.ndarray, ts: float) -> None:
        thumb = thumbnail(image)
        if self._reference is None or thumb.shape != self._reference.shape or int(
                np.count_nonzero(np.abs(thumb - self._reference) > PIXEL_DIFF)) >= CHANGED_PIXELS:
            self._reference = thumb
            self._changed_at = ts
        self._last_ts = ts

    def behind(self, seconds: float) -> None:
        self._behind = seconds

    @property
    def fps(self) -> float | None:
        if len(self._arrivals) < 2:
            return None
        # max - min, not last - first: a file's packets come in decode order (B-frames).
        span = max(self._arrivals) - min(self._arrivals)
        return round((len(self._arrivals) - 1) / span, 2) if span > 0 else None

    @property
    def unchanged_s(self) -> float:
        return self._last_ts - self._changed_at

    def state(self, now: float | None = None) -> tuple[SourceState, str]:
        """The state and why. ``now`` (wall clock of live arrivals) lets a source that has
        gone quiet count as slow before its next frame arrives."""
        if self._reference is not None and self.unchanged_s >= self.frozen_after_s:
            return "frozen", f"picture unchanged for {self.unchanged_s:.0f}s"
        if self._behind > self.lag_s:
            return "lagging", f"frames {self._behind:.1f}s behind real time"
        fps = self.fps
        if self._live_rate and now is not None and self._arrivals and len(self._arrivals) >= 2:
            gap = now - self._arrivals[-1]
            if gap > 2.0 / self.sample_fps and gap > 1.0:
                return "lagging", f"no frame for {gap:.1f}s (sample_fps {self.sample_fps:g})"
        if fps is not None and fps < 0.9 * self.sample_fps:
            return "lagging", f"source delivers {fps:.2f} fps, sampling needs {self.sample_fps:g}"
        return "online", ""
