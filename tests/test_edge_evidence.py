"""Thresholds that compose, evidence over frames, riders and shopfronts (issue #12, sections 3
and 4): synthetic detections through the real rules, and one run of the real edge loop with
the ``fake`` detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edge.capture import Frame
from edge.config import EdgeConfig
from edge.detect import Detections
from edge.publish import read_recorded
from edge.rules import CameraRules, RuleEvent, ZoneRule, detector_floor
from edge.runner import run
from tests.conftest import shared
from wire.zones import RuleConfig, ZoneConfig

W, H = 1000, 500
IMAGE = np.zeros((H, W, 3), np.uint8)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAVEMENT = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
BIKE = (400, 300, 460, 380)  # 60 x 80 px, ground point (430, 380) inside the pavement
#: Someone sitting on BIKE: head well above it, feet on its footboard, within its width.
RIDER = (405, 250, 455, 360)


def boxes(*items: tuple[tuple[float, float, float, float], str, float]) -> Detections:
    n = len(items)
    return Detections(np.array([b for b, _, _ in items], np.float32).reshape(n, 4),
                      np.array([s for _, _, s in items], np.float32), np.zeros(n, np.int64),
                      [label for _, label, _ in items])


def feed(rules: ZoneRule | CameraRules, seconds: float,
         scene: Any, fps: float = 2) -> list[RuleEvent]:
    events: list[RuleEvent] = []
    for i in range(int(seconds * fps)):
        ts = i / fps
        events += rules.update(Frame("cam", IMAGE, ts, T0 + timedelta(seconds=ts)), scene(i, ts))
    return events


def parking(**zone: Any) -> ZoneConfig:
    return ZoneConfig.model_validate({"id": "z", "polygon": PAVEMENT, "dwell_s": 30,
                                      "clear_s": 5, "min_score": 0.25,
                                      "rules": [{"type": "illegal_parking"}], **zone})


def camera(zone: ZoneConfig, **extra: Any) -> Any:
    return EdgeConfig.model_validate({"edge_id": "e", "cameras": [
        {"id": "cam", "source": "x.mp4", "zones": [zone.model_dump()], **extra}]}).cameras[0]


# --- riders ----------------------------------------------------------------------------------

def test_rider_waiting_90s_at_a_red_light_never_alerts() -> None:
    # The bike stands still for 90 s (three times the dwell); the person on it is found in
    # 7 frames of 10, as a detector does with a partly hidden rider.
    def scene(i: int, ts: float) -> Detections:
        rider = [(RIDER, "person", 0.6)] if i % 10 < 7 else []
        return boxes((BIKE, "two_wheeler", 0.6), *rider)

    assert feed(CameraRules(camera(parking())), 90, scene) == []
    # The same bike with nobody on it is parked, and alerts at the dwell.
    parked = feed(CameraRules(camera(parking())), 40, lambda i, ts: boxes(
        (BIKE, "two_wheeler", 0.6)))
    assert [(e.kind, e.frame.ts) for e in parked] == [("new", 30.0)]


def test_parked_bike_with_pedestrians_passing_and_standing_beside_still_alerts() -> None:
    # One pedestrian stands beside the bike all along (feet on the ground, at its bottom);
    # others walk past behind it every 10 s (feet higher up than its bottom, overlapping it
    # for a frame or two): neither rides it.
    beside = ((470, 280, 500, 382), "person", 0.7)

    def scene(i: int, ts: float) -> Detections:
        x = 300 + 60 * (ts % 10)  # 120 px/s, across the bike at 2-3 s of every 10
        walker = ((x, 250, x + 40, 350), "person", 0.7)
        return boxes((BIKE, "two_wheeler", 0.6), beside, walker)

    events = feed(CameraRules(camera(parking())), 40, scene)
    assert [(e.kind, e.frame.ts) for e in events] == [("new", 30.0)]


def test_pedestrian_read_as_a_bicycle_never_alerts() -> None:
    # A frozen camera: the same picture every second. A standing pedestrian (person 0.62) is
    # also read as a "bicycle" at 0.285 on nearly the same box (one pixel of padding was
    # enough in the field): one object read twice, not a parked bike.
    pedestrian = (600, 260, 640, 380)
    events = feed(CameraRules(camera(parking())), 60, lambda i, ts: boxes(
        (pedestrian, "person", 0.62), ((598, 262, 641, 380), "two_wheeler", 0.285)), fps=1)
    assert events == []


def test_one_lucky_frame_does_not_qualify() -> None:
    # The box scores 0.285 once and 0.14 otherwise, under a min_score of 0.25: it stays a site
    # (faint sightings keep it alive and count in its median) but never qualifies, however
    # long it stays. A bike at 0.3 in 3 frames of 5 (0.14 in the others) does: its median
    # and its share of sightings at min_score both hold; at 2 frames of 5 neither does.
    events = feed(ZoneRule("cam", parking()), 60, lambda i, ts: boxes(
        (BIKE, "two_wheeler", 0.285 if i == 10 else 0.14)))
    assert events == []
    steady = feed(ZoneRule("cam", parking()), 40, lambda i, ts: boxes(
        (BIKE, "two_wheeler", 0.3 if i % 5 < 3 else 0.14)))
    rare = feed(ZoneRule("cam", parking()), 40, lambda i, ts: boxes(
        (BIKE, "two_wheeler", 0.3 if i % 5 < 2 else 0.14)))
    assert [e.kind for e in steady] == ["new"] and rare == []


def test_exclusion_mask_keeps_a_stop_line_queue_out() -> None:
    # A stop line under the bike's ground point: nothing there counts, whatever stands still.
    cam = camera(parking(), exclude=[[[0.3, 0.7], [0.5, 0.7], [0.5, 0.8], [0.3, 0.8]]])
    assert feed(CameraRules(cam), 40, lambda i, ts: boxes((BIKE, "two_wheeler", 0.6))) == []
    with pytest.raises(ValueError, match="at least 3 points"):
        camera(parking(), exclude=[[[0.1, 0.1], [0.2, 0.2]]])


def test_scooters_are_a_local_choice() -> None:
    scooter = lambda i, ts: boxes((BIKE, "scooter", 0.6))  # noqa: E731
    assert feed(ZoneRule("cam", parking()), 40, scooter) == []
    counted = parking(rules=[{"type": "illegal_parking", "classes": ["two_wheeler", "scooter"]}])
    assert [e.kind for e in feed(ZoneRule("cam", counted), 40, scooter)] == ["new"]


# --- thresholds ------------------------------------------------------------------------------

def test_zone_min_score_below_the_detector_default_is_live(tmp_path: Path) -> None:
    # The detector's default score_threshold is 0.35; the zone asks for 0.25. The bike scores
    # 0.3: the detector must not drop it before the zone sees it (the real edge loop, with
    # the fake detector replaying the box on every frame of a real clip).
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"units": "norm", "frames": {0: [
        {"box": [0.85, 0.6, 0.9, 0.7], "label": "two_wheeler", "score": 0.3}]}}))
    config = EdgeConfig.model_validate({
        "edge_id": "edge-test", "detector": {"model": "fake", "path": str(replay)},
        "cameras": [{"id": "cam1", "loop": False, "sample_fps": 2, "source": str(shared(
            "media/vn_truccat_intersection_pavement_vendor_6s.mp4")), "zones": [
            {"id": "pavement", "polygon": PAVEMENT, "dwell_s": 2, "clear_s": 2, "inertia": 2,
             "min_score": 0.25, "rules": [{"type": "illegal_parking"}]}]}]})
    assert config.detector.score_threshold == 0.35
    assert detector_floor(config) <= 0.25
    run(config, until_eof=True, speed=0, record_dir=tmp_path / "out", mqtt=False)
    alerts = read_recorded(tmp_path / "out")
    assert [(a.zone_id, a.event_type, a.kind) for a in alerts][:1] == [
        ("pavement", "0506", "new")], alerts


def test_model_defaults_fill_what_zones_leave_unset() -> None:
    # No min_score anywhere: the model's per-class default (models/registry.yaml) applies,
    # and the detector runs low enough for every class any rule reads.
    config = EdgeConfig.model_validate({"edge_id": "e", "cameras": [{
        "id": "cam", "source": "x.mp4", "zones": [
            {"id": "z", "polygon": PAVEMENT, "rules": [{"type": "illegal_parking"}]}]}]})
    rule = ZoneRule("cam", config.cameras[0].zones[0], defaults={"two_wheeler": 0.2})
    assert rule.rules[0].min_score == {"two_wheeler": 0.2}
    assert detector_floor(config) <= 0.1  # half of NanoDet's two_wheeler default 0.2


# --- doorway trading -------------------------------------------------------------------------

def doorway(**rule: Any) -> ZoneConfig:
    return ZoneConfig(id="shop", polygon=PAVEMENT, dwell_s=10, clear_s=5, min_score=0.3,
                      rules=[RuleConfig.model_validate({"type": "doorway_trading", **rule})])


PEOPLE = [((200, 300, 240, 420), "person", 0.8), ((260, 310, 300, 430), "person", 0.8),
          ((700, 280, 740, 400), "person", 0.7)]


def test_people_alone_never_make_doorway_trading() -> None:
    events = feed(ZoneRule("cam", doorway()), 120, lambda i, ts: boxes(*PEOPLE))
    assert events == []
    # A stall (a table, a vending cue) beside them does.
    stall = ((400, 330, 520, 400), "vending_cue", 0.6)
    events = feed(ZoneRule("cam", doorway()), 30, lambda i, ts: boxes(stall, *PEOPLE))
    assert [(e.kind, e.violation.count) for e in events] == [("new", 4)]


def test_goods_inside_the_allowed_strip_do_not_alert_beyond_it_they_do() -> None:
    # Door line along the top of the zone (y = 250 px); the shop may use 0.1 of the frame
    # height (50 px) in front of it.
    rule = {"shopfront": {"door_line": [[0.0, 0.5], [1.0, 0.5]], "allowed_depth": 0.1},
            "min_objects": 1}
    inside = ((400, 240, 480, 290), "vending_cue", 0.6)  # ground point 40 px from the door
    beyond = ((400, 330, 480, 400), "vending_cue", 0.6)  # 150 px out on the pavement
    assert feed(ZoneRule("cam", doorway(**rule)), 40, lambda i, ts: boxes(inside)) == []
    events = feed(ZoneRule("cam", doorway(**rule)), 40, lambda i, ts: boxes(beyond))
    assert [e.kind for e in events] == ["new"]
    # People may stand anywhere; they still never qualify alone, inside or beyond the strip.
    assert feed(ZoneRule("cam", doorway(**rule)), 40, lambda i, ts: boxes(*PEOPLE)) == []
    with pytest.raises(ValueError, match="doorway_trading rules only"):
        RuleConfig(type="illegal_parking", shopfront={"door_line": [[0, 0.5], [1, 0.5]]})


def test_cart_read_as_truck_is_goods_within_size_bounds_a_real_truck_is_not() -> None:
    # COCO models call a hand cart "truck"/"car" (mapped to our car). In a shopfront, a
    # cart-sized box (80 x 70 px, 1.1 % of the frame, about square) is goods; a truck
    # (340 x 150 px, 10 % of the frame, 2.3 times as wide as tall) is not.
    vendor = ((300, 300, 340, 420), "person", 0.8)
    cart = ((400, 340, 480, 410), "car", 0.5)
    truck = ((500, 280, 840, 430), "car", 0.7)
    events = feed(ZoneRule("cam", doorway()), 30, lambda i, ts: boxes(cart, vendor))
    assert [(e.kind, e.violation.label) for e in events] == [("new", "car")]
    assert feed(ZoneRule("cam", doorway()), 60, lambda i, ts: boxes(truck, vendor)) == []


def test_push_needing_a_lower_detector_floor_is_rejected(tmp_path: Path) -> None:
    # The detector's score is set at start; a pushed zone asking for less would be dead until
    # a restart, so the push says so instead of applying a setting that does nothing.
    from edge.reconfig import PushRejected, parse_pushed

    def doc(min_score: float) -> dict[str, Any]:
        return {"edge_id": "e", "cameras": [{"id": "cam", "source": str(tmp_path / "x.mp4"),
                                             "zones": [
            {"id": "z", "polygon": PAVEMENT, "min_score": min_score,
             "rules": [{"type": "illegal_parking"}]}]}]}

    running = EdgeConfig.model_validate(doc(0.3))
    assert parse_pushed(yaml.safe_dump(doc(0.4)).encode(), running, tmp_path)
    with pytest.raises(PushRejected, match="restart the edge"):
        parse_pushed(yaml.safe_dump(doc(0.1)).encode(), running, tmp_path)
