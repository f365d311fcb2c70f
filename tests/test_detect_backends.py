"""Detector backends through the one registry: the torchvision shim, a tiny YOLO trained here
(1 epoch, from yolo11n.yaml) run as PyTorch, ONNX and OpenVINO, the fake replayer, and the
registry's errors. Untrained weights find little or nothing; the point is that each path runs
end to end and returns valid ``Detections``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.detect import Detections, load_detector, load_from_config
from edge.detect.fake import FakeDetector
from tests.conftest import shared
from wire.paths import REPO

OUR = {"two_wheeler", "person", "vending_cue", "car"}
EBIKE_MAP = {"ebike": "two_wheeler", "person": "person"}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "models" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _valid(dets: Detections, frame: np.ndarray) -> None:
    assert isinstance(dets, Detections)
    assert set(dets.labels) <= OUR
    if len(dets):
        h, w = frame.shape[:2]
        assert dets.xyxy.min() >= -1 and dets.xyxy[:, [0, 2]].max() <= w + 1
        assert dets.xyxy[:, [1, 3]].max() <= h + 1


# --- torchvision shim -------------------------------------------------------------------------

def test_shim_makes_torchvision_import_and_nms_agree_with_reference() -> None:
    from edge.detect.torchvision_compat import ensure_torchvision, nms_reference

    state = ensure_torchvision()
    assert state in ("native", "shimmed")
    import torch
    import torchvision

    def naive(boxes, scores, thr):  # textbook greedy NMS, one box at a time
        order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
        keep = []
        for i in order:
            ok = True
            for k in keep:
                xx1, yy1 = max(boxes[i][0], boxes[k][0]), max(boxes[i][1], boxes[k][1])
                xx2, yy2 = min(boxes[i][2], boxes[k][2]), min(boxes[i][3], boxes[k][3])
                inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
                area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
                if inter / (area(boxes[i]) + area(boxes[k]) - inter) > thr:
                    ok = False
                    break
            if ok:
                keep.append(i)
        return keep

    gen = torch.Generator().manual_seed(0)
    for n, thr in ((0, 0.5), (1, 0.5), (60, 0.3), (300, 0.5), (300, 0.7)):
        xy = torch.rand(n, 2, generator=gen) * 200
        wh = torch.rand(n, 2, generator=gen) * 60 + 1
        boxes = torch.cat([xy, xy + wh], 1)
        scores = torch.rand(n, generator=gen)
        got = torchvision.ops.nms(boxes, scores, thr).tolist()
        assert got == naive(boxes.tolist(), scores.tolist(), thr)
        assert nms_reference(boxes, scores, thr).tolist() == got
    assert ensure_torchvision() == state  # idempotent


def test_shim_needed_and_sufficient_in_a_fresh_process() -> None:
    """Without the shim ``import torchvision`` fails here (CUDA-linked wheel); with it, works.
    Where torchvision's own ops load, the shim must report "native" and patch nothing."""
    code = ("from edge.detect.torchvision_compat import ensure_torchvision as e; s = e(); "
            "import torch, torchvision; "
            "b = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]); "
            "print(s, torchvision.ops.nms(b, torch.tensor([.9, .8, .7]), .5).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    state, kept = out.stdout.split(" ", 1)
    assert kept.strip() == "[0, 2]"
    plain = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True,
                           text=True, timeout=120, check=False)
    if plain.returncode == 0:
        assert state == "native"
    else:
        assert "torchvision::nms does not exist" in plain.stderr
        assert state == "shimmed"


# --- ultralytics: train a tiny model, run it as .pt / .onnx / OpenVINO --------------------------

@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory) -> Path:
    data = shared("media/ebike_indoor_cctv_voc")
    out = tmp_path_factory.mktemp("yolo")
    best = _script("train").train(data, out, model="yolo11n.yaml", epochs=1, imgsz=64,
                                  batch=8, fraction=0.3, verbose=False)
    assert best.is_file()
    return best


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    image = cv2.imread(str(shared("media/darknet_dog_bicycle.jpg")))
    assert image is not None
    return image


def test_ultralytics_pt_runs_through_registry(tiny_yolo, frame) -> None:
    det = load_detector("yolo11n", path=tiny_yolo, class_map=EBIKE_MAP, score_threshold=0.001)
    dets = det.detect(frame)
    _valid(dets, frame)
    batch = det.detect_batch([frame, frame[:200, :300]])
    assert len(batch) == 2
    for d, f in zip(batch, [frame, frame[:200, :300]], strict=True):
        _valid(d, f)


def test_ultralytics_from_edge_config(tiny_yolo, frame) -> None:
    config = DetectorConfig(model="yolo11n", path=str(tiny_yolo), class_map=EBIKE_MAP,
                            imgsz=96, max_batch=2)
    det = load_from_config(config)
    assert det.max_batch == 2
    assert [isinstance(d, Detections) for d in det.detect_batch([frame] * 3)] == [True] * 3


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_ultralytics_exports_load_through_same_backend(tiny_yolo, frame, fmt, tmp_path) -> None:
    exported = _script("export").export(tiny_yolo, fmt, out=tmp_path, verbose=False)
    assert exported.exists() and (exported.suffix == ".onnx" or exported.is_dir())
    det = load_detector("yolo11n", path=exported, class_map=EBIKE_MAP, score_threshold=0.001)
    dets = det.detect(frame)
    _valid(dets, frame)
    # same weights, same answer as PyTorch (to float tolerance), whatever the runtime
    ref = load_detector("yolo11n", path=tiny_yolo, class_map=EBIKE_MAP, imgsz=64,
                        score_threshold=0.001).detect(frame)
    if len(ref) and len(dets):
        np.testing.assert_allclose(dets.scores.max(), ref.scores.max(), atol=0.05)


def test_evaluate_prints_table(tiny_yolo) -> None:
    evaluate = _script("evaluate")
    rows = evaluate.evaluate(tiny_yolo, shared("media/ebike_indoor_cctv_voc"), imgsz=64,
                             batch=8)
    assert rows[0]["class"] == "all"
    assert all(0.0 <= r[k] <= 1.0 for r in rows for k in ("precision", "recall", "map50"))
    table = evaluate.format_table(rows)
    assert "mAP50" in table and "all" in table


def test_class_map_naming_missing_class_fails(tiny_yolo) -> None:
    with pytest.raises(ValueError, match="bicycle"):
        load_detector("yolo11n", path=tiny_yolo, class_map={"bicycle": "two_wheeler"})


# --- fake backend -------------------------------------------------------------------------------

def test_fake_replays_by_frame_index(tmp_path) -> None:
    replay = tmp_path / "boxes.json"
    replay.write_text(json.dumps({"frames": {
        "0": [{"box": [10, 20, 50, 80], "label": "bicycle", "score": 0.9},
              {"box": [0, 0, 5, 5], "label": "dog"}],
        "2": [{"box": [1, 1, 2, 2], "label": "car", "score": 0.5}],
        "4": []}}))
    det = load_detector("fake", path=replay,
                        class_map={"bicycle": "two_wheeler", "car": "car"})
    frame = np.zeros((100, 100, 3), np.uint8)
    out = det.detect_batch([frame] * 5)
    assert [d.labels for d in out] == [["two_wheeler"], ["two_wheeler"], ["car"], ["car"], []]
    np.testing.assert_allclose(out[0].xyxy, [[10, 20, 50, 80]])
    assert out[0].scores.tolist() == pytest.approx([0.9])


def test_fake_replays_by_stream_time_in_normalised_units(tmp_path) -> None:
    replay = tmp_path / "boxes.yaml"
    replay.write_text("units: norm\nhold: false\ntimes:\n"
                      "  0.0: [{box: [0.1, 0.2, 0.5, 0.6], label: two_wheeler}]\n"
                      "  2.5: [{box: [0, 0, 1, 1], label: person, score: 0.4}]\n")
    now = [100.0]
    det = FakeDetector(replay, clock=lambda: now[0])
    frame = np.zeros((50, 200, 3), np.uint8)
    first = det.detect(frame)
    assert first.labels == ["two_wheeler"]
    np.testing.assert_allclose(first.xyxy, [[20, 10, 100, 30]])
    now[0] = 101.0  # between keys and hold: false -> nothing
    assert len(det.detect(frame)) == 0
    now[0] = 102.5
    assert det.detect(frame).labels == ["person"]


def test_fake_rejects_bad_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames:\n  0: [{box: [1, 2, 3], label: car}]\n")
    with pytest.raises(ValueError, match="4 numbers"):
        FakeDetector(bad)


# --- registry errors ----------------------------------------------------------------------------

def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="yolo11n"):
        load_detector("yolo-nope")


def test_missing_weights_file_is_named(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_detector("yolo11n", path=missing)
    with pytest.raises(FileNotFoundError, match=r"replay file|missing weights"):
        load_detector("fake", path=tmp_path / "none.json")


def test_yolo11n_offline_says_what_to_do(tmp_path, monkeypatch) -> None:
    """Here nothing downloads: the error names the file, where it goes and what to do."""
    monkeypatch.setenv("GRIDWATCH_DATA_DIR", str(tmp_path))
    try:
        det = load_detector("yolo11n")
    except FileNotFoundError as exc:
        text = str(exc)
        assert "yolo11n.pt" in text and str(tmp_path) in text
        assert "internet" in text and "detector.path" in text
    else:  # a connected machine: ultralytics fetched the real COCO weights
        assert (tmp_path / "weights" / "yolo11n.pt").is_file()
        assert isinstance(det.detect(np.zeros((64, 64, 3), np.uint8)), Detections)


def test_nanodet_keeps_batch_one_and_shares_coco_map() -> None:
    shared("models/nanodet-m-416-coco.onnx")
    det = load_detector("nanodet-m-416-coco", max_batch=4)
    assert det.max_batch == 1
    frame = cv2.imread(str(shared("media/darknet_dog_bicycle.jpg")))
    out = det.detect_batch([frame, frame])
    assert out[0].labels == out[1].labels and "two_wheeler" in out[0].labels


def test_detector_config_rejects_unknown_target_class() -> None:
    with pytest.raises(ValueError, match="unknown classes"):
        DetectorConfig(class_map={"ebike": "bike"})
