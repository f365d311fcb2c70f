"""Evidence pictures: what an inspector sees on the ticket, so it must show why it fired.

Two JPEGs per message: the whole frame with the zone and every qualifying object's box drawn
(``jpeg``, carried by the protocol's ``snapshot_jpeg``), and a close-up crop of the violation's
box with some context around it (``crop_jpeg``; written by the folder recorder; the protocol
does not carry it yet, see docs/edge.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.rules import RuleEvent

MAX_SIDE = 960
JPEG_QUALITY = 80
ZONE_COLOUR = (0, 200, 255)  # BGR amber
BOX_COLOUR = {"new": (0, 0, 255), "update": (0, 0, 255), "end": (0, 200, 0)}
#: The crop adds this share of the box's size on every side, and is at least CROP_MIN_SIDE px.
CROP_MARGIN = 0.25
CROP_MIN_SIDE = 96
CROP_MAX_SIDE = 480


@dataclass(frozen=True)
class Evidence:
    event: RuleEvent
    jpeg: bytes
    crop_jpeg: bytes | None = None


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
