"""Zone rules with synthetic detections: no model, no video, stream time only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from edge.capture import Frame
from edge.detect import Detections
from edge.rules import RuleEvent, ZoneRule
from wire.zones import ZoneConfig

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
    assert new.violation.seq == 0 and end.violation.seq == 1
    assert new.violation.alert_id == end.violation.alert_id is not None
    assert end.frame.ts == 11.5 + ZONE.clear_s  # last seen at 11.5 s
    assert end.violation.last_wall - end.violation.first_wall == timedelta(seconds=11.5)
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



# --- rules, classes, schedules, updates --------------------------------------------------------

from zoneinfo import ZoneInfo  # noqa: E402

import pytest  # noqa: E402

from edge.config import EdgeConfig  # noqa: E402
from edge.rules import CameraRules, schedule_active  # noqa: E402
from wire.zones import RuleConfig  # noqa: E402

PAVEMENT = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
BIKE2 = (600, 300, 660, 380)


def zone(**rule) -> ZoneConfig:
    return ZoneConfig(id="z", polygon=PAVEMENT, dwell_s=5, clear_s=3, min_score=0.2,
                      rules=[RuleConfig.model_validate({"type": "illegal_parking", **rule})])


def mixed(*parts: Detections) -> Detections:
    return Detections(np.concatenate([p.xyxy for p in parts]).astype(np.float32),
                      np.concatenate([p.scores for p in parts]).astype(np.float32),
                      np.concatenate([p.class_ids for p in parts]),
                      [lab for p in parts for lab in p.labels])


def test_event_code_derived_from_rule_type_and_overridable() -> None:
    assert RuleConfig(type="illegal_parking").event_type == "0506"
    assert RuleConfig(type="illegal_parking", classes=["car"]).event_type == "0505"
    assert RuleConfig(type="doorway_trading").event_type == "0504"
    assert RuleConfig(type="doorway_trading", event_type="0599").event_type == "0599"
    with pytest.raises(ValueError, match="not usable by illegal_parking"):
        RuleConfig(type="illegal_parking", classes=["person"])


def test_old_simple_zone_form_still_reads_as_one_rule() -> None:
    assert ZONE.rules[0].type == "illegal_parking" and ZONE.rules[0].event_type == "0506"
    with pytest.raises(ValueError, match="either rules"):
        ZoneConfig(id="z", polygon=PAVEMENT, event_type="0506", classes=["two_wheeler"],
                   rules=[{"type": "illegal_parking"}])


def test_per_class_dwell() -> None:
    z = zone(classes={"two_wheeler": {"dwell_s": 2}, "car": {"dwell_s": 8}})
    bike = feed(ZoneRule("cam", z), at_2fps(12, lambda t: dets(BIKE)))
    car = feed(ZoneRule("cam", z), at_2fps(12, lambda t: dets(BIKE, label="car")))
    assert [(e.kind, e.frame.ts) for e in bike] == [("new", 2.0)]
    assert [(e.kind, e.frame.ts) for e in car] == [("new", 8.0)]
    assert car[0].event_type == "0506"


def test_inertia_needs_that_many_frames() -> None:
    z = zone(dwell_s=0.5)
    z3 = z.model_copy(update={"inertia": 6})
    assert [e.frame.ts for e in feed(ZoneRule("cam", z), at_2fps(5, lambda t: dets(BIKE)))] == [1.0]
    slow = feed(ZoneRule("cam", z3), at_2fps(5, lambda t: dets(BIKE)))
    assert [e.frame.ts for e in slow] == [2.5]


def test_min_max_area_and_per_class_score() -> None:
    # BIKE is 60x80 px of a 1000x500 frame: 0.0096 of it.
    for classes, fires in (({"two_wheeler": {"min_area": 0.02}}, False),
                           ({"two_wheeler": {"max_area": 0.005}}, False),
                           ({"two_wheeler": {"min_score": 0.7}}, False),
                           ({"two_wheeler": {"min_area": 0.005, "max_area": 0.02}}, True)):
        events = feed(ZoneRule("cam", zone(classes=classes)), at_2fps(8, lambda t: dets(BIKE)))
        assert bool(events) is fires, classes


def test_second_bike_is_an_update_not_a_second_alert_and_end_once_all_gone() -> None:
    def scene(t: float) -> Detections:
        boxes = ([BIKE] if t < 20 else []) + ([BIKE2] if 8 <= t < 25 else [])
        return dets(*boxes)

    events = feed(ZoneRule("cam", zone()), at_2fps(35, scene))
    # The first bike leaving (at 20 s) is no update: counts only ratchet up until the end.
    assert [(e.kind, e.violation.seq, e.violation.count) for e in events] == [
        ("new", 0, 1), ("update", 1, 2), ("end", 2, 2)]
    assert len({e.violation.alert_id for e in events}) == 1
    assert [e.frame.ts for e in events] == [5.0, 13.0, 27.5]


def test_score_jump_is_an_update_small_changes_are_not() -> None:
    events = feed(ZoneRule("cam", zone()), at_2fps(20, lambda t: dets(
        BIKE, score=0.3 if t < 8 else 0.35 if t < 12 else 0.6)))
    assert [(e.kind, round(e.violation.score, 2)) for e in events] == [
        ("new", 0.3), ("update", 0.6)]


def test_doorway_trading_needs_min_objects_staying_put() -> None:
    z = ZoneConfig(id="shop", polygon=PAVEMENT, dwell_s=5, clear_s=3, min_score=0.2,
                   rules=[{"type": "doorway_trading"}])
    stool, person = (100, 400, 140, 440), (200, 300, 240, 420)
    assert feed(ZoneRule("cam", z), at_2fps(10, lambda t: dets(person, label="person"))) == []
    events = feed(ZoneRule("cam", z), at_2fps(10, lambda t: mixed(
        dets(stool, label="vending_cue"), dets(person, label="person"))))
    assert [(e.kind, e.event_type, e.violation.count) for e in events] == [("new", "0504", 2)]


def _at(day: int, hh: int, mm: int) -> datetime:  # 2026-01-05 is a Monday, Shanghai time
    return datetime(2026, 1, 4 + day, hh, mm, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_schedule_windows_weekdays_and_overnight() -> None:
    sh = ZoneInfo("Asia/Shanghai")
    day = RuleConfig(type="illegal_parking", schedule=[
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "21:00"}])
    night = RuleConfig(type="illegal_parking", schedule=[{"days": ["fri"], "start": "22:00",
                                                          "end": "06:00"}])
    assert schedule_active(day.schedule, _at(1, 7, 0), sh)
    assert not schedule_active(day.schedule, _at(1, 21, 0), sh)
    assert not schedule_active(day.schedule, _at(6, 12, 0), sh)  # Saturday
    # 07:00 Shanghai is 23:00 UTC the day before: the window follows the configured zone.
    assert schedule_active(day.schedule, _at(1, 7, 30).astimezone(ZoneInfo("UTC")), sh)
    assert schedule_active(night.schedule, _at(5, 23, 0), sh)  # Friday night
    assert schedule_active(night.schedule, _at(6, 5, 59), sh)  # Saturday early morning
    assert not schedule_active(night.schedule, _at(6, 6, 0), sh)
    assert not schedule_active(night.schedule, _at(4, 23, 0), sh)  # Thursday night
    with pytest.raises(ValueError, match="HH:MM"):
        RuleConfig(type="illegal_parking", schedule=[{"start": "7am"}])


def test_schedule_gates_rules_on_frame_time() -> None:
    z = zone(schedule=[{"days": ["mon"], "start": "07:00", "end": "08:00"}])
    rule = ZoneRule("cam", z, ZoneInfo("Asia/Shanghai"))
    start = _at(1, 6, 58)  # Monday 06:58; the bike stands from then on

    def frames(seconds: float) -> list[RuleEvent]:
        out = []
        for i in range(int(seconds * 2)):
            ts = i / 2
            out += rule.update(Frame("cam", IMAGE, ts, start + timedelta(seconds=ts)), dets(BIKE))
        return out

    events = frames(200)
    # Nothing before 07:00, then dwell (5 s) counted from 07:00: new at 07:00:05.
    assert [(e.kind, e.frame.wall.strftime("%H:%M:%S")) for e in events] == [
        ("new", "07:00:05")]


def test_restored_violation_continues_without_a_second_new() -> None:
    first = ZoneRule("cam", zone())
    events = feed(first, at_2fps(8, lambda t: dets(BIKE)))
    assert [e.kind for e in events] == ["new"]
    state = first.rules[0].export()
    again = ZoneRule("cam", zone())  # the edge restarted: stream time starts at 0 again
    again.rules[0].restore(state)
    events = feed(again, at_2fps(6, lambda t: dets(BIKE))
                  + [(6 + i / 2, dets()) for i in range(10)])
    assert [(e.kind, e.violation.seq) for e in events] == [("end", 1)]
    assert str(events[0].violation.alert_id) == state["alert_id"]


def test_tracker_marks_riders_moving_so_a_dense_stream_cannot_build_dwell() -> None:
    from edge.track import MotionTracker

    tracker = MotionTracker(2)
    assert tracker.active, "ByteTrack did not load"
    camera = EdgeConfig.model_validate({"edge_id": "e", "cameras": [{
        "id": "cam", "source": "x.mp4", "zones": [z.model_dump() for z in [zone(dwell_s=3)]]}]}
    ).cameras[0]
    rules = CameraRules(camera, tracker=tracker)
    events = []
    for i in range(40):  # a bike parked plus a rider crossing slowly (1/3 box per frame)
        x = 20 + 20 * (i % 40)
        d = dets(BIKE2, (x, 300, x + 60, 380))
        events += rules.update(Frame("cam", IMAGE, i / 2, T0 + timedelta(seconds=i / 2)), d)
    moving, _ = tracker.update(dets(BIKE2, (820, 300, 880, 380)), 20.0)
    assert [e.kind for e in events] == ["new"] and events[0].violation.count == 1
    assert list(moving) == [False, True]
