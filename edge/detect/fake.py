"""Replays canned boxes from a YAML/JSON file: for tests and simulators, no model at all.

File format (YAML or JSON; boxes are x1 y1 x2 y2, in pixels or, with ``units: norm``, in 0..1
of the frame)::

    units: px            # or norm
    hold: true           # a key's boxes stay until the next key (false: only at that key)
    frames:              # keyed by frame index (the n-th detect() call, from 0) ...
      0: [{box: [10, 20, 50, 80], label: bicycle, score: 0.9}]
      5: []
    # ... or, instead of frames:, keyed by stream time in seconds since the first detect()
    # times: {0.0: [...], 2.5: [...]}

``label`` is a model class name mapped through ``class_map`` (unmapped ones are dropped); with
an empty ``class_map`` labels are taken as our classes unchanged.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge.detect.base import Detections, Detector


class FakeDetector(Detector):
    """Detector backend that replays boxes from a file instead of looking at the frame.

    Example:
        >>> det = FakeDetector.from_data({"frames": {0: [{"box": [1, 2, 3, 4], "label": "car"}],
        ...                                          2: []}})
        >>> [d.labels for d in det.detect_batch([np.zeros((8, 8, 3), np.uint8)] * 3)]
        [['car'], ['car'], []]
    """

    def __init__(self, path: Path, labelmap: list[str] | None = None,
                 class_map: dict[str, str] | None = None, *, score_threshold: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, **_ignored: Any) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"missing fake-detector replay file {path}")
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        self._setup(data, class_map or {}, score_threshold, clock, str(path))

    @classmethod
    def from_data(cls, data: dict[str, Any], class_map: dict[str, str] | None = None, *,
                  score_threshold: float = 0.0,
                  clock: Callable[[], float] = time.monotonic) -> FakeDetector:
        self = cls.__new__(cls)
        self._setup(data, class_map or {}, score_threshold, clock, "<data>")
        return self

    def _setup(self, data: Any, class_map: dict[str, str], score_threshold: float,
               clock: Callable[[], float], source: str) -> None:
        if not isinstance(data, dict) or ("frames" in data) == ("times" in data):
            raise ValueError(f"{source}: expected a mapping with exactly one of 'frames' or "
                             f"'times'")
        self._by_time = "times" in data
        table = data["times" if self._by_time else "frames"] or {}
        self._units = data.get("units", "px")
        if self._units not in ("px", "norm"):
            raise ValueError(f"{source}: units must be 'px' or 'norm', got {self._units!r}")
        self._hold = bool(data.get("hold", True))
        self._clock = clock
        self._start: float | None = None
        self._count = 0
        names: list[str] = []
        entries: list[tuple[float, list[tuple[list[float], str, float]]]] = []
        for key, boxes in table.items():
            parsed = []
            for i, item in enumerate(boxes or []):
                try:
                    box = [float(v) for v in item["box"]]
                    label = str(item["label"])
                    score = float(item.get("score", 1.0))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{source}: entry {key}[{i}]: need box: [x1, y1, x2, y2] "
                                     f"and label ({exc})") from None
                if len(box) != 4:
                    raise ValueError(f"{source}: entry {key}[{i}]: box needs 4 numbers")
                if label not in names:
                    names.append(label)
                parsed.append((box, label, score))
            entries.append((float(key), parsed))
        entries.sort(key=lambda e: e[0])
        self._keys = [k for k, _ in entries]
        self._boxes = [b for _, b in entries]
        self._class_id = {name: i for i, name in enumerate(names)}
        self._map = (lambda n: class_map.get(n, "")) if class_map else (lambda n: n)
        self._score_threshold = score_threshold

    def _current(self) -> list[tuple[list[float], str, float]]:
        if self._by_time:
            now = self._clock()
            if self._start is None:
                self._start = now
            position = now - self._start
        else:
            position = float(self._count)
        self._count += 1
        i = bisect.bisect_right(self._keys, position) - 1
        if i < 0 or (not self._hold and self._keys[i] != position):
            return []
        return self._boxes[i]

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        height, width = frame_bgr.shape[:2]
        scale = np.array([width, height, width, height], np.float32) if self._units == "norm" \
            else np.ones(4, np.float32)
        rows = [(box, self._map(label), score, self._class_id[label])
                for box, label, score in self._current()
                if self._map(label) and score >= self._score_threshold]
        if not rows:
            return Detections.empty()
        return Detections(np.array([r[0] for r in rows], np.float32) * scale,
                          np.array([r[2] for r in rows], np.float32),
                          np.array([r[3] for r in rows], np.int64), [r[1] for r in rows])
