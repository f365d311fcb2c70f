"""The model loop (docs/models.md): a real edge run keeps the clean full frame with its alert,
the center stores it, ``gridwatch dataset export`` turns frames and verdicts into a YOLO set and
COCO JSON, train.py fine-tunes on it, and the privacy blur touches people's heads only."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from center.platform.settings import CenterSettings
from center.services.dataset_export import CLASSES, KeptFrame, export
from center.store import retention
from edge.config import EdgeConfig
from edge.detect import Detections
from edge.evidence import blur_regions, privacy_regions
from edge.runner import run
from tests.conftest import RunningCenter, shared
from tests.mqtt_helpers import close_client, tiny_jpeg
from tests.waiting import wait_until
from wire.protocol import edge_config_topic

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
#: Boxes the fake detector replays on the real clip (normalised), from the first frame on: a
#: parked two-wheeler in each of two zones and a person outside both.
BIKE_EAST = [0.60, 0.55, 0.70, 0.80]
BIKE_WEST = [0.15, 0.55, 0.25, 0.80]
PERSON = [0.20, 0.05, 0.26, 0.45]


def zone(zone_id: str, x1: float, x2: float) -> dict[str, Any]:
    return {"id": zone_id, "dwell_s": 1, "clear_s": 30,
            "polygon": [[x1, 0.5], [x2, 0.5], [x2, 0.95], [x1, 0.95]],
            "rules": [{"type": "illegal_parking"}]}


def edge_config(tmp_path: Path, port: int) -> Path:
    replay = tmp_path / "boxes.yaml"
    replay.write_text(yaml.safe_dump({"units": "norm", "hold": True, "times": {0.0: [
        {"box": BIKE_EAST, "label": "two_wheeler", "score": 0.8},
        {"box": BIKE_WEST, "label": "two_wheeler", "score": 0.6},
        {"box": PERSON, "label": "person", "score": 0.7}]}}))
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge_id": "edge-demo", "broker": {"port": port},
        "detector": {"model": "fake", "path": str(replay)},
        "evidence": {"keep_frame": True},  # blur stays at its default (on)
        "cameras": [{"id": "cam-vn-01", "source": str(shared(VN_CLIP)), "loop": False,
                     "sample_fps": 2, "zones": [zone("pavement-east", 0.5, 0.9),
                                                zone("pavement-west", 0.05, 0.45)]}]}))
    return config


def run_edge(config: Path) -> None:
    edge = subprocess.run(
        [sys.executable, "-m", "gridwatch.cli", "edge", "run", "--config", str(config),
         "--until-eof", "--speed", "0"], capture_output=True, text=True, timeout=120,
        check=False)
    assert edge.returncode == 0, edge.stdout[-3000:] + edge.stderr[-3000:]


def stored_frames(dsn: str, n: int, timeout: float = 20) -> dict[str, tuple[Any, ...]]:
    """zone -> (jpeg, width, height, blurred, boxes, kind, alert_id) once ``n`` are stored."""
    def rows() -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(
                "SELECT a.zone_id, f.jpeg, f.width, f.height, f.blurred, f.boxes, a.kind,"
                " f.alert_id FROM alert_frames f JOIN alerts a USING (alert_id, seq)").fetchall()

    found = wait_until(lambda: len(r := rows()) >= n and r, timeout, f"{n} full frames stored")
    return {r[0]: r[1:] for r in found}


def judge(dsn: str, alert_id: Any, zone_id: str, verdict: str, reason: str | None) -> None:
    """A verdict row as the verdict API writes it (D5a's table, migration 0018)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO verdicts (alert_id, camera_id, zone_id, event_type, verdict, reason,"
            " actor_id, role) VALUES (%s, 'cam-vn-01', %s, '0506', %s, %s, 'w-0111', 'worker')",
            (alert_id, zone_id, verdict, reason))


def test_edge_frames_and_verdicts_export_to_yolo_and_coco(
        center: RunningCenter, mqtt_broker: Any, tmp_path: Path) -> None:
    run_edge(edge_config(tmp_path, mqtt_broker.port))
    dsn = center.settings.db.dsn
    frames = stored_frames(dsn, 2)
    jpeg, width, height, blurred, boxes, kind, east_id = frames["pavement-east"]
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    # The clean frame at the clip's own size (1280x720 is under frame_max_side), not the
    # 960 px drawn snapshot; blurred by default; every detection of the frame as a pre-label,
    # the one this alert blamed marked.
    assert image.shape[:2] == (height, width) == (720, 1280)
    assert (kind, blurred) == ("new", True)
    blamed = [b["bbox"] for b in boxes if b["violation"]]
    assert len(boxes) == 3 and np.allclose(blamed, [BIKE_EAST], atol=1e-3)

    judge(dsn, east_id, "pavement-east", "confirmed", None)
    west_id = frames["pavement-west"][-1]
    judge(dsn, west_id, "pavement-west", "false_alarm", "wrong_class")
    out = tmp_path / "set"
    done = subprocess.run([sys.executable, "-m", "gridwatch.cli", "dataset", "export", str(out)],
                          env={**os.environ, "GRIDWATCH_DB__DSN": dsn}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 images (1 hard_negative, 1 positive)" in done.stdout

    # YOLO: ultralytics reads the dataset; the confirmed frame keeps all three boxes, the hard
    # negative loses only the blamed bike (the other bike and the person stay labelled).
    from edge.detect.ultralytics_yolo import import_ultralytics

    import_ultralytics()
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(out / "data.yaml"))
    assert data["names"] == {0: "two_wheeler", 1: "person", 2: "vending_cue", 3: "car"}
    label_files = {p.stem: p.read_text().splitlines() for p in out.glob("labels/*/*.txt")}
    assert len(label_files[str(east_id)]) == 3 and len(label_files[str(west_id)]) == 2
    cx = sorted(float(line.split()[1]) for line in label_files[str(west_id)])
    assert cx == pytest.approx([(PERSON[0] + PERSON[2]) / 2, (BIKE_EAST[0] + BIKE_EAST[2]) / 2],
                               abs=1e-3)

    # COCO: the structure CVAT / Label Studio import (pycocotools is not installed here).
    coco = json.loads((out / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    images = {i["id"]: i for i in coco["images"]}
    assert {i["role"] for i in images.values()} == {"positive", "hard_negative"}
    for image_entry in images.values():
        assert (out / "images" / image_entry["file_name"]).is_file()
        assert (image_entry["width"], image_entry["height"]) == (1280, 720)
    assert len(coco["annotations"]) == 5
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["image_id"] in images and 1 <= ann["category_id"] <= len(CLASSES)
        assert w > 0 and h > 0 and x + w <= 1280 and y + h <= 720
        assert ann["area"] == pytest.approx(w * h, rel=1e-3)


def test_train_fine_tunes_on_an_export(tmp_path: Path) -> None:
    """A tiny run from yolo11n.yaml (random weights, offline) on an exported set, in seconds."""
    capture = cv2.VideoCapture(str(shared(VN_CLIP)))
    ok, image = capture.read()
    capture.release()
    assert ok
    _, jpeg = cv2.imencode(".jpg", cv2.resize(image, (320, 180)))
    frames = [KeptFrame(uuid.UUID(int=i), "cam-vn-01", jpeg.tobytes(), 320, 180, True,
                    [{"label": "two_wheeler", "score": 0.8, "bbox": BIKE_EAST, "violation": True},
                     {"label": "person", "score": 0.7, "bbox": PERSON, "violation": False}],
                    "confirmed", None) for i in range(4)]
    done = export(frames, tmp_path / "set", val_share=0.5)
    spec = importlib.util.spec_from_file_location(
        "train", Path(__file__).resolve().parents[1] / "models" / "scripts" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    best = train.train(done.data_yaml, tmp_path / "runs", model="yolo11n.yaml", epochs=1,
                       imgsz=64, batch=4, verbose=False)
    assert best.is_file()


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


def add_verdicts(dsn: str, camera: str, started: datetime, confirmed: int,
                 false_alarms: int) -> None:
    with psycopg.connect(dsn) as conn:
        for i in range(confirmed + false_alarms):
            fa = i >= confirmed
            conn.execute(
                "INSERT INTO verdicts (alert_id, camera_id, zone_id, event_type,"
                " alert_started_at, verdict, reason, actor_id, role)"
                " VALUES (%s, %s, 'z', '0506', %s, %s, %s, 'l-01', 'leader')",
                (uuid.uuid4(), camera, started, "false_alarm" if fa else "confirmed",
                 "wrong_class" if fa else None))


def canary_check(dsn: str, since: datetime, *cameras: str) -> subprocess.CompletedProcess:
    args = [a for c in cameras for a in ("--camera", c)]
    return subprocess.run(
        [sys.executable, "-m", "gridwatch.cli", "model", "canary-check", *args,
         "--since", since.strftime("%Y-%m-%dT%H:%M:%S")],
        env={**os.environ, "GRIDWATCH_DB__DSN": dsn}, capture_output=True, text=True,
        timeout=60, check=False)


def test_canary_is_promoted_only_when_its_false_alarms_are_no_worse(db_dsn: str) -> None:
    now = datetime.now(UTC)
    switch = now - timedelta(days=8)
    # The canary camera before the switch: 4 false alarms in 8 days; after: 1. Another camera's
    # many false alarms after the switch do not count.
    add_verdicts(db_dsn, "cam-a", switch - timedelta(days=4), 1, 4)
    add_verdicts(db_dsn, "cam-a", switch + timedelta(days=3), 3, 1)
    add_verdicts(db_dsn, "cam-b", switch + timedelta(days=3), 0, 9)
    done = canary_check(db_dsn, switch, "cam-a")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0.50 per camera-day" in done.stdout and "0.12 per camera-day" in done.stdout
    assert "promote" in done.stdout
    # Counted over both canary cameras, the false alarms rose: hold.
    done = canary_check(db_dsn, switch, "cam-a", "cam-b")
    assert done.returncode == 1 and "hold: more false alarms" in done.stdout
    # Too early to tell: hold, whatever the figures.
    done = canary_check(db_dsn, now - timedelta(days=2), "cam-a")
    assert done.returncode == 1 and "days needed" in done.stdout


async def test_kept_frames_older_than_their_retention_go(db_dsn: str) -> None:
    now = datetime.now(UTC)
    old, young = uuid.uuid4(), uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        for alert_id, at in ((old, now - timedelta(days=31)), (young, now - timedelta(days=29))):
            await conn.execute(
                "INSERT INTO alert_frames (alert_id, seq, camera_id, jpeg, width, height,"
                " blurred, stored_at) VALUES (%s, 0, 'c', %s, 8, 8, true, %s)",
                (alert_id, tiny_jpeg(), at))
        swept = await retention.sweep(conn, now, alert_days=None, snapshot_days=None,
                                      frame_days=30)
        assert swept.frames_deleted == 1
        cur = await conn.execute("SELECT alert_id FROM alert_frames")
        assert [r[0] for r in await cur.fetchall()] == [young]
    assert CenterSettings().frame_retention_days == 30  # the documented default


def test_privacy_switch_and_frame_keeping_are_pushed_live(tmp_path: Path,
                                                          mqtt_broker: Any) -> None:
    """The center pushes ``evidence`` like zones: no restart, no edit on the edge box."""
    replay = tmp_path / "boxes.yaml"
    replay.write_text(yaml.safe_dump({"units": "norm", "hold": True, "times": {0.0: [
        {"box": BIKE_EAST, "label": "two_wheeler", "score": 0.8}]}}))
    doc = {"edge_id": "edge-push", "broker": {"port": mqtt_broker.port},
           "detector": {"model": "fake", "path": str(replay)},
           "cameras": [{"id": "cam-vn", "source": str(shared(VN_CLIP)), "loop": True,
                        "sample_fps": 2, "zones": [zone("pavement-east", 0.5, 0.9)]}]}
    doc["cameras"][0]["zones"][0]["dwell_s"] = 600  # nothing alerts before the push
    record = tmp_path / "rec"
    stop = threading.Event()
    edge = threading.Thread(target=run, args=(EdgeConfig.model_validate(doc),),
                            kwargs={"speed": 2, "record_dir": record, "stop_event": stop},
                            daemon=True)
    pusher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="center-push-evidence")
    pusher.connect("127.0.0.1", mqtt_broker.port)
    pusher.loop_start()
    topic = edge_config_topic("edge-push")
    try:
        edge.start()
        pushed = json.loads(json.dumps(doc))
        pushed["cameras"][0]["zones"][0]["dwell_s"] = 1
        pushed["evidence"] = {"keep_frame": True, "blur": False}
        pusher.publish(topic, json.dumps(pushed), qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: list(record.glob("*-frame.jpg")), 30, "a kept frame after the push")
        assert edge.is_alive()
    finally:
        stop.set()
        edge.join(20)
        pusher.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        close_client(pusher)
