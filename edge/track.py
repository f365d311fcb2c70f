"""Motion: ByteTrack tracks tell moving objects from stationary ones.

Rules key their state by *place* (see ``edge.rules``), so a tracker id switch can never open a
second alert; the tracker only answers "has this object been moving lately?". A track whose
bottom-centre moved more than ``max_move`` of its own box diagonal within ``window_s`` of
stream time is moving, and its detection never builds dwell. Detections without a confirmed
track yet (one-frame blips, the first frame of an object) count as not moving: the place logic
still needs the box to stay put over several frames before anything can alert.

Ultralytics is imported lazily and only its tracker module: that pulls in NumPy code, not
torch or torchvision. Its ``matching`` module wants the ``lap`` package; where that is missing
(this project does not depend on it) a stand-in built on ultralytics' own pure-NumPy
``linear_sum_assignment`` is registered first, so nothing is installed or downloaded.
"""

from __future__ import annotations

import logging
import sys
import types
from collections import deque
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.detect.base import Detections

log = logging.getLogger(__name__)


def _lap_stand_in() -> types.ModuleType:
    """``lap.lapjv(cost, extend_cost=True, cost_limit=t)`` as ultralytics calls it."""
    from ultralytics.utils.ops import linear_sum_assignment

    def lapjv(cost: np.ndarray, extend_cost: bool = True,
              cost_limit: float = np.inf) -> tuple[float, np.ndarray, np.ndarray]:
        n, m = cost.shape
        x = np.full(n, -1, dtype=int)
        y = np.full(m, -1, dtype=int)
        if n and m:
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= cost_limit:
                    x[r], y[c] = c, r
        return 0.0, x, y

    module = types.ModuleType("lap")
    module.lapjv = lapjv  # type: ignore[attr-defined]
    module.__version__ = "0-gridwatch-stand-in"  # type: ignore[attr-defined]
    return module


def load_bytetrack() -> type | None:
    """ultralytics' BYTETracker class, or None (logged) when it cannot be imported."""
    try:
        import lap  # noqa: F401
    except ImportError:
        try:
            sys.modules["lap"] = _lap_stand_in()
        except Exception as exc:  # noqa: BLE001 - ultralytics missing or broken: degrade
            log.warning("ByteTrack unavailable (%s); motion from place matching only", exc)
            return None
    try:
        from ultralytics.trackers.byte_tracker import BYTETracker
    except Exception as exc:  # noqa: BLE001 - a broken install can raise anything: degrade
        log.warning("ByteTrack unavailable (%s); motion from place matching only", exc)
        return None
    return BYTETracker


class _Boxes:
    """The adapter ByteTrack reads: ``.xyxy .xywh .conf .cls``, boolean indexing, ``len``."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = xyxy
        self.conf = conf
        self.cls = cls
        wh = xyxy[:, 2:] - xyxy[:, :2]
        self.xywh = np.concatenate([xyxy[:, :2] + wh / 2, wh], axis=1)

    @classmethod
    def of(cls, dets: Detections) -> _Boxes:
        return cls(dets.xyxy.astype(np.float32), dets.scores.astype(np.float32),
                   dets.class_ids.astype(np.float32))

    def __getitem__(self, index: Any) -> _Boxes:
        return _Boxes(self.xyxy[index], self.conf[index], self.cls[index])

    def __len__(self) -> int:
        return len(self.conf)


class MotionTracker:
    """Per camera: ``update(dets, ts)`` -> (moving mask, track ids; -1 = no track).

    Example:
        >>> t = MotionTracker(sample_fps=2)
        >>> d = Detections(np.array([[10, 10, 50, 50]], np.float32), np.array([0.9], np.float32),
        ...                np.array([1]), ["two_wheeler"])
        >>> moving, ids = t.update(d, 0.0)
        >>> bool(moving[0])
        False
    """

    def __init__(self, sample_fps: float, *, max_move: float = 0.5, window_s: float = 3.0,
                 enabled: bool = True) -> None:
        self.max_move = max_move
        self.window_s = window_s
        self._history: dict[int, deque[tuple[float, float, float, float]]] = {}
        self._tracker = None
        cls = load_bytetrack() if enabled else None
        if cls is not None:
            args = SimpleNamespace(
                track_high_thresh=0.3, track_low_thresh=0.1, new_track_thresh=0.2,
                # Lost tracks are kept ~5 s of stream time at the sampling rate.
                track_buffer=max(2, round(5 * sample_fps)), match_thresh=0.8, fuse_score=True)
            self._tracker = cls(args)

    @property
    def active(self) -> bool:
        return self._tracker is not None

    def update(self, dets: Detections, ts: float) -> tuple[np.ndarray, np.ndarray]:
        n = len(dets)
        moving = np.zeros(n, bool)
        ids = np.full(n, -1, int)
        if self._tracker is None:
            return moving, ids
        out = self._tracker.update(_Boxes.of(dets))
        for row in out if len(out) else ():
            track_id, idx = int(row[4]), int(row[7])
            if not 0 <= idx < n:
                continue
            # Measure on the detection, not the Kalman-smoothed box.
            bx1, by1, bx2, by2 = (float(v) for v in dets.xyxy[idx])
            point = ((bx1 + bx2) / 2, by2, float(np.hypot(bx2 - bx1, by2 - by1)))
            hist = self._history.setdefault(track_id, deque())
            hist.append((ts, *point))
            while hist and ts - hist[0][0] > self.window_s:
                hist.popleft()
            ids[idx] = track_id
            diag = max(point[2], 1.0)
            moving[idx] = any(np.hypot(point[0] - hx, point[1] - hy) > self.max_move * diag
                              for _, hx, hy, _ in hist)
        live = {int(t.track_id) for t in (*self._tracker.tracked_stracks,
                                          *self._tracker.lost_stracks)}
        for track_id in list(self._history):
            if track_id not in live:
                del self._history[track_id]
        return moving, ids
