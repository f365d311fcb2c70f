"""Dwell-by-site rules with synthetic detections: no model, no video, stream time only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from edge.capture import Frame
from edge.config import ZoneConfig
from edge.detect import Detections
from edge.rules import RuleEvent, ZoneRule

W, H = 1000, 500
IMAGE = np.zeros((H, W, 3), np.uint8)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ZONE = ZoneConfig(id="pavement", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)],
                  event_type="0506", classes=["two_wheeler"], dwell_s=5, clear_s=3)
BIKE = (400, 300, 460, 380)  # bottom-centre (430, 380) is inside the zone


def dets(*boxes: tuple[float, float, float, float], label: str = "two_wheeler",
         score: float = 0.6) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.full(n, score, np.float32),
                      np.zeros(n, np.int64), [label] * n)


def feed(rule: ZoneRule, timeline: list[tuple[float, Detections]]) -> list[RuleEvent]:
    events: list[RuleEvent] = []
    for ts, d in timeline:
        events += rule.update(Frame("cam", IMAGE, ts, T0 + timedelta(seconds=ts)), d)
    return events


def at_2fps(seconds: float, detect) -> list[tuple[float, Detections]]:
    return [(i / 2, detect(i / 2)) for i in range(int(seconds * 2))]


def test_stationary_bike_alerts_once_then_ends() -> None:
    rule = ZoneRule("cam", ZONE)
    timeline = at_2fps(20, lambda t: dets(BIKE) if t < 12 else dets())
    events = feed(rule, timeline)
    assert [e.kind for e in events] == ["new", "end"]
    new, end = events
    assert new.frame.ts == 5.0  # first moment dwell_s is reached
    assert new.site.seq == 0 and end.site.seq == 1
    assert new.site.alert_id == end.site.alert_id is not None
    assert end.frame.ts == 11.5 + ZONE.clear_s  # last seen at 11.5 s
    assert end.site.last_wall - end.site.first_wall == timedelta(seconds=11.5)
    assert rule.sites == []


def test_jittering_box_is_still_one_site() -> None:
    rng = np.random.default_rng(1)
    events = feed(ZoneRule("cam", ZONE), at_2fps(10, lambda t: dets(
        tuple(np.add(BIKE, rng.integers(-4, 5, 4))))))
    assert [e.kind for e in events] == ["new"]


def test_rider_moving_across_zone_never_alerts() -> None:
    # 5 m/s is ~60 px per 0.5 s here: one box width, so consecutive boxes barely overlap.
    def rider(t: float) -> Detections:
        x = 20 + 120 * t
        return dets((x, 300, x + 60, 380))

    events = feed(ZoneRule("cam", ZONE), at_2fps(8, rider))
    assert events == []


def test_slow_walker_pace_rider_never_alerts() -> None:
    # Half a box width per sample: IoU of consecutive boxes ~0.33, below the match threshold.
    events = feed(ZoneRule("cam", ZONE), at_2fps(30, lambda t: dets(
        (20 + 60 * t, 300, 80 + 60 * t, 380))))
    assert events == []


def test_short_occlusion_does_not_realert() -> None:
    # Seen 0-9.5 s, hidden 10-11.5 s (< clear_s 3), seen again until 20 s, then gone.
    def seen(t: float) -> Detections:
        return dets() if 10 <= t < 12 or t >= 20 else dets(BIKE)

    events = feed(ZoneRule("cam", ZONE), at_2fps(30, seen))
    assert [e.kind for e in events] == ["new", "end"]


def test_occlusion_before_dwell_keeps_the_dwell_clock() -> None:
    # A passer-by hides the bike for 2 s at 2-4 s: the site survives and alerts at dwell.
    events = feed(ZoneRule("cam", ZONE), at_2fps(
        12, lambda t: dets() if 2 <= t < 3 else dets(BIKE)))
    assert [(e.kind, e.frame.ts) for e in events] == [("new", 5.0)]


def test_outside_zone_wrong_class_or_low_score_ignored() -> None:
    above_kerb = (400, 100, 460, 200)  # bottom-centre y = 0.4, zone starts at 0.5
    for d in (dets(above_kerb), dets(BIKE, label="person"), dets(BIKE, score=0.1)):
        assert feed(ZoneRule("cam", ZONE), at_2fps(10, lambda t, d=d: d)) == []


def test_flickering_detection_below_hit_ratio_does_not_alert() -> None:
    # Seen in every third frame only (33 % < 60 %).
    events = feed(ZoneRule("cam", ZONE), [(i / 2, dets(BIKE) if i % 3 == 0 else dets())
                                          for i in range(20)])
    assert events == []


def test_duplicate_box_on_same_bike_gives_one_alert() -> None:
    events = feed(ZoneRule("cam", ZONE), at_2fps(10, lambda t: dets(
        BIKE, (405, 310, 462, 380))))
    assert [e.kind for e in events] == ["new"]

