"""``gridwatch eval``: the labelled-set format, stills as frozen cameras, the event metrics on a
case whose answer is known by hand, and the regression gate on the project's own set."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from edge.capture import CameraCapture
from edge.config import ConfigError, EdgeConfig
from edge.eval.labels import load_set
from edge.eval.run import evaluate, regressions, report
from gridwatch.cli import cli
from tests.conftest import shared
from wire.paths import REPO

SET = REPO / "eval" / "set.yaml"
#: What the quick cases measured when last recorded; a change may only keep or improve them.
QUICK_FIGURES = REPO / "eval" / "quick-figures.json"


def _capture_ts(**camera: Any) -> list[float]:
    """Stream times of every frame one camera delivers, replayed as fast as possible."""
    config = EdgeConfig.model_validate({"edge_id": "e", "cameras": [{"id": "c", **camera}]})
    stop, wakeup = threading.Event(), threading.Event()
    capture = CameraCapture(config.cameras[0], stop, speed=0, wakeup=wakeup)
    capture.start()
    out: list[float] = []
    while not (capture.finished.is_set() and not len(capture.queue)):
        wakeup.clear()  # before looking, so a frame put meanwhile is not missed
        frame = capture.queue.get_nowait()
        if frame is None:
            assert wakeup.wait(30), f"the capture neither sent a frame nor finished: {out}"
        else:
            out.append(frame.ts)
    stop.set()
    capture.join(5)
    return out


def test_still_with_duration_is_a_frozen_camera_for_that_long() -> None:
    still = str(shared("media/darknet_dog_bicycle.jpg"))
    assert _capture_ts(source=still, loop=False, sample_fps=2, duration_s=3) == [
        0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    # A looping clip with a duration stops there too (the 6.4 s clip plays about twice).
    ts = _capture_ts(source=str(shared("media/vn_truccat_intersection_pavement_vendor_6s.mp4")),
                     loop=True, sample_fps=1, duration_s=11)
    assert ts == [float(i) for i in range(11)]


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _case(**extra: Any) -> dict[str, Any]:
    return {"id": "c1", "media": "street.png",
            "camera": {"sample_fps": 1, "duration_s": 12, "zones": [
                {"id": "kerb", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "dwell_s": 3,
                 "rules": [{"type": "illegal_parking"}]}]}, **extra}


@pytest.mark.parametrize(("change", "where"), [
    ({"format": "gridwatch-eval/9"}, "format:"),
    ({"cases": [_case(violations=[{"zone": "road", "event_type": "0506", "start": 0,
                                   "end": 5}])]}, "cases[0]: Value error, violations[0].zone"),
    ({"cases": [_case(violations=[{"zone": "kerb", "event_type": "0504", "start": 0,
                                   "end": 5}])]}, "violations[0].event_type 0504"),
    ({"cases": [_case(quiet=[{"start": 5, "end": 1}])]}, "cases[0].quiet[0]: Value error, end"),
    ({"cases": [_case(camera={"sample_fps": 1, "zones": []})]}, "camera.duration_s"),
    ({"cases": [_case(violations=[{"zone": "kerb", "event_type": "0506", "start": 0,
                                   "end": 5}], quiet=[{"start": 4, "end": 9}])]},
     "quiet[0] overlaps violations[0] in zone 'kerb'"),
    ({"cases": [_case(camera={"duration_s": 5, "zones": [{"id": "z", "polygon": [[0, 0]]}]})]},
     "camera.zones[0].polygon"),
    ({"cases": [_case(boxes={"path": "x.txt", "format": "yolo", "classes": {"0": "bike"}})]},
     "cases[0].boxes: Value error, classes maps to unknown classes ['bike']"),
    ({"cases": [_case(), _case()]}, "duplicate case id 'c1'"),
])
def test_format_errors_name_the_field(tmp_path: Path, change: dict[str, Any],
                                      where: str) -> None:
    doc = {"format": "gridwatch-eval/1", "name": "t", "cases": [_case()], **change}
    with pytest.raises(ConfigError) as err:
        load_set(_write(tmp_path / "set.yaml", doc))
    assert where in str(err.value), str(err.value)
    assert str(tmp_path / "set.yaml") in str(err.value)


def _known_set(tmp_path: Path) -> Path:
    """A frozen camera for 12 s at 1 fps with three zones and canned detections: a bike
    parked in ``kerb`` (labelled, reported), one in ``plaza`` (must stay quiet: a false
    alarm), nothing in ``corner`` (labelled: missed)."""
    cv2.imwrite(str(tmp_path / "street.png"), np.full((100, 200, 3), 90, np.uint8))
    boxes = [{"box": [20, 40, 40, 80], "label": "two_wheeler", "score": 0.9},
             {"box": [150, 10, 170, 45], "label": "two_wheeler", "score": 0.9}]
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump({"frames": {0: boxes}}))
    zone = {"dwell_s": 3, "clear_s": 5, "rules": [{"type": "illegal_parking"}]}
    return _write(tmp_path / "set.yaml", {
        "format": "gridwatch-eval/1", "name": "known",
        "edge": {"detector": {"model": "fake", "path": str(tmp_path / "replay.yaml")}},
        "cases": [{
            "id": "frozen", "media": "street.png",
            "camera": {"sample_fps": 1, "duration_s": 12, "zones": [
                {"id": "kerb", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], **zone},
                {"id": "plaza", "polygon": [[0.5, 0], [1, 0], [1, 0.5], [0.5, 0.5]], **zone},
                {"id": "corner", "polygon": [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1]],
                 **zone}]},
            "violations": [{"zone": "kerb", "event_type": "0506", "start": 0, "end": 12},
                           {"zone": "corner", "event_type": "0506", "start": 2, "end": 12}],
            "quiet": [{"zone": "plaza", "start": 0, "end": 12}],
        }]})


def test_known_case_gives_hand_computed_figures(tmp_path: Path) -> None:
    eval_set, folder = load_set(_known_set(tmp_path))
    doc = report(eval_set, evaluate(eval_set, folder), {})
    total = doc["total"]
    # Frames at 0..11 s; a site qualifies when seen for dwell_s 3 in >= inertia 3 frames: at 3 s.
    assert [(a["zone"], a["at"]) for a in doc["cases"][0]["alerts"]] == [
        ("kerb", 3.0), ("plaza", 3.0)]
    assert (total["violations"], total["reported"], total["alerts"], total["false_alarms"]) == (
        2, 1, 2, 1)
    assert total["precision"] == 0.5 and total["recall"] == 0.5
    assert total["camera_hours"] == pytest.approx(12 / 3600)
    assert total["false_alarms_per_camera_hour"] == pytest.approx(300.0)
    assert total["time_to_alert_s"] == {"mean": 3.0, "median": 3.0, "max": 3.0}
    assert total["quiet_broken"] == 1 and total["cases_right"] == 0


def test_cli_reports_and_fails_against_a_better_baseline(tmp_path: Path) -> None:
    path = _known_set(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", str(path), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "0.50" in result.output
    assert "false   frozen: plaza 0506 at 3.0s" in result.output
    recorded = json.loads((tmp_path / "r.json").read_text())
    assert runner.invoke(cli, ["eval", str(path), "--baseline", str(tmp_path / "r.json")]
                         ).exit_code == 0
    better = {**recorded, "total": {**recorded["total"], "recall": 1.0, "false_alarms": 0}}
    (tmp_path / "better.json").write_text(json.dumps(better))
    result = runner.invoke(cli, ["eval", str(path), "--baseline", str(tmp_path / "better.json")])
    assert result.exit_code == 1
    assert "total recall: 0.5 (recorded 1.0)" in result.output
    assert "total false_alarms: 1 (recorded 0)" in result.output
    # The same totals with a different violation reported still fail: that one was lost.
    swapped = {**recorded, "cases": [{**recorded["cases"][0], "missed": [
        {**recorded["cases"][0]["missed"][0], "zone": "kerb", "start": 0}]}]}
    (tmp_path / "swapped.json").write_text(json.dumps(swapped))
    result = runner.invoke(cli, ["eval", str(path), "--baseline", str(tmp_path / "swapped.json")])
    assert result.exit_code == 1
    assert "case frozen: corner 0506 2-12s no longer reported" in result.output
    other = {**recorded, "cases": [{**recorded["cases"][0], "id": "another"}]}
    (tmp_path / "other.json").write_text(json.dumps(other))
    result = runner.invoke(cli, ["eval", str(path), "--baseline", str(tmp_path / "other.json")])
    assert result.exit_code == 1
    assert "cases differ from the recorded report's: ['another', 'frozen']" in result.output
    # Overrides reach the camera, nested keys merged (off stays the word, not YAML's False).
    off = runner.invoke(cli, ["eval", str(path), "--set", "camera.crops.mode=off",
                              "--set", "camera.zones=[]", "--json", "-"])
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["total"]["alerts"] == 0  # no zones, nothing raised
    bad = runner.invoke(cli, ["eval", str(path), "--set", "detector.nonsense=1"])
    assert bad.exit_code == 1 and "detector.nonsense" in bad.output


def test_quick_set_is_no_worse_than_recorded() -> None:
    """The regression gate: the quick cases of the project's set (real clips and stills, the
    real detector) against the figures recorded in eval/quick-figures.json. A change that
    improves them re-records: gridwatch eval eval/ --quick --json eval/quick-figures.json"""
    eval_set, folder = load_set(SET)
    doc = report(eval_set, evaluate(eval_set, folder, quick=True), {})
    recorded = json.loads(QUICK_FIGURES.read_text(encoding="utf-8"))
    assert regressions(doc, recorded) == []


def test_box_figures_are_hand_computed_at_each_threshold(tmp_path: Path) -> None:
    """Two labelled bikes (one found at 0.9, one only at 0.3), a tricycle the set leaves
    unmapped (a detection on it counts neither way), a detection on nothing (false)."""
    cv2.imwrite(str(tmp_path / "still.png"), np.full((100, 200, 3), 90, np.uint8))
    # YOLO lines: class cx cy w h (normalised); 7 = awning-tricycle, unmapped.
    (tmp_path / "still.txt").write_text("9 0.1 0.5 0.1 0.4\n9 0.4 0.5 0.1 0.4\n"
                                        "7 0.7 0.5 0.1 0.4\n")
    dets = [{"box": [10, 30, 30, 70], "label": "two_wheeler", "score": 0.9},
            {"box": [70, 30, 90, 70], "label": "two_wheeler", "score": 0.3},
            {"box": [130, 30, 150, 70], "label": "two_wheeler", "score": 0.8},
            {"box": [170, 0, 190, 20], "label": "two_wheeler", "score": 0.6}]
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump({"frames": {0: dets}}))
    eval_set, folder = load_set(_write(tmp_path / "set.yaml", {
        "format": "gridwatch-eval/1", "name": "boxes",
        "edge": {"detector": {"model": "fake", "path": str(tmp_path / "replay.yaml"),
                              "score_threshold": 0.5}},
        "cases": [{"id": "still", "media": "still.png",
                   "boxes": {"path": "still.txt", "format": "yolo",
                             "classes": {"9": "two_wheeler"}}}]}))
    doc = report(eval_set, evaluate(eval_set, folder, box_thresholds=[0.2, 0.5]), {})
    at_configured = doc["boxes"]["two_wheeler"]
    assert (at_configured["found"], at_configured["missed"], at_configured["false"]) == (1, 1, 1)
    assert doc["box_sweep"]["0.5"]["two_wheeler"] == at_configured
    low = doc["box_sweep"]["0.2"]["two_wheeler"]
    assert (low["found"], low["missed"], low["false"]) == (2, 0, 1)
    assert low["recall"] == 1.0 and low["precision"] == pytest.approx(2 / 3)
