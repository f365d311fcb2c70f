"""Zone crops (a camera's ``crops:``): windows cover the zones at model scale, boxes come back in
frame pixels, and a tiny object the detector cannot see in the whole frame is found in a crop.

The detector here is a deterministic stub that really looks at the pixels: it shrinks its
input to ``input_side`` like a model and reports bright blobs at least ``MIN_PX`` tall at that
scale, so what it finds depends on the scale it is shown, as a real model's recall does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge.config import CameraConfig, CropConfig, DetectorConfig
from edge.detect import Detections, Detector
from edge.detect.crops import Rect, merge, submit_frame, windows, zone_regions
from edge.detect.pool import DetectorPool, InlineDetector
from wire.zones import ZoneConfig

FRAME = (1920, 1080)
MIN_PX = 6


class BlobDetector(Detector):
    """White blobs on black, seen at ``input_side`` pixels: ones under ``MIN_PX`` are lost."""

    input_side = 64

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        import cv2

        height, width = frame_bgr.shape[:2]
        small = cv2.resize(frame_bgr[:, :, 0], (self.input_side, self.input_side),
                           interpolation=cv2.INTER_AREA)
        count, _, stats, _ = cv2.connectedComponentsWithStats((small > 127).astype(np.uint8))
        sx, sy = width / self.input_side, height / self.input_side
        boxes = [[x * sx, y * sy, (x + w) * sx, (y + h) * sy]
                 for x, y, w, h, _ in stats[1:count] if min(w, h) >= MIN_PX]
        n = len(boxes)
        return Detections(np.array(boxes, np.float32).reshape(n, 4),
                          np.full(n, 0.9, np.float32), np.zeros(n, np.int64),
                          ["two_wheeler"] * n)


def blob_factory(_config: DetectorConfig) -> Detector:
    return BlobDetector()


def _zone(polygon: list[tuple[float, float]], ident: str = "far") -> ZoneConfig:
    return ZoneConfig(id=ident, polygon=polygon, rules=[{"type": "illegal_parking"}])


def _camera(mode: str, zones: list[ZoneConfig], **crops: Any) -> CameraConfig:
    return CameraConfig(id="cam", source="x.mp4", zones=zones, crops={"mode": mode, **crops})


def _frame(*squares: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    for x1, y1, x2, y2 in squares:
        image[y1:y2, x1:x2] = 255
    return image


def _covers(rects: list[Rect], x: float, y: float) -> bool:
    return any(r[0] <= x <= r[2] and r[1] <= y <= r[3] for r in rects)


FAR = _zone([(0.70, 0.55), (0.85, 0.55), (0.88, 0.65), (0.68, 0.65)])
PAVEMENT = _zone([(0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)], "pavement")


@pytest.mark.parametrize(("mode", "extra"), [("zones", {}), ("tiles", {}),
                                             ("tiles", {"tile_px": 300})])
def test_windows_cover_every_zone_at_model_scale(mode: str, extra: dict[str, Any]) -> None:
    camera = _camera(mode, [FAR, PAVEMENT], **extra)
    rects = windows(camera.crops, camera.zones, FRAME, 416)
    assert rects
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 <= FRAME[0] and 0 <= y1 < y2 <= FRAME[1]
        assert x2 - x1 == y2 - y1  # square: the model's aspect, no squashing
        side = x2 - x1
        if mode == "tiles":
            assert side == extra.get("tile_px", 416)
        else:  # at least native pixels, never coarser than the whole frame's 1080 -> 416
            assert 416 <= side < FRAME[1]
    for zone in camera.zones:
        for x, y in zone.polygon:
            assert _covers(rects, x * FRAME[0], y * FRAME[1]), (zone.id, x, y)
    for rx1, ry1, rx2, ry2 in zone_regions(camera.zones, FRAME):  # every pixel, not corners
        for x in np.linspace(rx1, rx2, 25):
            for y in np.linspace(ry1, ry2, 25):
                assert _covers(rects, x, y)


def test_crops_off_or_no_zones_is_the_whole_frame_only() -> None:
    assert windows(CropConfig(), [FAR], FRAME, 416) == []
    assert windows(CropConfig(mode="tiles"), [], FRAME, 416) == []
    detector = InlineDetector(BlobDetector())
    image = _frame((0, 0, 600, 600))
    assert submit_frame(detector, image, []).result().xyxy.tolist() == \
        detector.submit(image).result().xyxy.tolist()


def test_window_boxes_map_back_to_frame_pixels_class_aware() -> None:
    def det(boxes: list[list[float]], labels: list[str], score: float) -> Detections:
        return Detections(np.array(boxes, np.float32), np.full(len(boxes), score, np.float32),
                          np.zeros(len(boxes), np.int64), labels)

    whole = det([[1000, 500, 1100, 600]], ["two_wheeler"], 0.5)
    window = (900, 400, 1316, 816)
    # the same bike seen tighter in the window, and a person on it (another class: kept)
    inside = det([[101, 101, 199, 199], [100, 60, 200, 200]], ["two_wheeler", "person"], 0.8)
    merged = merge([(None, whole), (window, inside)], FRAME)
    got = sorted(zip(merged.labels, merged.xyxy.tolist(), merged.scores.tolist(), strict=True))
    assert got == [("person", [1000.0, 460.0, 1100.0, 600.0], pytest.approx(0.8)),
                   ("two_wheeler", [1001.0, 501.0, 1099.0, 599.0], pytest.approx(0.8))]


def test_two_bikes_side_by_side_in_one_pass_stay_two() -> None:
    boxes = np.array([[0, 0, 40, 40], [10, 0, 50, 40]], np.float32)  # IOS 0.75
    pair = Detections(boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64),
                      ["two_wheeler"] * 2)
    assert len(merge([((100, 100, 500, 500), pair)], FRAME)) == 2


@pytest.mark.parametrize("mode", ["zones", "tiles"])
def test_tiny_object_invisible_in_the_whole_frame_is_found_with_crops(mode: str) -> None:
    bike = (1440, 640, 1464, 664)   # 24 px: ~0.8 px at the stub's 64 px input over 1920
    truck = (100, 100, 700, 700)    # big: found in the whole frame
    image = _frame(bike, truck)
    detector = InlineDetector(BlobDetector())
    assert detector.submit(image).result().xyxy.tolist() == [[pytest.approx(v, abs=35)
                                                              for v in truck]]
    camera = _camera(mode, [FAR], tile_px=128)
    rects = windows(camera.crops, camera.zones, FRAME, detector.input_side)
    found = submit_frame(detector, image, rects).result()
    got = sorted(found.xyxy.tolist())
    assert len(got) == 2
    assert got[0] == [pytest.approx(v, abs=35) for v in truck]
    assert got[1] == [pytest.approx(v, abs=4) for v in bike]


def test_object_cut_by_a_tile_border_comes_back_whole_through_the_pool() -> None:
    """Tiles without the whole frame, in detector worker processes: a blob spanning two tiles
    is cut in each; the merge restores one box of its full size in frame pixels."""
    camera = _camera("tiles", [FAR], tile_px=128, overlap=0.1, full_frame=False)
    rects = windows(camera.crops, camera.zones, FRAME, BlobDetector.input_side)
    xs = sorted({r[0] for r in rects})
    border = xs[0] + 128  # right border of the first column of tiles
    bike = (border - 30, 620, border + 30, 660)
    with DetectorPool(DetectorConfig(model="fake"), 2, factory=blob_factory) as pool:
        found = submit_frame(pool, _frame(bike), rects, full_frame=False).result()
    assert len(found) == 1
    assert found.xyxy[0].tolist() == [pytest.approx(v, abs=4) for v in bike]
