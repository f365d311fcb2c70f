"""Evidence pictures: what an inspector sees on the ticket, so it must show why it fired."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.rules import RuleEvent

MAX_SIDE = 960
JPEG_QUALITY = 80
ZONE_COLOUR = (0, 200, 255)  # BGR amber
BOX_COLOUR = {"new": (0, 0, 255), "end": (0, 200, 0)}  # red while it stands, green once cleared


@dataclass(frozen=True)
class Evidence:
    event: RuleEvent
    jpeg: bytes


def snapshot(event: RuleEvent) -> Evidence:
    """A JPEG of the event's frame with the zone and the site's box drawn on it.

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
    x1, y1, x2, y2 = (event.site.last_bbox * scale).round().astype(int)
    colour = BOX_COLOUR[event.kind]
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
    caption = f"{event.zone.event_type} {event.site.label} {event.site.score:.2f}"
    (text_w, text_h), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    origin = (max(0, min(x1, w - text_w)), max(y1 - 5, text_h + 2))
    cv2.putText(image, caption, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"camera={event.camera_id} JPEG encoding failed")
    return Evidence(event, buf.tobytes())
