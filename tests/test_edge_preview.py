"""``gridwatch edge preview``: real clips through the real capture, NanoDet, tracker and rules,
drawn per camera with what the rules made of every detection."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml
from click.testing import CliRunner
from PIL import Image

from edge.cli import edge_group
from edge.preview import PANEL_W
from simulators.local_services import free_port
from tests.conftest import shared

BIKE = "media/darknet_dog_bicycle.jpg"  # NanoDet: bicycle 0.68 at about [122, 128, 569, 424]
VTEST = "media/vtest.avi"
#: Under the bicycle's wheels (its ground point is about (0.45, 0.74) of the frame).
BIKE_ZONE = [[0.2, 0.55], [0.8, 0.55], [0.8, 0.95], [0.2, 0.95]]
VT_BAY = [[0.80, 0.10], [1.0, 0.10], [1.0, 0.26], [0.80, 0.26]]


def write_config(tmp_path: Path, cameras: list[dict]) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"edge_id": "edge-p", "cameras": cameras}))
    return path


def test_preview_draws_zones_and_each_detection_with_the_rules_verdict(tmp_path: Path) -> None:
    config = write_config(tmp_path, [
        {"id": "cam-bike", "name": "门前自行车", "source": str(shared(BIKE)), "sample_fps": 1,
         "zones": [{"id": "porch", "polygon": BIKE_ZONE, "dwell_s": 2, "inertia": 2,
                    "rules": [{"type": "illegal_parking"}]}]},
        {"id": "cam-vtest", "source": str(shared(VTEST)), "sample_fps": 1,
         "zones": [{"id": "bay", "polygon": VT_BAY, "dwell_s": 30,
                    "rules": [{"type": "illegal_parking", "classes": ["car"]}]}]},
    ])
    out = tmp_path / "out"
    result = CliRunner().invoke(edge_group, ["preview", str(config), "--out", str(out),
                                             "--seconds", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "cam-bike.json", "cam-bike.png", "cam-vtest.json", "cam-vtest.png"]

    bike = json.loads((out / "cam-bike.json").read_text())
    assert bike["frames"] == 4 and bike["error"] is None  # a still is a frozen camera: 0..3 s
    two_wheelers = [d for d in bike["detections"] if d["label"] == "two_wheeler"]
    best = max(two_wheelers, key=lambda d: d["score"])
    assert best["score"] > 0.5, two_wheelers
    # Held 3 s > dwell 2 s in the zone: the rules qualified it, and alerted on the way.
    assert best["status"] == "qualifying", best
    assert best["rules"][0]["zone"] == "porch" and best["moving"] is False, best
    assert [e["kind"] for e in bike["events"]] == ["new"], bike["events"]
    assert all(d["status"] == "outside" for d in bike["detections"]
               if not d["rules"]), bike["detections"]

    # The picture: the frame (enlarged to the preview's width), with the zone outlined.
    raw = cv2.imread(str(shared(BIKE)))
    png = np.asarray(Image.open(out / "cam-bike.png").convert("RGB"))[:, :, ::-1]
    height, width = raw.shape[:2]
    scale = png.shape[1] - PANEL_W  # the image part's width; the panel is to its right
    k = scale / width
    enlarged = cv2.resize(raw, (scale, round(height * k)), interpolation=cv2.INTER_CUBIC)
    picture = png[: enlarged.shape[0], :scale].astype(int)
    outline = np.zeros(enlarged.shape[:2], np.uint8)
    corners = np.array([[x * scale, y * enlarged.shape[0]] for x, y in BIKE_ZONE], np.int32)
    cv2.polylines(outline, [corners], isClosed=True, color=1, thickness=2)
    on_outline = np.abs(picture - enlarged.astype(int))[outline == 1].mean()
    assert on_outline > 40, on_outline  # the amber outline is there
    far = np.abs(picture - enlarged.astype(int))[:40, 600:900].mean()  # sky, no box, no zone
    assert far < 10, far

    vtest = json.loads((out / "cam-vtest.json").read_text())
    assert vtest["frames"] == 4 and vtest["detections"], vtest
    assert {"label", "score", "box", "status", "moving", "ridden", "rules"} <= set(
        vtest["detections"][0])
    in_bay = [d for d in vtest["detections"] if d["rules"]]
    assert any(d["label"] == "car" and d["status"] == "dwelling" for d in in_bay), in_bay
    assert "cam-bike.png (4 frames" in result.output, result.output


def test_preview_of_a_camera_that_gives_no_frame_says_why_and_fails(tmp_path: Path) -> None:
    source = f"rtsp://127.0.0.1:{free_port()}/nothing"
    config = write_config(tmp_path, [{"id": "cam-dead", "source": source, "timeout_s": 5}])
    out = tmp_path / "out"
    result = CliRunner().invoke(edge_group, ["preview", str(config), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "cam-dead: no picture:" in result.output and "Connection refused" in result.output
    doc = json.loads((out / "cam-dead.json").read_text())
    assert "Connection refused" in doc["error"] and not (out / "cam-dead.png").exists()
