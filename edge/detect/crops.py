"""Zone-aware crops: extra detector passes over each zone at a useful scale, merged into one
frame's detections (a camera's ``crops:`` setting, docs/edge.md "Small and distant objects").

A 1080p frame squeezed into NanoDet's 416 px input shrinks a 40 px e-bike 20 m away to ~15 px,
below what the model finds. Slicing-aided inference (SAHI, Akyon et al. 2022) runs the model on
overlapping windows at (about) native resolution as well as on the whole frame, and merges the
boxes. We do the same, restricted to the camera's zones (the only places rules look):

* **windows** are squares over each zone's bounding region, padded upwards (a zone holds an
  object's ground point, its body rises above the zone), overlapping by ``overlap`` so an
  object cut by one window is whole in the next. ``zones``: windows as big as the region's
  short side, but at least the model's input side (a small zone is seen at native pixels,
  not blown up; each window costs one detector pass); ``tiles``: windows of ``tile_px``
  (default the model's input side: the detector sees native pixels).
* **merging** (:func:`merge`) is class-aware, as SAHI's default (GREEDYNMM, IOS 0.5): boxes
  of one class from *different* passes that overlap by half of the smaller one are one object.
  Two such boxes are merged into their union when one of them touches an inner window border
  (the object was cut there; the union restores it), otherwise the better-scored box stays
  as it is (a duplicate of the same whole object). Boxes from the same pass were already
  separated by the detector's own NMS and are never merged with each other.

Why not the ``sahi`` package: its slicing runs every slice in one process through its own
model wrappers (ultralytics, mmdet, ...; none for our NanoDet ONNX), over the whole image;
here the windows go to the detector pool like frames (``detector.processes`` workers analyse
one frame's windows in parallel) and only the zones are covered. The part we need is the
window geometry and the merge below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge.detect.base import Detections

if TYPE_CHECKING:
    from edge.config import CropConfig
    from wire.zones import ZoneConfig

#: x1, y1, x2, y2 in whole pixels of the frame, end exclusive.
Rect = tuple[int, int, int, int]
#: Zone regions grow upwards by this fraction of their height (objects stand on the zone) and
#: sideways and downwards by ``SIDE_PAD``.
HEAD_PAD = 0.3
SIDE_PAD = 0.05
#: Two boxes of one class from different passes are one object when their intersection covers
#: this much of the smaller one (SAHI's default match: IOS 0.5).
MATCH_IOS = 0.5
#: Window side for a detector that does not say its input size (NanoDet's, the shipped model).
FALLBACK_SIDE = 416
#: A box within this many pixels of an inner window border counts as cut there.
CUT_PX = 2.0


class _Pending(Protocol):
    def done(self) -> bool: ...
    def result(self, timeout: float | None = None) -> Detections: ...


class _Submitter(Protocol):
    def submit(self, image: np.ndarray) -> Any: ...


def zone_regions(zones: Sequence[ZoneConfig], size: tuple[int, int]) -> list[Rect]:
    """Padded bounding rectangles of the zones in pixels of a ``size`` (w, h) frame; regions
    that touch are joined, so overlapping zones are not analysed twice."""
    width, height = size
    rects: list[list[float]] = []
    for zone in zones:
        xs = [x * width for x, _ in zone.polygon]
        ys = [y * height for _, y in zone.polygon]
        w, h = max(xs) - min(xs), max(ys) - min(ys)
        rects.append([max(0.0, min(xs) - SIDE_PAD * w), max(0.0, min(ys) - HEAD_PAD * h),
                      min(width, max(xs) + SIDE_PAD * w), min(height, max(ys) + SIDE_PAD * h)])
    joined = True
    while joined:
        joined = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    rects[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                max(a[3], b[3])]
                    del rects[j]
                    joined = True
                    break
            if joined:
                break
    return [(math.floor(r[0]), math.floor(r[1]), math.ceil(r[2]), math.ceil(r[3]))
            for r in rects if r[2] > r[0] and r[3] > r[1]]


def _starts(lo: int, hi: int, side: int, overlap: float, limit: int) -> list[int]:
    """Window starts along one axis covering lo..hi with windows of ``side`` that overlap by
    at least ``overlap`` of a window, spread evenly, inside 0..limit."""
    length = hi - lo
    if length <= side:
        start = min(max(0, lo - (side - length) // 2), limit - side)  # centred on the region
        return [start]
    count = math.ceil((length - overlap * side) / ((1.0 - overlap) * side))
    count = max(count, 2)
    step = (length - side) / (count - 1)
    return [lo + round(i * step) for i in range(count)]


def windows(config: CropConfig, zones: Sequence[ZoneConfig], size: tuple[int, int],
            model_side: int | None) -> list[Rect]:
    """The windows a frame of ``size`` (w, h) is analysed in besides the whole frame;
    ``model_side`` is the detector's ``input_side`` (None: ``FALLBACK_SIDE``).

    Example:
        >>> from edge.config import CropConfig, ZoneConfig
        >>> zone = ZoneConfig(id="far", polygon=[(0.6, 0.5), (0.8, 0.5), (0.8, 0.6)],
        ...                   rules=[{"type": "illegal_parking"}])
        >>> windows(CropConfig(mode="zones"), [zone], (1920, 1080), 416)
        [(1132, 369, 1556, 793)]
    """
    if config.mode == "off" or not zones:
        return []
    width, height = size
    model_side = model_side or FALLBACK_SIDE
    out: list[Rect] = []
    for x1, y1, x2, y2 in zone_regions(zones, size):
        if config.mode == "zones":
            short, long = sorted((x2 - x1, y2 - y1))
            side = max(short, model_side)
            if long <= side * (1.0 + config.overlap):  # one window, a little coarser, not two
                side = long
        else:
            side = config.tile_px or model_side
        side = min(side, width, height)
        for top in _starts(y1, y2, side, config.overlap, height):
            for left in _starts(x1, x2, side, config.overlap, width):
                out.append((left, top, left + side, top + side))
    return out


def _cut_mask(xyxy: np.ndarray, window: Rect, size: tuple[int, int]) -> np.ndarray:
    """Boxes touching a border of ``window`` that is not the frame's own border."""
    x1, y1, x2, y2 = window
    width, height = size
    cut = np.zeros(len(xyxy), bool)
    for axis, edge, inner in ((0, x1, x1 > 0), (1, y1, y1 > 0)):
        if inner:
            cut |= xyxy[:, axis] <= edge + CUT_PX
    for axis, edge, inner in ((2, x2, x2 < width), (3, y2, y2 < height)):
        if inner:
            cut |= xyxy[:, axis] >= edge - CUT_PX
    return cut


def merge(parts: Sequence[tuple[Rect | None, Detections]], size: tuple[int, int]) -> Detections:
    """One frame's detections from several passes: ``(None, d)`` is the whole frame, ``(rect,
    d)`` a window with ``d`` in the window's pixels. Boxes come back in frame pixels.

    Example:
        >>> a = Detections(np.array([[90, 10, 100, 30]], np.float32), np.array([0.6], np.float32),
        ...                np.array([1]), ["two_wheeler"])   # cut at the window's right border
        >>> b = Detections(np.array([[0, 10, 20, 30]], np.float32), np.array([0.5], np.float32),
        ...                np.array([1]), ["two_wheeler"])   # the rest, seen by the next window
        >>> m = merge([((0, 0, 100, 100), a), ((90, 0, 190, 100), b)], (400, 100))
        >>> m.xyxy.tolist(), m.scores.tolist()
        ([[90.0, 10.0, 110.0, 30.0]], [0.6000000238418579])
    """
    boxes, scores, class_ids, labels, source, cut = [], [], [], [], [], []
    for index, (rect, det) in enumerate(parts):
        if not len(det):
            continue
        xyxy = det.xyxy.copy()
        if rect is not None:
            xyxy += np.array([rect[0], rect[1], rect[0], rect[1]], np.float32)
            cut.append(_cut_mask(xyxy, rect, size))
        else:
            cut.append(np.zeros(len(det), bool))
        boxes.append(xyxy)
        scores.append(det.scores)
        class_ids.append(det.class_ids)
        labels.extend(det.labels)
        source.append(np.full(len(det), index))
    if not boxes:
        return Detections.empty()
    return _greedy_merge(np.concatenate(boxes), np.concatenate(scores),
                         np.concatenate(class_ids), labels, np.concatenate(source),
                         np.concatenate(cut))


def _greedy_merge(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                  labels: list[str], source: np.ndarray, cut: np.ndarray) -> Detections:
    """Best-scored first: each kept box absorbs the boxes of its class from other passes that
    it overlaps by IOS >= MATCH_IOS (growing to their union where one of the pair is cut)."""
    order = list(np.argsort(-scores, kind="stable"))
    used = np.zeros(len(scores), bool)
    keep: list[int] = []
    out = xyxy.copy()
    for i in order:
        if used[i]:
            continue
        used[i] = True
        keep.append(int(i))
        for j in order:
            if used[j] or labels[j] != labels[i] or source[j] == source[i]:
                continue
            if _ios(out[i], xyxy[j]) < MATCH_IOS:
                continue
            used[j] = True
            if cut[i] or cut[j]:
                out[i] = [min(out[i][0], xyxy[j][0]), min(out[i][1], xyxy[j][1]),
                          max(out[i][2], xyxy[j][2]), max(out[i][3], xyxy[j][3])]
    return Detections(out[keep].astype(np.float32), scores[keep].astype(np.float32),
                      class_ids[keep].astype(np.int64), [labels[k] for k in keep])


def _ios(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / max(smaller, 1e-9))


class CroppedJob:
    """One frame analysed whole and in windows; behaves like a single job (``done`` /
    ``result``) so the runner keeps one entry per frame, in order."""

    def __init__(self, parts: list[tuple[Rect | None, _Pending]], size: tuple[int, int]):
        self._parts = parts
        self._size = size

    def done(self) -> bool:
        return all(job.done() for _, job in self._parts)

    def result(self, timeout: float | None = None) -> Detections:
        return merge([(rect, job.result(timeout)) for rect, job in self._parts], self._size)


def submit_frame(detector: _Submitter, image: np.ndarray, rects: Sequence[Rect], *,
                 full_frame: bool = True) -> Any:
    """Send a frame (and its windows, each as its own image) to the detector; with no windows
    this is the plain ``detector.submit``. Windows are views of the frame: the detector (or
    the pool's resize before sending) copies only what it analyses."""
    if not rects:
        return detector.submit(image)
    size = (image.shape[1], image.shape[0])
    parts: list[tuple[Rect | None, _Pending]] = []
    if full_frame:
        parts.append((None, detector.submit(image)))
    for rect in rects:
        x1, y1, x2, y2 = rect
        parts.append((rect, detector.submit(image[y1:y2, x1:x2])))
    return CroppedJob(parts, size)
