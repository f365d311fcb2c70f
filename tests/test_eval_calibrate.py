"""``gridwatch eval --calibrate``: it picks the per-class min_score that tells a labelled
violation from a must-stay-quiet case, refuses values that only fit the cases they were chosen
on, writes the registry in place, and its replay of recorded boxes gives the alerts a full run
of the edge gives."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from edge.eval.calibrate import Sweeper, calibrate, record, replay
from edge.eval.labels import load_set
from edge.eval.registry_write import MARK, set_min_scores
from edge.eval.run import evaluate, report
from gridwatch.cli import cli
from wire.paths import MODELS_DIR

GRID = (0.2, 0.3, 0.4, 0.5, 0.6)

#: Four parked bikes, the same in every frame (x1 y1 x2 y2 on a 200x100 still); which of them
#: a case labels as a violation and which as must-stay-quiet is up to its zones.
BIKES = [{"box": [10, 40, 30, 80], "label": "two_wheeler", "score": 0.5},
         {"box": [60, 40, 80, 80], "label": "two_wheeler", "score": 0.35},
         {"box": [110, 40, 130, 80], "label": "two_wheeler", "score": 0.45},
         {"box": [160, 40, 180, 80], "label": "two_wheeler", "score": 0.3}]


def _strip(x0: float, x1: float, **extra: Any) -> dict[str, Any]:
    return {"polygon": [[x0, 0], [x1, 0], [x1, 1], [x0, 1]], "dwell_s": 3, "clear_s": 5,
            "rules": [{"type": "illegal_parking"}], **extra}


def _case(name: str, kerb: float, plaza: float) -> dict[str, Any]:
    """A frozen still for 12 s: the bike in the quarter from ``kerb`` is parked illegally, the
    one in the quarter from ``plaza`` stands where it may (nothing must be raised there)."""
    return {"id": name, "media": "street.png",
            "camera": {"sample_fps": 1, "duration_s": 12, "zones": [
                {"id": "kerb", **_strip(kerb, kerb + 0.25)},
                {"id": "plaza", **_strip(plaza, plaza + 0.25)}]},
            "violations": [{"zone": "kerb", "event_type": "0506", "start": 0, "end": 12}],
            "quiet": [{"zone": "plaza", "start": 0, "end": 12}]}


def _set(tmp_path: Path, cases: list[dict[str, Any]], frames: dict[int, Any] | None = None
         ) -> Path:
    cv2.imwrite(str(tmp_path / "street.png"), np.full((100, 200, 3), 90, np.uint8))
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump({"frames": frames or {0: BIKES}}))
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump({
        "format": "gridwatch-eval/1", "name": "calib",
        "edge": {"detector": {"model": "fake", "path": str(tmp_path / "replay.yaml")}},
        "cases": cases}, sort_keys=False))
    return path


def test_picks_the_value_that_separates_violation_from_quiet(tmp_path: Path) -> None:
    # Violation bike 0.5, quiet bike 0.35: at the fallback 0.3 both alert; 0.4 and 0.5 keep
    # the quiet zone quiet and still report; the tie goes to the higher value.
    eval_set, folder = load_set(_set(tmp_path, [_case("a", 0.0, 0.25)]))
    cal = calibrate(eval_set, folder, classes=["two_wheeler"], grid=GRID)
    assert cal.current == {"two_wheeler": 0.3} and cal.chosen == {"two_wheeler": 0.5}
    assert (cal.before.reported, cal.before.quiet_broken) == (1, 1)
    assert (cal.in_sample.reported, cal.in_sample.quiet_broken, cal.in_sample.false_alarms) == (
        1, 0, 0)
    by_value = {v: (f.reported, f.quiet_broken) for v, f, _ in cal.sweeps["two_wheeler"]}
    assert by_value == {0.2: (1, 1), 0.3: (1, 1), 0.4: (1, 0), 0.5: (1, 0), 0.6: (0, 0)}
    # Held out, one case leaves nothing to choose on: the current value, its figures. A gain
    # that rests on one case is not kept.
    assert cal.folds == {"a": {"two_wheeler": 0.3}} and cal.held_out == cal.before
    assert not cal.keep
    # A value already on the best plateau stays: moving along it would only fit the cases.
    recs, _ = record(eval_set, folder, eval_set.cases, {}, {"two_wheeler": 0.2})
    assert Sweeper(eval_set, recs).choose(recs, {"two_wheeler": 0.4}, ["two_wheeler"],
                                          GRID) == {"two_wheeler": 0.4}


def test_leave_one_out_exposes_a_value_that_only_fits_its_own_cases(tmp_path: Path) -> None:
    # Case a alone would choose 0.5 (its violation bike scores 0.5), which misses case b's
    # violation bike at 0.45; b alone chooses 0.4. In-sample 0.4 is right on both, but held
    # out one violation is lost: no better than the current 0.3 on every count, so not kept.
    eval_set, folder = load_set(_set(tmp_path, [_case("a", 0.0, 0.25), _case("b", 0.5, 0.75)]))
    cal = calibrate(eval_set, folder, classes=["two_wheeler"], grid=GRID)
    assert cal.chosen == {"two_wheeler": 0.4}
    assert (cal.in_sample.reported, cal.in_sample.quiet_broken) == (2, 0)
    assert cal.folds == {"a": {"two_wheeler": 0.4}, "b": {"two_wheeler": 0.5}}
    assert (cal.held_out.reported, cal.held_out.quiet_broken) == (1, 0)
    assert (cal.before.reported, cal.before.quiet_broken) == (2, 2)
    assert not cal.keep


def _registry_copy(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    shutil.copy(MODELS_DIR / "registry.yaml", path)
    return path


def test_write_changes_only_that_models_min_score_and_keeps_comments(tmp_path: Path) -> None:
    path = _registry_copy(tmp_path)
    before = path.read_text(encoding="utf-8")
    old = yaml.safe_load(before)
    values = {**old["nanodet-m-416-coco"]["min_score"], "two_wheeler": 0.25, "person": 0.5}
    set_min_scores(path, "nanodet-m-416-coco", values, ["on set s, figures f"])
    after = path.read_text(encoding="utf-8")
    new = yaml.safe_load(after)
    assert new["nanodet-m-416-coco"]["min_score"] == values
    assert {k: v for k, v in new.items() if k != "nanodet-m-416-coco"} == {
        k: v for k, v in old.items() if k != "nanodet-m-416-coco"}
    gone = [line for line in before.splitlines() if line not in after.splitlines()]
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert gone and all("min_score: {" in line or "rider:" in line for line in gone), gone
    assert added[:2] == [f"  {MARK}", "  #   on set s, figures f"], added
    assert all(line.startswith(("  min_score: {", "   ")) for line in added[2:]), added
    assert all(line in after for line in before.splitlines() if line.lstrip().startswith("#"))
    # A second calibration replaces the first one's comment instead of stacking them.
    set_min_scores(path, "nanodet-m-416-coco", values, ["again"])
    again = path.read_text(encoding="utf-8")
    assert again.count(MARK) == 1 and "on set s" not in again and "#   again" in again
    with pytest.raises(ValueError, match="no top-level entry 'nope'"):
        set_min_scores(path, "nope", values, [])
    assert path.read_text(encoding="utf-8") == again


def test_cli_writes_only_values_that_hold_out(tmp_path: Path) -> None:
    registry = _registry_copy(tmp_path)
    before = registry.read_text(encoding="utf-8")
    runner = CliRunner()
    two = _set(tmp_path, [_case("a", 0.0, 0.25), _case("b", 0.5, 0.75)])
    args = ["--calibrate", "--classes", "two_wheeler", "--grid", "0.2,0.3,0.4,0.5,0.6",
            "--write", "--registry", str(registry)]
    result = runner.invoke(cli, ["eval", str(two), *args])
    assert result.exit_code == 1, result.output
    assert "overfitting" in result.output and "registry left as it is" in result.output
    assert registry.read_text(encoding="utf-8") == before
    one = _set(tmp_path, [_case("a", 0.0, 0.25)])
    result = runner.invoke(cli, ["eval", str(one), *args])
    assert result.exit_code == 1 and "rests on the one case it fits" in result.output
    assert registry.read_text(encoding="utf-8") == before
    # Two cases that each need the quiet bike (0.35, 0.3) cut: held out, each is right.
    both = _set(tmp_path, [_case("a", 0.0, 0.25), _case("c", 0.0, 0.75)])
    result = runner.invoke(cli, ["eval", str(both), *args])
    assert result.exit_code == 0, result.output
    assert "did better held out" in result.output and "wrote fake.min_score" in result.output
    assert yaml.safe_load(registry.read_text())["fake"]["min_score"] == {"two_wheeler": 0.5}
    bad = runner.invoke(cli, ["eval", str(one), "--write"])
    assert bad.exit_code == 2 and "go with --calibrate" in bad.output
    bad = runner.invoke(cli, ["eval", str(one), "--calibrate", "--classes", "bike"])
    assert bad.exit_code == 1 and "cannot calibrate unknown classes ['bike']" in bad.output


@pytest.mark.parametrize("floor", [None, 0.4])
def test_replay_of_recorded_boxes_equals_a_full_run(tmp_path: Path, floor: float | None
                                                    ) -> None:
    """Boxes that come, go and change score, a rider, a zone with its own min_score: the
    replay gives the same alerts, at the same times and scores, as the edge run on the case.
    ``floor``: the class's min_score as a candidate default in the replay, and written on the
    rule's class for the full run (the fake model has no defaults of its own)."""
    rider = {"box": [115, 5, 125, 70], "label": "person", "score": 0.8}
    frames = {0: BIKES[:2], 3: [{**BIKES[0], "score": 0.42}, BIKES[1], BIKES[2]],
              5: [BIKES[0], {**BIKES[1], "score": 0.25}, BIKES[2], rider],
              8: [BIKES[1], BIKES[3]]}
    case = _case("mixed", 0.0, 0.25)
    zones = case["camera"]["zones"]
    zones.append({"id": "far", **_strip(0.5, 1.0, min_score=0.3)})
    if floor is not None:
        for zone in zones:
            zone["rules"] = [{"type": "illegal_parking",
                              "classes": {"two_wheeler": {"min_score": floor}}}]
    eval_set, folder = load_set(_set(tmp_path, [case], frames))
    full = report(eval_set, evaluate(eval_set, folder), {})["cases"][0]
    (rec,), _ = record(eval_set, folder, eval_set.cases, {}, {"two_wheeler": 0.2})
    defaults = {} if floor is None else {"two_wheeler": floor}
    score, raised = replay(eval_set, rec, defaults)
    assert full["alerts"], "a case that raises nothing compares nothing"
    assert [a.__dict__ for a in raised] == full["alerts"]
    assert score.summary() == full["events"]
    assert Sweeper(eval_set, [rec]).figures([rec], defaults).alerts == len(full["alerts"])
