"""The model loop (docs/models.md): a real edge run keeps the clean full frame with its alert,
the center stores it, and the privacy blur touches people's heads only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psycopg
import yaml

from edge.detect import Detections
from edge.evidence import blur_regions, privacy_regions
from tests.conftest import RunningCenter, shared

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
#: Boxes the fake detector replays on the real clip (normalised): a parked two-wheeler inside
#: the zone and a person beside it, from the first frame on.
BIKE = [0.60, 0.55, 0.70, 0.80]
PERSON = [0.20, 0.30, 0.26, 0.70]


def edge_config(tmp_path: Path, port: int, **evidence: Any) -> Path:
    replay = tmp_path / "boxes.yaml"
    replay.write_text(yaml.safe_dump({"units": "norm", "hold": True, "times": {0.0: [
        {"box": BIKE, "label": "two_wheeler", "score": 0.8},
        {"box": PERSON, "label": "person", "score": 0.7}]}}))
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge_id": "edge-demo", "broker": {"port": port},
        "detector": {"model": "fake", "path": str(replay)},
        "evidence": evidence,
        "cameras": [{"id": "cam-vn-01", "source": str(shared(VN_CLIP)), "loop": False,
                     "sample_fps": 2, "zones": [{
                         "id": "pavement-east", "dwell_s": 1, "clear_s": 30,
                         "polygon": [[0.5, 0.4], [0.9, 0.4], [0.9, 0.95], [0.5, 0.95]],
                         "rules": [{"type": "illegal_parking"}]}]}]}))
    return config


def run_edge(config: Path) -> None:
    edge = subprocess.run(
        [sys.executable, "-m", "center.cli", "edge", "run", "--config", str(config),
         "--until-eof", "--speed", "0"], capture_output=True, text=True, timeout=120,
        check=False)
    assert edge.returncode == 0, edge.stdout[-3000:] + edge.stderr[-3000:]


def stored_frame(dsn: str, timeout: float = 20) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT f.jpeg, f.width, f.height, f.blurred, f.boxes, a.kind, f.camera_id"
                " FROM alert_frames f JOIN alerts a USING (alert_id, seq)").fetchone()
        if row is not None:
            return row
        time.sleep(0.2)
    raise AssertionError("no full frame stored within the deadline")


def test_edge_alert_carries_its_full_frame_into_the_center(
        center: RunningCenter, mqtt_broker: Any, tmp_path: Path) -> None:
    run_edge(edge_config(tmp_path, mqtt_broker.port))
    jpeg, width, height, blurred, boxes, kind, camera = stored_frame(center.settings.db.dsn)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    # The clean frame at the clip's own size (1280x720 is under frame_max_side), not the
    # 960 px drawn snapshot; blurred by default; with both detections as pre-labels.
    assert image.shape[:2] == (height, width) == (720, 1280)
    assert (kind, camera, blurred) == ("new", "cam-vn-01", True)
    by_label = {b["label"]: b for b in boxes}
    assert set(by_label) == {"two_wheeler", "person"}
    assert by_label["two_wheeler"]["violation"] and not by_label["person"]["violation"]
    assert np.allclose(by_label["two_wheeler"]["bbox"], BIKE, atol=1e-3)
    # No drawing: the zone's amber outline is not in the kept frame.
    with psycopg.connect(center.settings.db.dsn) as conn:
        snap = conn.execute("SELECT jpeg FROM alert_snapshots").fetchone()[0]
    assert snap != jpeg


def test_privacy_blur_changes_pixels_inside_person_boxes_only() -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (240, 320, 3), np.uint8)
    person, bike = [40, 20, 100, 200], [150, 100, 260, 220]
    detections = Detections(np.array([person, bike], np.float32),
                            np.array([0.9, 0.8], np.float32), np.array([0, 1]),
                            ["person", "two_wheeler"])
    out = blur_regions(image, privacy_regions(detections, 320, 240))
    changed = np.any(out != image, axis=2)
    inside = np.zeros_like(changed)
    inside[person[1]:person[3], person[0]:person[2]] = True
    assert changed[20:80, 40:100].mean() > 0.9  # the head: top third of the person's box
    assert not changed[~inside].any()  # nothing outside the person's box, the bike untouched
    assert not changed[81:200, 40:100].any()  # the body stays sharp for training
