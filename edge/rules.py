"""Zone rules: turn per-frame detections into the ``new`` / ``update`` / ``end`` of violations.

State is kept by *place*, not by tracker id. Within each rule of a zone, a *site* is a spot
where an object of the rule's classes keeps being detected (boxes matched by IoU). A site
*qualifies* once it was seen in at least ``inertia`` frames, for its class's dwell time, in at
least 60 % of the frames since it appeared, while never moving (ByteTrack, see ``edge.track``)
(riders pass through: their track moves and their boxes do not overlap from one sample to
the next, so they never build dwell). A rule has at most one open **violation**:

- ``new`` when qualifying sites reach ``min_objects``;
- ``update`` (seq + 1) when it changes materially: more qualifying objects than any earlier
  message of it reported (a second bike parks beside the first; the count only ratchets up,
  so a crowd flickering between 2 and 3 detections cannot spam updates), or the best score
  rose by ``SCORE_JUMP`` over the last message's (a clearer view: better evidence). Objects
  leaving are not reported until the ``end``;
- ``end`` when every qualifying site has been unseen for ``clear_s``.

A parked bike hidden for a moment, dimmed by a passing cloud or given a new tracker id is the
same site, so it cannot alert twice. Only stream timestamps measure dwell and clearing, and
schedules are read on the frame's own time, so a replay gives the same alerts at any speed.
Outside its schedule a rule starts nothing (no sites, no dwell); a violation already open is
carried to its normal end, so the center still gets the ``end`` that verifies the fix.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from shapely import contains_xy, prepare
from shapely.geometry import Polygon

from edge.capture import Frame
from edge.config import WEEKDAYS, CameraConfig, RuleConfig, ScheduleWindow, ZoneConfig
from edge.detect.base import Detections

#: Overlap a box needs with a site to count as the same object standing still. Measured on the
#: Beijing intersection clip at 2 fps: at 0.3 a dense stream of riders passing one spot chains
#: into a "site" and alerts; at 0.5 it does not, while the pavement motorbike of the Vietnamese
#: clip (box jitter IoU 0.6-0.7) still matches.
MATCH_IOU = 0.5
#: Share of sampled frames since a site appeared in which it must be seen before it alerts;
#: tolerates detector flicker on small, partly hidden objects.
MIN_HIT_RATIO = 0.6
#: A site that never qualified survives at least this long unseen, so a passer-by blocking the
#: view for a moment does not restart the dwell clock.
MIN_FORGET_S = 3.0
#: A rise of the best score by this much since the last message is worth an ``update``.
SCORE_JUMP = 0.2


@dataclass
class Site:
    """Where an object has stood; ``bbox`` is the best-scoring box seen there (pixels)."""

    label: str
    bbox: np.ndarray
    last_bbox: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    first_frame: int
    hits: int = 1
    qualified: bool = False


@dataclass
class Violation:
    """The one open violation of a rule; ``bbox`` spans its qualifying sites (pixels);
    ``count`` is the most qualifying objects any of its messages reported."""

    alert_id: uuid.UUID
    seq: int
    label: str
    score: float
    bbox: np.ndarray
    count: int
    first_wall: datetime
    last_wall: datetime
    sent_score: float
    boxes: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class RuleEvent:
    """A message-worthy change. ``violation`` is a copy taken at that moment (``seq`` already
    set for this message); ``frame`` is the picture to attach as evidence."""

    kind: Literal["new", "update", "end"]
    camera_id: str
    zone: ZoneConfig
    rule: RuleConfig
    violation: Violation
    frame: Frame

    @property
    def event_type(self) -> str:
        assert self.rule.event_type is not None
        return self.rule.event_type


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


def schedule_active(windows: list[ScheduleWindow], when: datetime, tz: ZoneInfo) -> bool:
    """Whether ``when`` falls in one of ``windows`` (none = always). An overnight window
    (end before start) listed for Monday covers Monday evening to Tuesday morning."""
    if not windows:
        return True
    local = when.astimezone(tz)
    day = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    minute = local.hour * 60 + local.minute + local.second / 60
    for w in windows:
        start, end = w.minutes()
        if start < end:
            if day in w.days and start <= minute < end:
                return True
        elif start > end:
            if (day in w.days and minute >= start) or (yesterday in w.days and minute < end):
                return True
        elif day in w.days:  # start == end: the whole day
            return True
    return False


class RuleState:
    """Sites and the open violation of one rule of one zone."""

    def __init__(self, camera_id: str, zone: ZoneConfig, rule: RuleConfig, tz: ZoneInfo) -> None:
        self.camera_id, self.zone, self.rule, self.tz = camera_id, zone, rule, tz
        self.sites: list[Site] = []
        self.violation: Violation | None = None
        self.frames = 0
        self._restored: list[np.ndarray] | None = None
        self.clear_s = rule.clear_s or zone.clear_s
        assert rule.classes is not None
        self.dwell = {name: c.dwell_s or rule.dwell_s or zone.dwell_s
                      for name, c in rule.classes.items()}
        self.min_score = {name: (c.min_score if c.min_score is not None else
                                 rule.min_score if rule.min_score is not None else zone.min_score)
                          for name, c in rule.classes.items()}
        self.area = {name: (c.min_area, c.max_area) for name, c in rule.classes.items()}

    @property
    def key(self) -> str:
        """Stable name for persisting this rule's open violation."""
        return f"{self.camera_id}/{self.zone.id}/{self.rule.id}"

    def candidates(self, dets: Detections, inside: np.ndarray, still: np.ndarray,
                   frame_area: float) -> list[int]:
        out = []
        for i, label in enumerate(dets.labels):
            if not inside[i] or not still[i] or label not in self.dwell:
                continue
            if dets.scores[i] < self.min_score[label]:
                continue
            x1, y1, x2, y2 = dets.xyxy[i]
            lo, hi = self.area[label]
            if not lo <= (x2 - x1) * (y2 - y1) / frame_area <= hi:
                continue
            out.append(i)
        return out

    def update(self, frame: Frame, dets: Detections, idx: list[int]) -> list[RuleEvent]:
        self.frames += 1
        if self._restored is not None:  # after a restart or a config change: resume the sites
            for box in self._restored:
                self.sites.append(Site(self.violation.label if self.violation else "",
                                       box, box, 0.0, frame.ts, frame.ts, self.frames,
                                       hits=self.zone.inertia, qualified=True))
            self._restored = None
        active = schedule_active(self.rule.schedule, frame.wall, self.tz)
        if not active:
            idx = []  # nothing new starts outside the schedule
            self.sites = [s for s in self.sites if s.qualified]
        boxes = dets.xyxy[idx] if idx else np.zeros((0, 4), np.float32)
        site_boxes = np.array([s.bbox for s in self.sites], np.float32).reshape(-1, 4)
        last_boxes = np.array([s.last_bbox for s in self.sites], np.float32).reshape(-1, 4)
        ious = np.maximum(iou_matrix(boxes, site_boxes), iou_matrix(boxes, last_boxes))
        matched_sites: set[int] = set()
        matched_dets: set[int] = set()
        pairs = zip(*np.nonzero(ious >= MATCH_IOU), strict=True)  # (detection, site) indices
        for d, s in sorted(pairs, key=lambda p: -ious[p]):
            if d in matched_dets or s in matched_sites:
                continue
            matched_dets.add(d)
            matched_sites.add(s)
            self._seen(self.sites[s], frame, dets, idx[d])
        for d in sorted(set(range(len(idx))) - matched_dets, key=lambda d: -dets.scores[idx[d]]):
            # An unmatched box overlapping a site (even one made from this frame) is a second
            # box on an object already counted, not a new object.
            sites = np.array([s.bbox for s in self.sites], np.float32).reshape(-1, 4)
            if not (iou_matrix(boxes[d: d + 1], sites) >= MATCH_IOU).any():
                i = idx[d]
                box = dets.xyxy[i].copy()
                self.sites.append(Site(dets.labels[i], box, box, float(dets.scores[i]),
                                       frame.ts, frame.ts, self.frames))
        self._expire(frame)
        return self._judge(frame, active)

    def _seen(self, site: Site, frame: Frame, dets: Detections, i: int) -> None:
        site.hits += 1
        site.last_seen = frame.ts
        site.last_bbox = dets.xyxy[i].copy()
        if dets.scores[i] > site.score:  # the reference box follows the clearest view
            site.score, site.bbox = float(dets.scores[i]), site.last_bbox
            site.label = dets.labels[i]
        if not site.qualified:
            dwelt = site.last_seen - site.first_seen >= self.dwell.get(site.label, np.inf)
            steady = site.hits / (self.frames - site.first_frame + 1) >= MIN_HIT_RATIO
            site.qualified = dwelt and steady and site.hits >= self.zone.inertia

    def _expire(self, frame: Frame) -> None:
        keep = []
        for site in self.sites:
            unseen = frame.ts - site.last_seen
            if site.qualified and unseen >= self.clear_s:
                continue
            if not site.qualified and unseen > max(self.clear_s, MIN_FORGET_S):
                continue
            keep.append(site)
        self.sites = keep

    def _judge(self, frame: Frame, active: bool) -> list[RuleEvent]:
        qualified = [s for s in self.sites if s.qualified]
        v = self.violation
        if v is None:
            if not active or len(qualified) < (self.rule.min_objects or 1):
                return []
            best = max(qualified, key=lambda s: s.score)
            self.violation = Violation(
                uuid.uuid4(), 0, best.label, best.score, _union(qualified), len(qualified),
                first_wall=frame.wall - _seconds(frame.ts - min(s.first_seen for s in qualified)),
                last_wall=frame.wall, sent_score=best.score,
                boxes=[s.last_bbox.copy() for s in qualified])
            return [self._event("new", frame)]
        seen_now = [s for s in qualified if s.last_seen == frame.ts]
        if seen_now:
            v.last_wall = frame.wall
            v.bbox = _union(qualified)
            v.boxes = [s.last_bbox.copy() for s in qualified]
            best = max(qualified, key=lambda s: s.score)
            if best.score > v.score:
                v.score, v.label = best.score, best.label
        if not qualified:
            v.seq += 1
            self.violation = None
            return [self._event("end", frame, v)]
        if len(qualified) > v.count or v.score >= v.sent_score + SCORE_JUMP:
            v.seq += 1
            v.count = max(v.count, len(qualified))
            v.sent_score = v.score
            v.bbox = _union(qualified)
            return [self._event("update", frame)]
        return []

    def _event(self, kind: Literal["new", "update", "end"], frame: Frame,
               v: Violation | None = None) -> RuleEvent:
        v = v or self.violation
        assert v is not None
        copy = Violation(**{**v.__dict__, "boxes": [b.copy() for b in v.boxes],
                            "bbox": v.bbox.copy()})
        return RuleEvent(kind, self.camera_id, self.zone, self.rule, copy, frame)

    # --- persistence: an edge restarted mid-violation resumes it instead of a second `new` ----

    def export(self) -> dict[str, Any] | None:
        v = self.violation
        if v is None:
            return None
        boxes = ([s.bbox.tolist() for s in self.sites if s.qualified]
                 or [b.tolist() for b in v.boxes])
        return {"alert_id": str(v.alert_id), "seq": v.seq, "label": v.label, "score": v.score,
                "bbox": v.bbox.tolist(), "count": v.count, "first_wall": v.first_wall.isoformat(),
                "last_wall": v.last_wall.isoformat(), "sent_score": v.sent_score, "boxes": boxes}

    def restore(self, state: dict[str, Any]) -> None:
        boxes = [np.array(b, np.float32) for b in state["boxes"]]
        self.violation = Violation(
            uuid.UUID(state["alert_id"]), int(state["seq"]), state["label"], float(state["score"]),
            np.array(state["bbox"], np.float32), int(state["count"]),
            datetime.fromisoformat(state["first_wall"]), datetime.fromisoformat(state["last_wall"]),
            float(state["sent_score"]), boxes)
        self._restored = boxes


def _union(sites: list[Site]) -> np.ndarray:
    b = np.array([s.last_bbox for s in sites], np.float32)
    return np.concatenate([b[:, :2].min(axis=0), b[:, 2:].max(axis=0)])


def _seconds(s: float) -> Any:
    from datetime import timedelta
    return timedelta(seconds=max(0.0, s))


class ZoneRule:
    """All rules of one zone; ``update`` is called once per analysed frame."""

    def __init__(self, camera_id: str, zone: ZoneConfig, tz: ZoneInfo | None = None) -> None:
        self.camera_id, self.zone = camera_id, zone
        self.rules = [RuleState(camera_id, zone, r, tz or ZoneInfo("UTC")) for r in zone.rules]
        self._polygon = Polygon(zone.polygon)
        prepare(self._polygon)

    def update(self, frame: Frame, dets: Detections,
               moving: np.ndarray | None = None) -> list[RuleEvent]:
        n = len(dets)
        if n:
            # The bottom-centre stands for where an object touches the ground, so a bike whose
            # top pokes over the kerb line is not "on" the pavement.
            height, width = frame.image.shape[:2]
            inside = contains_xy(self._polygon, (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2 / width,
                                 dets.xyxy[:, 3] / height)
        else:
            inside = np.zeros(0, bool)
            height, width = frame.image.shape[:2]
        still = np.ones(n, bool) if moving is None else ~moving
        events = []
        for state in self.rules:
            idx = state.candidates(dets, inside, still, float(width * height))
            events += state.update(frame, dets, idx)
        return events

    @property
    def sites(self) -> list[Site]:
        return [s for r in self.rules for s in r.sites]


class CameraRules:
    """All zones of one camera plus its motion tracker; the runner keeps one per camera."""

    def __init__(self, camera: CameraConfig, tz: ZoneInfo | None = None,
                 tracker: Any | None = None) -> None:
        self.camera = camera
        self.zones = [ZoneRule(camera.id, zone, tz) for zone in camera.zones]
        self.tracker = tracker

    def update(self, frame: Frame, dets: Detections) -> list[RuleEvent]:
        moving = self.tracker.update(dets, frame.ts)[0] if self.tracker is not None else None
        return [e for zone in self.zones for e in zone.update(frame, dets, moving)]

    def states(self) -> list[RuleState]:
        return [r for z in self.zones for r in z.rules]
