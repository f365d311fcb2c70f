"""Rules on real media: which clips must alert, which must not, and replay determinism.

Zones were placed by looking at frames (see docs/edge.md). NanoDet-m scores the pavement
motorbikes of the Vietnamese clip only 0.20-0.27, hence detector threshold and min_score 0.2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture import Frame
from edge.config import EdgeConfig
from edge.detect import Detections
from edge.publish import read_recorded
from edge.rules import CameraRules
from edge.runner import run
from edge.track import MotionTracker
from simulators.demo import DEMO_CAMERAS
from tests.conftest import shared

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
BJ_CLIP = "media/cn_beijing_uadetrac_intersection_8s.mp4"
VTEST = "media/vtest.avi"
VISDRONE = "media/visdrone_cn_street/0000001_02999_d_0000005"
_DEMO_ZONES = {(c["id"], z["id"]): z["polygon"] for c in DEMO_CAMERAS for z in c["zones"]}
#: The demo's zones (simulators/demo.py), so what the demo shows is what is tested here.
VN_PAVEMENT = _DEMO_ZONES["cam-vn-01", "pavement-east"]
#: The vendor's patch of the right-hand pavement: sign, stools, customers (feet at y 0.6-0.75).
VN_SHOPFRONT = _DEMO_ZONES["cam-vn-01", "shopfront-east"]
BJ_ROAD = _DEMO_ZONES["cam-bj-01", "crossing"]
#: vtest.avi: the parking bay top right (a white van and a car stand there all clip long).
VT_BAY = _DEMO_ZONES["cam-vtest", "bay"]
#: vtest.avi: the footpath and road where people walk, in front of the building.
VT_WALKWAY = [[0.0, 0.25], [1.0, 0.25], [1.0, 1.0], [0.0, 1.0]]
#: VisDrone frame 5: the left-hand pavement, from the shop fronts to the kerb.
VD_PAVEMENT = [[0.28, 0.10], [0.38, 0.10], [0.40, 0.80], [0.16, 0.95], [0.18, 0.55]]
REPLAY_START = "2026-03-02T10:00:00+08:00"  # a Monday morning


def config(clip: str, zones: list[dict[str, Any]], fps: float = 2, **extra: Any) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": "edge-test", "detector": {"score_threshold": 0.2, "threads": 2},
        "replay_start": REPLAY_START, **extra,
        "cameras": [{"id": "cam1", "source": str(shared(clip)), "loop": False,
                     "sample_fps": fps, "zones": zones}],
    })


def replay(cfg: EdgeConfig, out: Path, speed: float = 0) -> list[Any]:
    run(cfg, until_eof=True, speed=speed, record_dir=out, mqtt=False)
    return read_recorded(out)


VN_ZONES = [
    {"id": "pavement", "polygon": VN_PAVEMENT, "dwell_s": 2, "clear_s": 2, "min_score": 0.2,
     "inertia": 2, "rules": [{"type": "illegal_parking"}]},
    {"id": "shopfront", "polygon": VN_SHOPFRONT, "dwell_s": 2, "clear_s": 2, "min_score": 0.25,
     "inertia": 2, "rules": [{"type": "doorway_trading", "min_objects": 2}]},
]


def test_vn_pavement_parking_and_trading_and_replay_speed_does_not_matter(
        tmp_path: Path) -> None:
    fast = replay(config(VN_CLIP, VN_ZONES), tmp_path / "fast", speed=0)
    kinds = {(a.zone_id, a.event_type, a.kind) for a in fast}
    assert ("pavement", "0506", "new") in kinds, fast
    # The vendor's stools and sign are real trading, but NanoDet sees only the customers
    # (person) and never the stall (no vending_cue or cart at the zone's 0.25): people alone
    # never make doorway trading (docs/edge.md), so this is a detector miss, not an alert.
    assert not any(a.zone_id == "shopfront" for a in fast), fast
    assert sum(a.kind == "new" for a in fast) == 1  # one per violation, no repeats
    parked = next(a for a in fast if a.event_type == "0506")
    assert parked.label == "two_wheeler" and parked.bbox[0] > 0.75
    crop = tmp_path / "fast" / f"{parked.alert_id}-0-crop.jpg"
    image = cv2.imdecode(np.frombuffer(crop.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and min(image.shape[:2]) >= 48

    paced = replay(config(VN_CLIP, VN_ZONES), tmp_path / "paced", speed=4)

    def key(alerts: list[Any]) -> list[tuple[Any, ...]]:
        return [(a.zone_id, a.kind, a.seq, a.label, a.event_type, a.bbox, a.started_at,
                 a.last_seen_at) for a in alerts]

    assert key(paced) == key(fast)


def test_beijing_riders_never_alert(tmp_path: Path) -> None:
    zones = [{"id": "road", "polygon": BJ_ROAD, "dwell_s": 2, "clear_s": 2, "min_score": 0.2,
              "rules": [{"type": "illegal_parking"}]}]
    assert replay(config(BJ_CLIP, zones), tmp_path) == []


def test_vtest_walkers_never_alert_parked_cars_alert_once(tmp_path: Path) -> None:
    zones = [
        {"id": "bay", "polygon": VT_BAY, "dwell_s": 10, "clear_s": 10, "min_score": 0.25,
         "rules": [{"type": "illegal_parking", "classes": ["car"]}]},
        {"id": "walkway", "polygon": VT_WALKWAY, "dwell_s": 15, "clear_s": 5, "min_score": 0.45,
         "rules": [{"type": "doorway_trading", "classes": ["person"], "min_objects": 2}]},
    ]
    # min_score 0.45: NanoDet calls two traffic cones by the path "person" at 0.29-0.36, and
    # they stand still all clip long; the walkers score 0.6-0.8.
    alerts = replay(config(VTEST, zones, fps=1), tmp_path)
    assert [a for a in alerts if a.zone_id == "walkway"] == []
    bay = [a for a in alerts if a.zone_id == "bay"]
    assert [a.kind for a in bay if a.kind == "new"] == ["new"], bay
    assert bay[0].event_type == "0505" and bay[0].label == "car"
    assert len({a.alert_id for a in bay}) == 1


def _label_detections(stem: str, width: int, height: int) -> Detections:
    """VisDrone ground truth (YOLO txt) as detections: 2 bicycle and 9 motor -> two_wheeler."""
    rows = np.loadtxt(str(shared(stem + ".txt")), ndmin=2)
    rows = rows[np.isin(rows[:, 0].astype(int), (2, 9))]
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return Detections(xyxy, np.full(len(rows), 0.5, np.float32), rows[:, 0].astype(np.int64),
                      ["two_wheeler"] * len(rows))


def test_visdrone_still_parked_two_wheelers_alert() -> None:
    # NanoDet-m finds no two-wheeler at all in these 455x256 aerial stills (they are ~8 px),
    # so the detections are the dataset's own labels: this checks the rules on a real scene,
    # not the detector (see docs/edge.md).
    image = cv2.imread(str(shared(VISDRONE + ".jpg")))
    height, width = image.shape[:2]
    cfg = config(VISDRONE + ".jpg", [
        {"id": "pavement", "polygon": VD_PAVEMENT, "dwell_s": 5, "clear_s": 5,
         "rules": [{"type": "illegal_parking"}]}])
    rules = CameraRules(cfg.cameras[0], tracker=MotionTracker(1))
    dets = _label_detections(VISDRONE, width, height)
    t0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
    events = []
    for i in range(12):  # a frozen camera: the same picture every second
        events += rules.update(Frame("cam1", image, float(i), t0 + timedelta(seconds=i)), dets)
    assert [e.kind for e in events] == ["new"]
    inside = events[0].violation.count
    assert inside >= 10, inside  # the pavement is lined with parked motorbikes
