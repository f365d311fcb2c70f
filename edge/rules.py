"""Zone rules: turn per-frame detections into the ``new`` / ``update`` / ``end`` of violations.

State is kept by *place*, not by tracker id. Within each rule of a zone, a *site* is a spot
where an object of the rule's classes keeps being detected (boxes matched by IoU). A site
*qualifies* once it was seen in at least ``inertia`` frames, for its class's dwell time, in at
least 60 % of the frames since it appeared, while never moving (ByteTrack, see ``edge.track``)
(riders pass through: their track moves and their boxes do not overlap from one sample to
the next, so they never build dwell), on its **evidence over frames**: the median score of its
sightings within the dwell window reaches ``min_score`` (one lucky frame cannot), and nobody
rode it in more than ``RIDDEN_MAX_SHARE`` of those sightings (a rider waiting at a red light is
not parked, however long the light). For ``doorway_trading`` at least one qualifying object is
goods or a stall (``GOODS_CLASSES``) beyond the shop's allowed strip; people only add to the
count. A rule has at most one open **violation**:

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
from edge.config import GOODS_CLASSES, CameraConfig, EdgeConfig
from edge.detect.base import Detections
from wire.models import model_min_scores
from wire.vocabulary import WEEKDAYS
from wire.zones import RuleConfig, ScheduleWindow, ShopfrontConfig, ZoneConfig

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
#: min_score of a class the model's registry entry gives none for.
FALLBACK_MIN_SCORE = 0.3
#: Sightings scoring below this share of their class's min_score are misses, not evidence.
EVIDENCE_FLOOR = 0.5
#: A site ridden in more than this share of its sightings within the dwell window is not
#: parked; a pedestrian walking past a parked bike overlaps it for a few frames only.
RIDDEN_MAX_SHARE = 0.25
#: Classes a person can ride.
RIDEABLE = frozenset({"two_wheeler", "scooter"})
#: A two-wheeler box this close to an upright person box (a standing figure, at least
#: ``UPRIGHT`` times as tall as wide) that scores at least as high is one object read twice
#: (class-agnostic NMS in other detectors): a pedestrian a re-encoded frame turned into a
#: "bicycle". Squat boxes read both ways (a motorbike with people seated by it) stay
#: vehicles: there the detector cannot tell, and a parked bike must not be lost.
SAME_OBJECT_IOU = 0.7
UPRIGHT = 1.5


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
    #: (stream time, score, ridden) of each sighting within the longest dwell window.
    evidence: list[tuple[float, float, bool]] = field(default_factory=list)


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


def min_scores(zone: ZoneConfig, rule: RuleConfig,
               defaults: dict[str, float]) -> dict[str, float]:
    """Each class's score floor in ``rule``: class -> rule -> zone -> the model's per-class
    default (models/registry.yaml) -> ``FALLBACK_MIN_SCORE``. The one place of this chain."""
    assert rule.classes is not None
    out = {}
    for name, c in rule.classes.items():
        chain = (c.min_score, rule.min_score, zone.min_score, defaults.get(name))
        out[name] = next((v for v in chain if v is not None), FALLBACK_MIN_SCORE)
    return out


def rider_min_score(defaults: dict[str, float]) -> float:
    """Least score of a person box that counts as someone riding a two-wheeler."""
    return defaults.get("rider", defaults.get("person", FALLBACK_MIN_SCORE))


def detector_floor(config: EdgeConfig, defaults: dict[str, float] | None = None) -> float:
    """The score the detector runs at: the lower of ``detector.score_threshold`` and every
    floor a zone of any camera may accept, so no zone's ``min_score`` is ever dead (the
    detector drops nothing a zone would take, including the faint sightings that count as
    evidence). The model's own defaults are always among them, so zones pushed later that
    leave ``min_score`` unset (an edge commissioned from the engineer view starts with none)
    never need a restart. The rules then filter per zone and class. ``defaults``: candidate
    per-class defaults instead of the registry's (``gridwatch eval --calibrate``)."""
    if defaults is None:
        defaults = model_min_scores(config.detector.model)
    floors = [config.detector.score_threshold, rider_min_score(defaults),
              *(v * EVIDENCE_FLOOR for k, v in defaults.items() if k != "rider")]
    for camera in config.cameras:
        for zone in camera.zones:
            for rule in zone.rules:
                floors += [v * EVIDENCE_FLOOR for v in min_scores(zone, rule, defaults).values()]
    return round(min(floors), 4)


class RuleState:
    """Sites and the open violation of one rule of one zone."""

    def __init__(self, camera_id: str, zone: ZoneConfig, rule: RuleConfig, tz: ZoneInfo,
                 defaults: dict[str, float] | None = None) -> None:
        self.camera_id, self.zone, self.rule, self.tz = camera_id, zone, rule, tz
        self.sites: list[Site] = []
        self.violation: Violation | None = None
        self.frames = 0
        self._restored: list[np.ndarray] | None = None
        #: The last frame as this rule saw it, read-only (``edge preview`` draws it): the
        #: detections that were candidates, and the site each one fed (index -> site).
        self.last_candidates: list[int] = []
        self.last_sites: dict[int, Site] = {}
        self.clear_s = rule.clear_s or zone.clear_s
        assert rule.classes is not None
        self.dwell = {name: c.dwell_s or rule.dwell_s or zone.dwell_s
                      for name, c in rule.classes.items()}
        self.min_score = min_scores(zone, rule, defaults or {})
        self.area = {name: (c.min_area, c.max_area) for name, c in rule.classes.items()}
        self.aspect = {name: (c.min_aspect, c.max_aspect) for name, c in rule.classes.items()}
        self.window = max(self.dwell.values())
        self.needs_goods = rule.type == "doorway_trading"

    @property
    def key(self) -> str:
        """Stable name for persisting this rule's open violation."""
        return f"{self.camera_id}/{self.zone.id}/{self.rule.id}"

    def candidates(self, dets: Detections, inside: np.ndarray, still: np.ndarray,
                   frame_shape: tuple[int, int]) -> list[int]:
        """Detections that may feed a site: in the zone, not moving, of the rule's classes and
        size, scoring at least ``EVIDENCE_FLOOR`` of their min_score (fainter sightings still
        count, and pull the site's median down), goods not inside the shop's allowed strip."""
        height, width = frame_shape
        out = []
        for i, label in enumerate(dets.labels):
            if not inside[i] or not still[i] or label not in self.dwell:
                continue
            if dets.scores[i] < self.min_score[label] * EVIDENCE_FLOOR:
                continue
            x1, y1, x2, y2 = dets.xyxy[i]
            lo, hi = self.area[label]
            if not lo <= (x2 - x1) * (y2 - y1) / (width * height) <= hi:
                continue
            lo, hi = self.aspect[label]
            if not lo <= (x2 - x1) / max(y2 - y1, 1e-6) <= hi:
                continue
            shopfront = self.rule.shopfront
            if shopfront is not None and label in GOODS_CLASSES and not beyond_strip(
                    shopfront, self.zone, ((x1 + x2) / 2, y2), width, height):
                continue
            out.append(i)
        return out

    def update(self, frame: Frame, dets: Detections, idx: list[int],
               ridden: np.ndarray | None = None) -> list[RuleEvent]:
        ridden = np.zeros(len(dets), bool) if ridden is None else ridden
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
        self.last_candidates, self.last_sites = list(idx), {}
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
            self._seen(self.sites[s], frame, dets, idx[d], bool(ridden[idx[d]]))
            self.last_sites[idx[d]] = self.sites[s]
        for d in sorted(set(range(len(idx))) - matched_dets, key=lambda d: -dets.scores[idx[d]]):
            # An unmatched box overlapping a site (even one made from this frame) is a second
            # box on an object already counted, not a new object.
            sites = np.array([s.bbox for s in self.sites], np.float32).reshape(-1, 4)
            if not (iou_matrix(boxes[d: d + 1], sites) >= MATCH_IOU).any():
                i = idx[d]
                box = dets.xyxy[i].copy()
                self.sites.append(Site(
                    dets.labels[i], box, box, float(dets.scores[i]), frame.ts, frame.ts,
                    self.frames, hits=int(self._strong(dets, i)),
                    evidence=[(frame.ts, float(dets.scores[i]), bool(ridden[i]))]))
                self.last_sites[i] = self.sites[-1]
        self._expire(frame)
        return self._judge(frame, active)

    def _seen(self, site: Site, frame: Frame, dets: Detections, i: int, ridden: bool) -> None:
        site.hits += int(self._strong(dets, i))
        site.last_seen = frame.ts
        site.last_bbox = dets.xyxy[i].copy()
        if dets.scores[i] > site.score:  # the reference box follows the clearest view
            site.score, site.bbox = float(dets.scores[i]), site.last_bbox
            site.label = dets.labels[i]
        site.evidence.append((frame.ts, float(dets.scores[i]), ridden))
        site.evidence = [e for e in site.evidence if frame.ts - e[0] <= self.window]
        if not site.qualified:
            dwelt = site.last_seen - site.first_seen >= self.dwell.get(site.label, np.inf)
            steady = site.hits / (self.frames - site.first_frame + 1) >= MIN_HIT_RATIO
            site.qualified = (dwelt and steady and site.hits >= self.zone.inertia
                              and self._evidence_holds(site, frame.ts))

    def _strong(self, dets: Detections, i: int) -> bool:
        """A sighting at the class's min_score: only these count as hits (inertia, the 60 %
        ratio); fainter ones keep the site alive and count in its median."""
        return bool(dets.scores[i] >= self.min_score[dets.labels[i]])

    def _evidence_holds(self, site: Site, now: float) -> bool:
        """Median score over the sightings of the dwell window reaches the class's min_score,
        and it was not ridden in more than ``RIDDEN_MAX_SHARE`` of them."""
        window = self.dwell.get(site.label, self.window)
        recent = [e for e in site.evidence if now - e[0] <= window]
        if not recent:
            return False
        median = float(np.median([score for _, score, _ in recent]))
        ridden = sum(r for _, _, r in recent) / len(recent)
        return median >= self.min_score.get(site.label, 1.0) and ridden <= RIDDEN_MAX_SHARE

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
        if self.needs_goods and not any(s.label in GOODS_CLASSES for s in qualified):
            qualified = []  # people alone are never trading
        v = self.violation
        if v is None:
            if not active or len(qualified) < (self.rule.min_objects or 1):
                return []
            best = self._best(qualified)
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
            best = self._best(qualified)
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

    def _best(self, qualified: list[Site]) -> Site:
        """The site a message names (label, score): for trading the clearest goods, since
        the people around them are not what makes it trading."""
        goods = [s for s in qualified if s.label in GOODS_CLASSES] if self.needs_goods else []
        return max(goods or qualified, key=lambda s: s.score)

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


def beyond_strip(shopfront: ShopfrontConfig, zone: ZoneConfig, point: tuple[float, float],
                 width: int, height: int) -> bool:
    """Whether a ground point (pixels) lies on the street side of the door line, farther than
    ``allowed_depth`` (a fraction of the frame height). The street side is the side of the
    zone polygon's centroid."""
    (ax, ay), (bx, by) = ((x * width, y * height) for x, y in shopfront.door_line)
    cx = float(np.mean([p[0] for p in zone.polygon])) * width
    cy = float(np.mean([p[1] for p in zone.polygon])) * height
    length = float(np.hypot(bx - ax, by - ay))

    def signed(px: float, py: float) -> float:
        return ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / length

    street = 1.0 if signed(cx, cy) >= 0 else -1.0
    return street * signed(*point) > shopfront.allowed_depth * height


def ridden_mask(dets: Detections, person_min_score: float) -> np.ndarray:
    """Which detections are two-wheelers (or scooters) with someone on them, moving or not.

    A person rides a vehicle when their box stands over it the way a rider's does: mostly
    within its width (≥ 60 % of the person's width), head clearly above the vehicle's top
    (by ≥ 20 % of the vehicle's height), feet on it rather than on the ground (the person's
    bottom between 25 % and 90 % of the way down the vehicle box), and of a rider's scale
    (person at least 60 % as tall as the vehicle). A pedestrian beside a parked bike stands
    on the ground (feet at or below the vehicle's bottom) and one passing behind it overlaps
    it for a moment only (see ``RIDDEN_MAX_SHARE``). Each person rides at most one vehicle,
    the one they cover best, so one person among parked bikes cannot "ride" them all. A
    vehicle box that is an upright person's box over again (``SAME_OBJECT_IOU``) counts as
    ridden too: it is that person.
    """
    n = len(dets)
    out = np.zeros(n, bool)
    vehicles = [i for i in range(n) if dets.labels[i] in RIDEABLE]
    people = [j for j in range(n) if dets.labels[j] == "person"
              and dets.scores[j] >= person_min_score]
    if vehicles and people:
        same = iou_matrix(dets.xyxy[vehicles], dets.xyxy[people]) >= SAME_OBJECT_IOU
        stronger = dets.scores[people][None, :] >= dets.scores[vehicles][:, None]
        p = dets.xyxy[people]
        upright = (p[:, 3] - p[:, 1]) >= UPRIGHT * (p[:, 2] - p[:, 0])
        out[np.array(vehicles)[(same & stronger & upright[None, :]).any(axis=1)]] = True
    for j in people:
        px1, py1, px2, py2 = (float(v) for v in dets.xyxy[j])
        best, best_cover = -1, 0.0
        for i in vehicles:
            vx1, vy1, vx2, vy2 = (float(v) for v in dets.xyxy[i])
            vh = max(vy2 - vy1, 1e-6)
            cover = (min(px2, vx2) - max(px1, vx1)) / max(px2 - px1, 1e-6)
            if (cover >= 0.6 and py1 <= vy1 - 0.2 * vh and py2 - py1 >= 0.6 * vh
                    and vy1 + 0.25 * vh <= py2 <= vy1 + 0.9 * vh and cover > best_cover):
                best, best_cover = i, cover
        if best >= 0:
            out[best] = True
    return out


def _union(sites: list[Site]) -> np.ndarray:
    b = np.array([s.last_bbox for s in sites], np.float32)
    return np.concatenate([b[:, :2].min(axis=0), b[:, 2:].max(axis=0)])


def _seconds(s: float) -> Any:
    from datetime import timedelta
    return timedelta(seconds=max(0.0, s))


class ZoneRule:
    """All rules of one zone; ``update`` is called once per analysed frame. ``defaults`` are
    the model's per-class min_scores (``wire.models.model_min_scores``)."""

    def __init__(self, camera_id: str, zone: ZoneConfig, tz: ZoneInfo | None = None,
                 defaults: dict[str, float] | None = None) -> None:
        self.camera_id, self.zone = camera_id, zone
        self.defaults = defaults or {}
        self.rules = [RuleState(camera_id, zone, r, tz or ZoneInfo("UTC"), self.defaults)
                      for r in zone.rules]
        self._polygon = Polygon(zone.polygon)
        prepare(self._polygon)
        #: Which detections of the last frame stood in the zone (read-only, ``edge preview``).
        self.last_inside = np.zeros(0, bool)

    def update(self, frame: Frame, dets: Detections, moving: np.ndarray | None = None,
               ridden: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> list[RuleEvent]:
        """``moving``, ``ridden``, ``excluded``: per detection; ``ridden`` unset is worked out
        here (``ridden_mask``), the others default to none."""
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
        if excluded is not None:
            still &= ~excluded
        if ridden is None:
            ridden = ridden_mask(dets, rider_min_score(self.defaults))
        self.last_inside = inside
        events = []
        for state in self.rules:
            idx = state.candidates(dets, inside, still, (height, width))
            events += state.update(frame, dets, idx, ridden)
        return events

    @property
    def sites(self) -> list[Site]:
        return [s for r in self.rules for s in r.sites]


@dataclass(frozen=True)
class LastFrame:
    """The flags the rules computed for each detection of a camera's last frame; a mask is
    None where nothing was computed (no tracker, no exclusion polygon)."""

    dets: Detections
    moving: np.ndarray | None
    ridden: np.ndarray
    excluded: np.ndarray | None


class CameraRules:
    """All zones of one camera plus its motion tracker; the runner keeps one per camera."""

    def __init__(self, camera: CameraConfig, tz: ZoneInfo | None = None,
                 tracker: Any | None = None, defaults: dict[str, float] | None = None) -> None:
        self.camera = camera
        self.defaults = defaults or {}
        self.zones = [ZoneRule(camera.id, zone, tz, self.defaults) for zone in camera.zones]
        self.tracker = tracker
        #: The last frame's per-detection flags (read-only, ``edge preview`` draws them).
        self.last: LastFrame | None = None
        self._exclude = [Polygon(p) for p in camera.exclude]
        for polygon in self._exclude:
            prepare(polygon)

    def update(self, frame: Frame, dets: Detections) -> list[RuleEvent]:
        moving = self.tracker.update(dets, frame.ts)[0] if self.tracker is not None else None
        ridden = ridden_mask(dets, rider_min_score(self.defaults))
        excluded = self._excluded(dets, frame)
        self.last = LastFrame(dets, moving, ridden, excluded)
        return [e for zone in self.zones
                for e in zone.update(frame, dets, moving, ridden, excluded)]

    def _excluded(self, dets: Detections, frame: Frame) -> np.ndarray | None:
        """Detections whose ground point lies in one of the camera's exclusion polygons."""
        if not self._exclude or not len(dets):
            return None
        height, width = frame.image.shape[:2]
        x = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2 / width
        y = dets.xyxy[:, 3] / height
        return np.logical_or.reduce([contains_xy(p, x, y) for p in self._exclude])

    def states(self) -> list[RuleState]:
        return [r for z in self.zones for r in z.rules]
