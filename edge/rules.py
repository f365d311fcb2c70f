"""Zone rules: turn per-frame detections into the start and end of violations.

Dwell is measured per *stationary site* (a place in the zone where an object of the zone's
classes keeps being detected), not per tracker id. At the 1-2 fps the edge samples, trackers
lose ids across occlusions, while a parked e-bike simply keeps producing boxes at the same
spot; a rider moves a box-width or more between samples, so consecutive boxes never overlap
enough to build up dwell. Only stream timestamps are used, never the wall clock, so a replay
at any speed gives the same alerts as the live camera did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

import numpy as np
from shapely import contains_xy, prepare
from shapely.geometry import Polygon

from edge.capture import Frame
from edge.config import CameraConfig, ZoneConfig
from edge.detect.base import Detections

#: Overlap a box needs with a site to count as the same object standing still. Measured on the
#: Beijing intersection clip at 2 fps: at 0.3 a dense stream of riders passing one spot chains
#: into a "site" and alerts; at 0.5 it does not, while the pavement motorbike of the Vietnamese
#: clip (box jitter IoU 0.6-0.7) still matches.
MATCH_IOU = 0.5
#: Share of sampled frames since a site appeared in which it must be seen before it alerts;
#: tolerates detector flicker on small, partly hidden objects.
MIN_HIT_RATIO = 0.6
#: A site that never alerted survives at least this long unseen, so a passer-by blocking the
#: view for a moment does not restart the dwell clock.
MIN_FORGET_S = 3.0


@dataclass
class Site:
    """Where an object has stood; ``bbox`` is the best-scoring box seen there (pixels)."""

    label: str
    bbox: np.ndarray
    last_bbox: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    first_wall: datetime
    last_wall: datetime
    first_frame: int
    hits: int = 1
    alert_id: uuid.UUID | None = None
    seq: int = 0


@dataclass(frozen=True)
class RuleEvent:
    """A message-worthy change: ``new`` once a site has dwelt, ``end`` once it has cleared.
    ``site`` is a copy taken at that moment; ``frame`` is the picture to attach as evidence."""

    kind: Literal["new", "end"]
    camera_id: str
    zone: ZoneConfig
    site: Site
    frame: Frame


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class ZoneRule:
    """One zone's sites and frame count; ``update`` is called once per analysed frame."""

    camera_id: str
    zone: ZoneConfig
    sites: list[Site] = field(default_factory=list)
    frames: int = 0

    def __post_init__(self) -> None:
        self._polygon = Polygon(self.zone.polygon)
        prepare(self._polygon)

    def _candidates(self, frame: Frame, dets: Detections) -> list[int]:
        """Detections this zone cares about. The bottom-centre point stands for where an object
        touches the ground, so a bike whose top pokes over the kerb line is not "on" it."""
        if not len(dets):
            return []
        height, width = frame.image.shape[:2]
        x = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2 / width
        y = dets.xyxy[:, 3] / height
        inside = contains_xy(self._polygon, x, y)
        wanted = set(self.zone.classes)
        return [i for i in range(len(dets)) if inside[i] and dets.labels[i] in wanted
                and dets.scores[i] >= self.zone.min_score]

    def update(self, frame: Frame, dets: Detections) -> list[RuleEvent]:
        self.frames += 1
        idx = self._candidates(frame, dets)
        boxes = dets.xyxy[idx] if idx else np.zeros((0, 4), np.float32)
        ious = iou_matrix(boxes, np.array([s.bbox for s in self.sites], np.float32).reshape(-1, 4))
        events: list[RuleEvent] = []
        matched_sites: set[int] = set()
        matched_dets: set[int] = set()
        for d, s in sorted(zip(*np.nonzero(ious >= MATCH_IOU)), key=lambda p: -ious[p]):
            if d in matched_dets or s in matched_sites:
                continue
            matched_dets.add(d)
            matched_sites.add(s)
            events += self._seen(self.sites[s], frame, dets, idx[d])
        for d in sorted(set(range(len(idx))) - matched_dets, key=lambda d: -dets.scores[idx[d]]):
            # An unmatched box overlapping a site (even one made from this frame) is a second
            # box on an object already counted, not a new object.
            sites = np.array([s.bbox for s in self.sites], np.float32).reshape(-1, 4)
            if not (iou_matrix(boxes[d : d + 1], sites) >= MATCH_IOU).any():
                self.sites.append(self._new_site(frame, dets, idx[d]))
        events += self._expire(frame)
        return events

    def _new_site(self, frame: Frame, dets: Detections, i: int) -> Site:
        box = dets.xyxy[i].copy()
        return Site(label=dets.labels[i], bbox=box, last_bbox=box, score=float(dets.scores[i]),
                    first_seen=frame.ts, last_seen=frame.ts, first_wall=frame.wall,
                    last_wall=frame.wall, first_frame=self.frames)

    def _seen(self, site: Site, frame: Frame, dets: Detections, i: int) -> list[RuleEvent]:
        site.hits += 1
        site.last_seen, site.last_wall = frame.ts, frame.wall
        site.last_bbox = dets.xyxy[i].copy()
        if dets.scores[i] > site.score:  # the reference box follows the clearest view
            site.score, site.bbox = float(dets.scores[i]), site.last_bbox
            site.label = dets.labels[i]
        if site.alert_id is not None:
            return []
        dwelt = site.last_seen - site.first_seen >= self.zone.dwell_s
        steady = site.hits / (self.frames - site.first_frame + 1) >= MIN_HIT_RATIO
        if not (dwelt and steady):
            return []
        site.alert_id = uuid.uuid4()
        return [RuleEvent("new", self.camera_id, self.zone, replace(site), frame)]

    def _expire(self, frame: Frame) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        keep: list[Site] = []
        for site in self.sites:
            unseen = frame.ts - site.last_seen
            if site.alert_id is not None and unseen >= self.zone.clear_s:
                site.seq += 1
                events.append(RuleEvent("end", self.camera_id, self.zone, replace(site), frame))
            elif site.alert_id is None and unseen > max(self.zone.clear_s, MIN_FORGET_S):
                continue
            else:
                keep.append(site)
        self.sites = keep
        return events


class CameraRules:
    """All zones of one camera; the runner keeps one per camera."""

    def __init__(self, camera: CameraConfig) -> None:
        self.zones = [ZoneRule(camera.id, zone) for zone in camera.zones]

    def update(self, frame: Frame, dets: Detections) -> list[RuleEvent]:
        return [event for zone in self.zones for event in zone.update(frame, dets)]
