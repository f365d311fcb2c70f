"""The detector's own figures on labelled stills: recall and precision per class at an IoU.

This is below the event level on purpose: when a case misses a violation, these say whether
the detector never saw the objects (a model or scale problem, issue #12 section 2) or saw them
and the rules threw them away (thresholds, dwell, motion).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.base import Detections
from edge.eval.labels import BoxLabels
from edge.rules import iou_matrix


@dataclass
class ClassCounts:
    found: int = 0  # labelled boxes matched by a detection of the class
    missed: int = 0  # labelled boxes no detection matched
    false: int = 0  # detections of the class on no labelled box of it

    @property
    def recall(self) -> float | None:
        total = self.found + self.missed
        return self.found / total if total else None

    @property
    def precision(self) -> float | None:
        total = self.found + self.false
        return self.found / total if total else None

    def add(self, other: ClassCounts) -> None:
        self.found += other.found
        self.missed += other.missed
        self.false += other.false

    def summary(self) -> dict[str, Any]:
        return {"labelled": self.found + self.missed, "found": self.found,
                "missed": self.missed, "false": self.false, "recall": self.recall,
                "precision": self.precision}


@dataclass(frozen=True)
class Labelled:
    """Labelled boxes in pixels: ``labels[i]`` is our class, or None for a box of a label the
    set does not map (a detection on it is neither found nor false)."""

    xyxy: np.ndarray
    labels: list[str | None]


def read_boxes(spec: BoxLabels, path: Path, width: int, height: int) -> Labelled:
    """A YOLO txt (normalised centre boxes) or Pascal VOC XML file as pixel boxes."""
    rows: list[tuple[str, list[float]]] = []
    if spec.format == "yolo":
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts:
                continue
            cx, cy, w, h = (float(v) for v in parts[1:5])
            rows.append((parts[0], [(cx - w / 2) * width, (cy - h / 2) * height,
                                    (cx + w / 2) * width, (cy + h / 2) * height]))
    else:
        for obj in ET.parse(path).getroot().iter("object"):
            box = obj.find("bndbox")
            assert box is not None, f"{path}: an object without bndbox"
            rows.append((obj.findtext("name", "").strip(),
                         [float(box.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")]))
    xyxy = np.array([r[1] for r in rows], np.float32).reshape(-1, 4)
    return Labelled(xyxy, [spec.classes.get(r[0]) for r in rows])


def above(dets: Detections, threshold: float) -> Detections:
    """The detections scoring at least ``threshold``: what a detector run at that threshold
    returns (greedy NMS never lets a lower box remove a higher one, so filtering after it
    equals thresholding before it)."""
    keep = np.flatnonzero(dets.scores >= threshold)
    return Detections(dets.xyxy[keep], dets.scores[keep], dets.class_ids[keep],
                      [dets.labels[i] for i in keep])


def score_boxes(truth: Labelled, dets: Detections, iou: float,
                classes: set[str]) -> dict[str, ClassCounts]:
    """Per class of ``classes`` (those the labels cover; a detection of another class says
    nothing about the labels): detections by falling score take the best-overlapping labelled
    box of their class not yet taken (IoU >= ``iou``); one on no such box is false unless it
    lies on a box of an unmapped label."""
    counts = {label: ClassCounts() for label in sorted(classes)}
    ious = iou_matrix(dets.xyxy, truth.xyxy)
    unmapped = np.array([lab is None for lab in truth.labels], bool)
    taken: set[int] = set()
    for d in np.argsort(-dets.scores, kind="stable"):
        label = dets.labels[d]
        if label not in counts:
            continue
        c = counts[label]
        same = [t for t, lab in enumerate(truth.labels) if lab == label and t not in taken]
        best = max(same, key=lambda t: ious[d, t], default=None)
        if best is not None and ious[d, best] >= iou:
            taken.add(best)
            c.found += 1
        elif not (unmapped.any() and (ious[d, unmapped] >= iou).any()):
            c.false += 1
    for t, label in enumerate(truth.labels):
        if label is not None and t not in taken:
            counts[label].missed += 1
    return counts
