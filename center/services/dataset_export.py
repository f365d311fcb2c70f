"""``gridwatch dataset export``: operators' verdicts and the kept full frames become a training
set, as a YOLO dataset (ultralytics trains on it: models/scripts/train.py) and COCO JSON (CVAT
and Label Studio import it, to review the pre-labels).

Each exported image is the clean frame an edge kept with a ``new`` alert (``alert_frames``);
its labels are the detector's boxes on that frame (pre-labels: unreviewed, except the one the
verdict speaks about). What a verdict does to them (docs/models.md, "Which false alarms are
hard negatives"):

- ``confirmed``: every box is kept; the blamed one is now a reviewed positive.
- ``false_alarm`` / ``wrong_class`` (the detector saw something that is not there): the image
  is a hard negative. The blamed boxes are left out and the frame's other boxes kept, so the
  model learns that this thing is background without being taught that the real people and
  bikes elsewhere in the frame are background too (an empty label file would teach that).
- ``false_alarm`` for a rule's reason (``not_parked``, ``rider``, ``person_not_goods``,
  ``outside_zone``): the objects were real, the rule misjudged them; the boxes are right, so
  they are kept (the fix lies in rules and zones, not in the detector).
- ``false_alarm`` / ``other``: it cannot be told whether the box was wrong; left out.

Frames without a verdict are left out unless asked for (``--unjudged``: pre-labels only, for
review in CVAT before training).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from center.store import kept_frames
from center.store.kept_frames import KeptFrame

#: Our classes in YOLO class-id order (models/registry.yaml); a model trained on the export
#: outputs them directly (``class_map`` identity).
CLASSES = ("two_wheeler", "person", "vending_cue", "car")
#: False-alarm reasons that mean the detector was right and the rule wrong (boxes kept).
RULE_REASONS = frozenset({"not_parked", "rider", "person_not_goods", "outside_zone"})
#: The false-alarm reason that makes a hard negative (blamed boxes left out).
DETECTOR_REASON = "wrong_class"

class NothingToExport(Exception):
    pass


@dataclass(frozen=True)
class Exported:
    """What an export wrote, for the command's summary."""

    images: Counter[str]
    boxes: int
    skipped: Counter[str]
    data_yaml: Path
    coco_json: Path


def role(frame: KeptFrame) -> str | None:
    """How a frame enters the set: ``positive``, ``hard_negative``, ``rule_error``,
    ``unjudged``, or None (left out)."""
    if frame.verdict == "confirmed":
        return "positive"
    if frame.verdict == "false_alarm":
        if frame.reason == DETECTOR_REASON:
            return "hard_negative"
        return "rule_error" if frame.reason in RULE_REASONS else None
    return "unjudged"


def labels(frame: KeptFrame) -> list[dict[str, Any]]:
    """The boxes that become labels: our classes only, without the blamed boxes of a hard
    negative."""
    drop_blamed = role(frame) == "hard_negative"
    return [b for b in frame.boxes
            if b["label"] in CLASSES and not (drop_blamed and b.get("violation"))]


def split(alert_id: UUID, val_share: float) -> str:
    """``val`` or ``train``, stable for an alert across exports (a hash, not a random draw), so
    a frame once used for validation never leaks into a later training set."""
    bucket = int.from_bytes(hashlib.sha256(alert_id.bytes).digest()[:4], "big") / 2**32
    return "val" if bucket < val_share else "train"


def load_frames(dsn: str, *, unjudged: bool = False,
                since: datetime | None = None) -> list[KeptFrame]:
    """The kept frames an export starts from (``center.store.kept_frames``)."""
    return kept_frames.load(dsn, unjudged=unjudged, since=since)


def _yolo_line(box: dict[str, Any]) -> str:
    x1, y1, x2, y2 = box["bbox"]
    return (f"{CLASSES.index(box['label'])} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
            f"{x2 - x1:.6f} {y2 - y1:.6f}")


def _coco_annotation(ann_id: int, image_id: int, frame: KeptFrame,
                     box: dict[str, Any]) -> dict[str, Any]:
    x1, y1, x2, y2 = box["bbox"]
    w, h = (x2 - x1) * frame.width, (y2 - y1) * frame.height
    return {"id": ann_id, "image_id": image_id,
            "category_id": CLASSES.index(box["label"]) + 1,
            "bbox": [round(x1 * frame.width, 2), round(y1 * frame.height, 2), round(w, 2),
                     round(h, 2)],
            "area": round(w * h, 2), "iscrowd": 0, "score": box["score"],
            "attributes": {"pre_label": not _reviewed(frame, box),
                           "violation": bool(box.get("violation"))}}


def _reviewed(frame: KeptFrame, box: dict[str, Any]) -> bool:
    """A blamed box that an operator judged to be the real object; every other box is the
    detector's unreviewed pre-label."""
    return bool(box.get("violation")) and role(frame) in ("positive", "rule_error")


def export(frames: list[KeptFrame], out: Path, *, val_share: float = 0.2) -> Exported:
    """Write ``out/images/{train,val}``, ``out/labels/{train,val}``, ``out/data.yaml`` and
    ``out/annotations.json`` (COCO, every image, file names as in ``images/``)."""
    if not any(role(f) for f in frames):
        raise NothingToExport(
            f"no frames to export ({len(frames)} found, none usable): frames are kept with new "
            "alerts; judge some alerts, or pass --unjudged")
    out = Path(out).resolve()
    images: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    coco: dict[str, Any] = {
        "info": {"description": "gridwatch dataset export", "version": "1"},
        "images": [], "annotations": [],
        "categories": [{"id": i + 1, "name": c, "supercategory": "gridwatch"}
                       for i, c in enumerate(CLASSES)]}
    splits: Counter[str] = Counter()
    for frame in frames:
        kind = role(frame)
        if kind is None:
            skipped[f"false_alarm/{frame.reason}"] += 1
            continue
        part = split(frame.alert_id, val_share)
        splits[part] += 1
        name = f"{frame.alert_id}.jpg"
        for sub in ("images", "labels"):
            (out / sub / part).mkdir(parents=True, exist_ok=True)
        (out / "images" / part / name).write_bytes(frame.jpeg)
        kept = labels(frame)
        (out / "labels" / part / f"{frame.alert_id}.txt").write_text(
            "".join(_yolo_line(b) + "\n" for b in kept), encoding="utf-8")
        image_id = len(coco["images"]) + 1
        coco["images"].append({
            "id": image_id, "file_name": f"{part}/{name}", "width": frame.width,
            "height": frame.height, "camera_id": frame.camera_id, "role": kind,
            "verdict": frame.verdict, "reason": frame.reason, "blurred": frame.blurred})
        for box in kept:
            coco["annotations"].append(
                _coco_annotation(len(coco["annotations"]) + 1, image_id, frame, box))
        images[kind] += 1
    # ultralytics needs a validation split; a set too small to have one validates on train.
    val = "images/val" if splits["val"] else "images/train"
    data_yaml = out / "data.yaml"
    data_yaml.parent.mkdir(parents=True, exist_ok=True)
    data_yaml.write_text(yaml.safe_dump({"path": str(out), "train": "images/train", "val": val,
                                         "names": dict(enumerate(CLASSES))}, sort_keys=False),
                         encoding="utf-8")
    coco_json = out / "annotations.json"
    coco_json.write_text(json.dumps(coco, indent=1), encoding="utf-8")
    return Exported(images, len(coco["annotations"]), skipped, data_yaml, coco_json)
