"""Detector recall on labelled stills with zone crops off vs. on, at the same threshold.

    .venv/bin/python -m bench small_objects

The labelled stills in ../shared/media: the VisDrone street views (455x256, many small parked
motorbikes/e-bikes and bicycles, YOLO labels 2 bicycle / 9 motor) and the indoor e-bike CCTV
set (large e-bikes, YOLO labels 0 ebike), as a check that crops do not lose big objects. Each
still is one camera with one zone covering the whole frame (no zone drawn around the labels:
that would be tuning to them), analysed by the edge's own path (``InlineDetector`` +
``edge.detect.crops.submit_frame``). Our ``two_wheeler`` detections are matched greedily, best
score first, to labelled two-wheelers at IoU >= 0.5; recall = matched labels / labels,
precision = matched detections / detections. Labelled boxes are split by height in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import CropConfig
from edge.detect import load_detector
from edge.detect.crops import submit_frame, windows
from edge.detect.pool import InlineDetector
from wire.paths import shared_file
from wire.zones import ZoneConfig

#: label folder -> YOLO class ids that are two-wheelers.
SETS = {"media/visdrone_cn_street": {2, 9}, "media/ebike_indoor_cctv_voc": {0}}
THRESHOLDS = (0.35, 0.2)
VARIANTS: list[tuple[str, CropConfig]] = [
    ("off", CropConfig(mode="off")),
    ("zones", CropConfig(mode="zones")),
    ("tiles (model side)", CropConfig(mode="tiles")),
    ("tiles 160 px", CropConfig(mode="tiles", tile_px=160)),
]
WHOLE_FRAME = ZoneConfig(id="all", polygon=[(0, 0), (1, 0), (1, 1), (0, 1)],
                         rules=[{"type": "illegal_parking"}])
SMALL_PX = 24
MATCH_IOU = 0.5


@dataclass
class Tally:
    labels: int = 0
    small: int = 0
    found: int = 0
    found_small: int = 0
    detections: int = 0
    correct: int = 0
    passes: int = 0

    def row(self) -> str:
        recall = self.found / max(self.labels, 1)
        small = self.found_small / max(self.small, 1)
        precision = self.correct / max(self.detections, 1)
        return (f"{recall:>7.3f} ({self.found}/{self.labels}) {small:>7.3f} "
                f"({self.found_small}/{self.small}) {precision:>9.3f} "
                f"({self.correct}/{self.detections}) {self.passes:>7}")


def _stills(folder: str, classes: set[int]) -> list[tuple[Path, np.ndarray]]:
    """(image, labelled two-wheeler boxes x1 y1 x2 y2 in pixels) per still."""
    import cv2

    out = []
    for label in sorted(shared_file(folder).glob("*.txt")):
        if label.name == "classes.txt" or label.stem.endswith("_visdrone"):
            continue
        image = next((p for p in (label.with_suffix(".jpg"), label.with_suffix(".png"))
                      if p.exists()), None)
        if image is None:
            continue
        height, width = cv2.imread(str(image)).shape[:2]
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        boxes = [[(float(cx) - float(w) / 2) * width, (float(cy) - float(h) / 2) * height,
                  (float(cx) + float(w) / 2) * width, (float(cy) + float(h) / 2) * height]
                 for c, cx, cy, w, h in rows if int(c) in classes]
        out.append((image, np.array(boxes, np.float32).reshape(-1, 4)))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def _score(tally: Tally, truth: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> None:
    small = (truth[:, 3] - truth[:, 1]) < SMALL_PX
    tally.labels += len(truth)
    tally.small += int(small.sum())
    tally.detections += len(boxes)
    taken = np.zeros(len(truth), bool)
    for i in np.argsort(-scores):
        if not len(truth):
            break
        iou = np.where(taken, 0.0, _iou(boxes[i], truth))
        best = int(np.argmax(iou))
        if iou[best] >= MATCH_IOU:
            taken[best] = True
            tally.correct += 1
    tally.found += int(taken.sum())
    tally.found_small += int((taken & small).sum())


def main() -> None:
    import cv2

    print(f"two_wheeler recall / recall of labels < {SMALL_PX} px tall / precision at IoU >= "
          f"{MATCH_IOU}; detector passes per set; NanoDet-m 416; one whole-frame zone")
    for threshold in THRESHOLDS:
        detector = InlineDetector(load_detector("nanodet-m-416-coco", threads=2,
                                                score_threshold=threshold))
        for folder, classes in SETS.items():
            stills = _stills(folder, classes)
            print(f"\n{folder} ({len(stills)} stills), detector score_threshold {threshold}")
            print(f"{'crops':<20} {'recall':>16} {'small':>15} {'precision':>17} {'passes':>7}")
            for name, crops in VARIANTS:
                tally = Tally()
                for image_path, truth in stills:
                    image = cv2.imread(str(image_path))
                    size = (image.shape[1], image.shape[0])
                    rects = windows(crops, [WHOLE_FRAME], size, detector.input_side)
                    found = submit_frame(detector, image, rects,
                                         full_frame=crops.full_frame).result()
                    keep = np.array([label == "two_wheeler" for label in found.labels], bool)
                    _score(tally, truth, found.xyxy[keep], found.scores[keep])
                    tally.passes += len(rects) + (1 if crops.full_frame or not rects else 0)
                print(f"{name:<20} {tally.row()}", flush=True)


if __name__ == "__main__":
    main()
