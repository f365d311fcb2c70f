"""Evidence pictures: what an inspector sees on the ticket, so it must show why it fired.

Two JPEGs per message: the whole frame with the zone and every qualifying object's box drawn
(``jpeg``, carried by the protocol's ``snapshot_jpeg``), and a close-up crop of the violation's
box with some context around it (``crop_jpeg``; written by the folder recorder; the protocol
does not carry it yet, see docs/edge.md). A ``new`` message also keeps the clean frame
(``frame``, the protocol's ``Alert.frame``): undrawn, heads and plates blurred by default, with
the frame's detections as pre-labels, for the training-set export (docs/models.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import EvidenceConfig
from edge.detect import Detections
from edge.rules import RuleEvent, iou_matrix
from wire.protocol import MAX_FRAME_BOXES, MAX_SNAPSHOT_BYTES, AlertFrame, FrameBox

log = logging.getLogger(__name__)

MAX_SIDE = 960
JPEG_QUALITY = 80
ZONE_COLOUR = (0, 200, 255)  # BGR amber
BOX_COLOUR = {"new": (0, 0, 255), "update": (0, 0, 255), "end": (0, 200, 0)}
#: The crop adds this share of the box's size on every side, and is at least CROP_MIN_SIDE px.
CROP_MARGIN = 0.25
CROP_MIN_SIDE = 96
CROP_MAX_SIDE = 480
#: Privacy blur: the top share of a person's box taken as the head (a standing person's head
#: is about 1/7 of the height, a seated or bent one's much more: a third covers both), and
#: the bottom share of a car's box taken as the plate band.
HEAD_SHARE = 1 / 3
PLATE_SHARE = 0.4
#: A blurred region is pixelated into blocks of about this share of its shorter side, then
#: smoothed: the detail is gone (not merely softened, which deconvolution can undo).
BLUR_BLOCK_SHARE = 1 / 4
#: A detection is one of the violation's boxes when they overlap this much.
VIOLATION_IOU = 0.5
#: Lower JPEG qualities tried, in turn, when a kept frame does not fit beside the snapshot.
FALLBACK_QUALITIES = (75, 60)


@dataclass(frozen=True)
class Evidence:
    event: RuleEvent
    jpeg: bytes
    crop_jpeg: bytes | None = None
    frame: AlertFrame | None = None


def _encode(image: np.ndarray, camera_id: str) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"camera={camera_id} JPEG encoding failed")
    return buf.tobytes()


def crop(event: RuleEvent) -> bytes | None:
    """A close-up of the violation's box (full resolution, margin added), or None if empty."""
    image = event.frame.image
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in event.violation.bbox)
    mx = max((x2 - x1) * CROP_MARGIN, (CROP_MIN_SIDE - (x2 - x1)) / 2, 0)
    my = max((y2 - y1) * CROP_MARGIN, (CROP_MIN_SIDE - (y2 - y1)) / 2, 0)
    cx1, cy1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    cx2, cy2 = min(width, int(np.ceil(x2 + mx))), min(height, int(np.ceil(y2 + my)))
    if cx2 <= cx1 or cy2 <= cy1:
        return None
    part = image[cy1:cy2, cx1:cx2]
    scale = min(1.0, CROP_MAX_SIDE / max(part.shape[:2]))
    if scale < 1.0:
        part = cv2.resize(part, (round(part.shape[1] * scale), round(part.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    return _encode(part, event.camera_id)


def thumbnail(image: np.ndarray, max_side: int = 640, quality: int = 75) -> bytes:
    """A JPEG of the whole frame with its longest side at most ``max_side`` pixels (the
    camera frame engineers draw zones on)."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return buf.tobytes()


def privacy_regions(detections: Detections, width: int, height: int
                    ) -> list[tuple[int, int, int, int]]:
    """Pixel regions (x1, y1, x2, y2) that may identify someone: people's heads and cars'
    plate bands. Only what the detector found is covered; an undetected person is not."""
    regions: list[tuple[int, int, int, int]] = []
    for (x1, y1, x2, y2), label in zip(detections.xyxy.tolist(), detections.labels, strict=True):
        if label == "person":
            top, bottom = y1, y1 + (y2 - y1) * HEAD_SHARE
        elif label == "car":
            top, bottom = y2 - (y2 - y1) * PLATE_SHARE, y2
        else:
            continue
        box = (max(0, int(x1)), max(0, int(top)), min(width, int(np.ceil(x2))),
               min(height, int(np.ceil(bottom))))
        if box[2] > box[0] and box[3] > box[1]:
            regions.append(box)
    return regions


def blur_regions(image: np.ndarray, regions: Sequence[tuple[int, ...]]) -> np.ndarray:
    """A copy of ``image`` with each region pixelated and smoothed; pixels outside are kept."""
    out = image.copy()
    for x1, y1, x2, y2 in regions:
        part = out[y1:y2, x1:x2]
        h, w = part.shape[:2]
        block = max(2, round(min(h, w) * BLUR_BLOCK_SHARE))
        small = cv2.resize(part, (max(1, w // block), max(1, h // block)),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        k = block | 1
        out[y1:y2, x1:x2] = cv2.GaussianBlur(coarse, (k, k), 0)
    return out


def _frame_boxes(event: RuleEvent, detections: Detections, width: int,
                 height: int) -> list[FrameBox]:
    """The frame's detections as pre-labels, the violation's boxes marked; a blamed box the
    detector did not report in this frame is added, so the export always knows it."""
    v = event.violation
    blamed = np.array(v.boxes or [v.bbox], np.float32).reshape(-1, 4)
    overlap = iou_matrix(detections.xyxy, blamed)
    size = np.array([width, height, width, height], np.float32)
    boxes = []
    for i, label in enumerate(detections.labels):
        norm = np.clip(detections.xyxy[i] / size, 0.0, 1.0)
        boxes.append(FrameBox(label=label, score=round(float(detections.scores[i]), 4),
                              bbox=tuple(norm.tolist()),
                              violation=bool(overlap.shape[1] and overlap[i].max()
                                             >= VIOLATION_IOU)))
    for j, box in enumerate(blamed):
        if not (len(detections) and overlap[:, j].max() >= VIOLATION_IOU):
            norm = np.clip(box / size, 0.0, 1.0)
            boxes.append(FrameBox(label=v.label, score=round(min(max(v.score, 0.0), 1.0), 4),
                                  bbox=tuple(norm.tolist()), violation=True))
    kept = [b for b in boxes if b.bbox[2] > b.bbox[0] and b.bbox[3] > b.bbox[1]]
    kept.sort(key=lambda b: (not b.violation, -b.score))
    return kept[:MAX_FRAME_BOXES]


def keep_frame(event: RuleEvent, detections: Detections, settings: EvidenceConfig,
               budget: int = MAX_SNAPSHOT_BYTES) -> AlertFrame | None:
    """The clean frame of ``event`` for the training set, or None when even the lowest
    quality does not fit in ``budget`` bytes (the alert goes without it; logged)."""
    image = event.frame.image
    height, width = image.shape[:2]
    if settings.blur:
        image = blur_regions(image, privacy_regions(detections, width, height))
    scale = min(1.0, settings.frame_max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA)
    boxes = _frame_boxes(event, detections, width, height)
    for quality in (settings.frame_quality, *FALLBACK_QUALITIES):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= budget:
            return AlertFrame(jpeg=buf.tobytes(), width=image.shape[1], height=image.shape[0],
                              blurred=settings.blur, boxes=boxes)
    log.warning("camera=%s alert_id=%s full frame left out: larger than %d bytes",
                event.camera_id, event.violation.alert_id, budget)
    return None


def snapshot(event: RuleEvent) -> Evidence:
    """A JPEG of the event's frame with the zone and the violation's boxes drawn on it, and a
    crop of the violation.

    Downscaled to at most 960 px on the longest side: enough to recognise a bike on a phone,
    and it keeps the alert far below the protocol's 2 MB snapshot limit.
    """
    image = event.frame.image
    height, width = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA)
    else:
        image = image.copy()
    h, w = image.shape[:2]
    polygon = np.array([[x * w, y * h] for x, y in event.zone.polygon], np.int32)
    cv2.polylines(image, [polygon], isClosed=True, color=ZONE_COLOUR, thickness=2)
    colour = BOX_COLOUR[event.kind]
    v = event.violation
    for box in v.boxes or [v.bbox]:
        bx1, by1, bx2, by2 = (np.asarray(box) * scale).round().astype(int)
        cv2.rectangle(image, (bx1, by1), (bx2, by2), colour, 2)
    x1, y1, _, _ = (v.bbox * scale).round().astype(int)
    caption = f"{event.event_type} {event.kind} {v.label} x{v.count} {v.score:.2f}"
    (text_w, text_h), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    origin = (max(0, min(x1, w - text_w)), max(y1 - 5, text_h + 2))
    cv2.putText(image, caption, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return Evidence(event, _encode(image, event.camera_id), crop(event))
