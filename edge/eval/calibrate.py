"""``gridwatch eval SET --calibrate``: choose a model's per-class ``min_score`` defaults
(models/registry.yaml) on a labelled set, and say how far the choice can be trusted.

The detector runs **once** per frame of the set, at the lowest score any candidate could need
(``record``); a sweep then only replays the recorded boxes through the edge's own rules
(``edge.rules.CameraRules``, the tracker as ``edge.runner.camera_rules`` builds it, the boxes
cut at the ``edge.rules.detector_floor`` the edge would run at with those defaults) and scores
the alerts with the same ``score_events`` as ``gridwatch eval``. Cutting recorded boxes equals
running the detector at the higher threshold because greedy NMS never lets a lower box remove a
higher one; tests/test_eval_calibrate.py checks a replay against a full run.

Choice: coordinate descent from the current values, one class at a time over ``grid``, ranked
by the fewest must-stay-quiet intervals broken, then the most violations reported, then the
fewest false alarms. A class moves only when some value ranks strictly better than its current
one (a flat sweep, or a plateau the current value is on, says nothing: moving along it would
only fit the cases), and then to the highest of the best values: a higher threshold is further
from the detector's unstable low scores (for ``rider`` the lowest, whose safe side is low). A
handful of cases is easy to overfit, so every case is also held out in turn: values chosen
without it, scored on it alone. Those leave-one-case-out figures, not the in-sample ones, say
whether to keep the values.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from edge.capture import CameraCapture, Frame
from edge.config import OUR_CLASSES, EdgeConfig
from edge.detect import Detections, load_from_config
from edge.eval.boxes import ClassCounts, Labelled, above, read_boxes, score_boxes
from edge.eval.labels import Case, EvalSet, media_path
from edge.eval.metrics import EventScore, Raised, score_events
from edge.eval.run import detect_frame, edge_config, effective_edge
from edge.rules import FALLBACK_MIN_SCORE, CameraRules, RuleEvent, detector_floor
from edge.runner import camera_rules
from wire.models import model_min_scores

CALIBRATION_FORMAT = "gridwatch-calibration/1"
#: Candidate values of every class: 0.10 to 0.60 by 0.05 (plus each class's current value).
DEFAULT_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(11))
#: Coordinate-descent rounds at most (it stops earlier once a round changes nothing).
MAX_ROUNDS = 3

Defaults = dict[str, float]


@dataclass
class Recorded:
    """One case's detector output, recorded once at the set's lowest useful threshold."""

    case: Case
    #: The edge config the case runs under (cases with a camera), and each analysed frame
    #: with its boxes; the frame's pixels are dropped (the rules only read its size).
    config: EdgeConfig | None = None
    frames: list[tuple[Frame, Detections]] = field(default_factory=list)
    #: Labelled boxes of a still and the detector's boxes on it (cases with ``boxes``).
    truth: Labelled | None = None
    still: Detections | None = None


@dataclass(frozen=True)
class Figures:
    """Event figures over some cases at some defaults: what the choice compares."""

    violations: int = 0
    reported: int = 0
    alerts: int = 0
    false_alarms: int = 0
    quiet_broken: int = 0
    cases: int = 0
    cases_right: int = 0

    @classmethod
    def of(cls, scores: list[EventScore]) -> Figures:
        return cls(sum(s.violations for s in scores), sum(s.reported for s in scores),
                   sum(s.alerts for s in scores), sum(len(s.false_alarms) for s in scores),
                   sum(len(s.quiet_broken) for s in scores), len(scores),
                   sum(s.right for s in scores))

    def rank(self) -> tuple[int, int, int]:
        """Higher is better: quiet first, then recall, then fewer false alarms."""
        return (-self.quiet_broken, self.reported, -self.false_alarms)

    def no_worse_than(self, other: Figures) -> bool:
        """No worse on each of the three (not a trade of one for another)."""
        return (self.quiet_broken <= other.quiet_broken and self.reported >= other.reported
                and self.false_alarms <= other.false_alarms)

    def summary(self) -> dict[str, Any]:
        return {**self.__dict__,
                "recall": self.reported / self.violations if self.violations else None,
                "precision": ((self.alerts - self.false_alarms) / self.alerts
                              if self.alerts else None)}


def record(eval_set: EvalSet, folder: Path, cases: list[Case], overrides: dict[str, Any],
           lowest: Defaults) -> tuple[list[Recorded], float]:
    """Run the detector once on every frame of ``cases`` at the lowest threshold any
    candidate needs (``lowest``: every class at its smallest candidate value); returns the
    recordings and that threshold."""
    configs = {c.id: edge_config(eval_set, c, media_path(c.media, folder), overrides)
               for c in cases if c.camera}
    floors = [detector_floor(config, lowest) for config in configs.values()]
    if any(c.boxes is not None for c in cases):
        floors += [min(lowest.values(), default=FALLBACK_MIN_SCORE)]
    settings = effective_edge(eval_set, overrides).detector
    floor = round(min([settings.score_threshold, *floors]), 4)
    detector = load_from_config(settings.model_copy(update={"score_threshold": floor}))
    out = []
    for case in cases:
        rec = Recorded(case, configs.get(case.id))
        source = media_path(case.media, folder)
        camera = rec.config.cameras[0] if rec.config is not None else None
        if rec.config is not None:
            rec.frames = [(replace(f, image=np.broadcast_to(np.uint8(0), f.image.shape)),
                           detect_frame(detector, f.image, camera)) for f in _frames(rec.config)]
        if case.boxes is not None:
            image = cv2.imread(str(source))
            if image is None:
                raise ValueError(f"case {case.id}: boxes need a still image, cannot read "
                                 f"{source}")
            rec.truth = read_boxes(case.boxes, media_path(case.boxes.path, folder),
                                   image.shape[1], image.shape[0])
            rec.still = detect_frame(detector, image, camera)
        out.append(rec)
    return out, floor


def _frames(config: EdgeConfig) -> Iterator[Frame]:
    """Every frame the case's camera delivers, stamped with wall time as ``edge.runner`` does
    for a file replayed from ``replay_start``."""
    camera = config.cameras[0]
    stop, wakeup = threading.Event(), threading.Event()
    capture = CameraCapture(camera, stop, speed=0, wakeup=wakeup)
    capture.start()
    try:
        while True:
            wakeup.clear()
            frame = capture.queue.get_nowait()
            if frame is not None:
                if config.replay_start is not None and camera.is_file:
                    frame = replace(frame, wall=config.replay_start
                                    + timedelta(seconds=frame.ts))
                yield frame
            elif capture.finished.is_set() and not len(capture.queue):
                return
            else:
                wakeup.wait(0.2)
    finally:
        stop.set()
        capture.join(timeout=5)


def _raised(event: RuleEvent, eval_set: EvalSet) -> Raised:
    """The alert an event becomes, as ``gridwatch eval`` reads it back (``to_alert``)."""
    v = event.violation
    at = (max(v.last_wall, v.first_wall) - eval_set.replay_start).total_seconds()
    return Raised(event.zone.id, event.event_type, at, v.label,
                  round(min(max(v.score, 0.0), 1.0), 4))


def replay(eval_set: EvalSet, rec: Recorded, defaults: Defaults) -> tuple[EventScore, list[Raised]]:
    """A camera case's alerts with ``defaults`` as the model's per-class min_scores: the
    recorded boxes the detector would have kept at those defaults, through fresh rules."""
    assert rec.config is not None
    config = rec.config
    camera = config.cameras[0]
    floor = detector_floor(config, defaults)
    tracker = camera_rules(config, camera).tracker  # the motion tracker as the edge builds it
    rules = CameraRules(camera, ZoneInfo(config.timezone), tracker, defaults)
    raised = [_raised(e, eval_set) for frame, dets in rec.frames
              for e in rules.update(frame, above(dets, floor)) if e.kind == "new"]
    hours = len(rec.frames) / camera.sample_fps / 3600
    return score_events(rec.case.violations, rec.case.quiet, raised, hours,
                        eval_set.tolerance_s), raised


def box_counts(eval_set: EvalSet, recs: list[Recorded], defaults: Defaults
               ) -> dict[str, ClassCounts]:
    """Per class, the detector's figures on the labelled boxes, a box kept when it scores at
    least its class's min_score."""
    total: dict[str, ClassCounts] = {}
    for rec in recs:
        if rec.truth is None or rec.still is None or rec.case.boxes is None:
            continue
        dets = rec.still
        keep = [i for i, label in enumerate(dets.labels)
                if dets.scores[i] >= defaults.get(label, FALLBACK_MIN_SCORE)]
        kept = Detections(dets.xyxy[keep], dets.scores[keep], dets.class_ids[keep],
                          [dets.labels[i] for i in keep])
        classes = set(rec.case.boxes.classes.values())
        for label, counts in score_boxes(rec.truth, kept, eval_set.box_iou, classes).items():
            total.setdefault(label, ClassCounts()).add(counts)
    return total


class Sweeper:
    """Event figures of recorded cases at candidate defaults, each case replayed once per
    distinct defaults (the folds of leave-one-out revisit the same candidates)."""

    def __init__(self, eval_set: EvalSet, recs: list[Recorded]) -> None:
        self.eval_set = eval_set
        self.recs = [r for r in recs if r.config is not None]
        self._memo: dict[tuple[str, tuple[tuple[str, float], ...]], EventScore] = {}

    def score(self, rec: Recorded, defaults: Defaults) -> EventScore:
        key = (rec.case.id, tuple(sorted(defaults.items())))
        if key not in self._memo:
            self._memo[key] = replay(self.eval_set, rec, defaults)[0]
        return self._memo[key]

    def figures(self, recs: list[Recorded], defaults: Defaults) -> Figures:
        return Figures.of([self.score(r, defaults) for r in recs])

    def choose(self, recs: list[Recorded], start: Defaults, classes: list[str],
               grid: tuple[float, ...]) -> Defaults:
        """Coordinate descent from ``start`` (see the module's docstring)."""
        current = dict(start)
        for _ in range(MAX_ROUNDS):
            changed = False
            for name in classes:
                rows = {v: self.figures(recs, {**current, name: v}).rank()
                        for v in sorted({*grid, current[name]})}
                top = max(rows.values())
                if rows[current[name]] == top:
                    continue  # no value does better than the current one
                # Among the best, the more conservative: a higher class score; for ``rider``
                # a lower one (more people make a two-wheeler ridden, so fewer alerts).
                sign = -1 if name == "rider" else 1
                current[name] = max((v for v, r in rows.items() if r == top),
                                    key=lambda v: sign * v)
                changed = True
            if not changed:
                break
        return current


@dataclass
class Calibration:
    """What ``calibrate`` found; ``report`` turns it into the ``--json`` document."""

    model: str
    classes: list[str]
    grid: tuple[float, ...]
    floor: float
    current: Defaults
    chosen: Defaults
    before: Figures
    in_sample: Figures
    held_out: Figures
    #: Per class: (value, figures, box counts of that class or None) with the others chosen.
    sweeps: dict[str, list[tuple[float, Figures, ClassCounts | None]]]
    #: Per held-out case: the values chosen without it.
    folds: dict[str, Defaults]
    boxes_before: dict[str, ClassCounts]
    boxes_after: dict[str, ClassCounts]

    @property
    def keep(self) -> bool:
        """Whether the chosen values may replace the current ones: chosen without each case,
        they did no worse on it than the current values, and better on some count. Held-out
        figures equal to the current ones mean every gain rests on a single case (held out,
        it disappears): a change the set does not support beyond the case it fits."""
        return (self.chosen != self.current and self.held_out.no_worse_than(self.before)
                and self.held_out.rank() != self.before.rank())


def calibrate(eval_set: EvalSet, folder: Path, *, overrides: dict[str, Any] | None = None,
              only: list[str] | None = None, quick: bool = False,
              classes: list[str] | None = None, grid: tuple[float, ...] = DEFAULT_GRID
              ) -> Calibration:
    """Choose the model's per-class min_score defaults on the set (see the module's
    docstring). ``classes``: those to sweep; default the model's registry entry's, or when it
    has none, every class a rule of the set watches."""
    overrides = overrides or {}
    cases = [c for c in eval_set.cases if (not only or c.id in only) and (not quick or c.quick)]
    unknown = sorted(set(only or ()) - {c.id for c in eval_set.cases})
    if unknown:
        raise ValueError(f"no case {unknown} in set {eval_set.name}")
    if not grid:
        raise ValueError("the grid of candidate values is empty")
    model = effective_edge(eval_set, overrides).detector.model
    current = model_min_scores(model)
    if classes is None:
        classes = list(current) or sorted({
            name for c in cases if c.camera
            for zone in c.camera_config("x").zones for rule in zone.rules
            for name in (rule.classes or {})})
    unknown = sorted(set(classes) - OUR_CLASSES - {"rider"})
    if unknown:
        raise ValueError(f"cannot calibrate unknown classes {unknown}; choose from "
                         f"{sorted(OUR_CLASSES | {'rider'})}")
    start = {**current, **{c: current.get(c, FALLBACK_MIN_SCORE) for c in classes}}
    lowest = {**start, **{c: min(*grid, start[c]) for c in classes}}
    recs, floor = record(eval_set, folder, cases, overrides, lowest)
    sweeper = Sweeper(eval_set, recs)
    events = sweeper.recs
    chosen = sweeper.choose(events, start, classes, grid)
    folds = {r.case.id: sweeper.choose([o for o in events if o is not r], start, classes, grid)
             for r in events}
    held_out = Figures.of([sweeper.score(r, folds[r.case.id]) for r in events])
    sweeps = {}
    for name in classes:
        rows = []
        for v in sorted({*grid, chosen[name]}):
            candidate = {**chosen, name: v}
            rows.append((v, sweeper.figures(events, candidate),
                         box_counts(eval_set, recs, candidate).get(name)))
        sweeps[name] = rows
    return Calibration(model, classes, grid, floor, start, chosen,
                       sweeper.figures(events, start), sweeper.figures(events, chosen),
                       held_out, sweeps, folds, box_counts(eval_set, recs, start),
                       box_counts(eval_set, recs, chosen))


def report(eval_set: EvalSet, cal: Calibration) -> dict[str, Any]:
    """The machine-readable calibration (``--json``)."""
    return {
        "format": CALIBRATION_FORMAT, "set": eval_set.name, "model": cal.model,
        "date": datetime.now(UTC).date().isoformat(), "classes": cal.classes,
        "grid": list(cal.grid), "recorded_at": cal.floor, "current": cal.current,
        "chosen": cal.chosen, "keep": cal.keep,
        "figures": {"current": cal.before.summary(), "in_sample": cal.in_sample.summary(),
                    "leave_one_case_out": cal.held_out.summary()},
        "folds": cal.folds,
        "boxes": {"current": {k: v.summary() for k, v in sorted(cal.boxes_before.items())},
                  "chosen": {k: v.summary() for k, v in sorted(cal.boxes_after.items())}},
        "sweeps": {name: [{"value": v, **f.summary(),
                           "boxes": None if b is None else b.summary()} for v, f, b in rows]
                   for name, rows in cal.sweeps.items()},
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_calibration(doc: dict[str, Any]) -> str:
    """The calibration as tables for people: each class's sweep, the choice, the figures."""
    title = (f"calibration of {doc['model']} on set {doc['set']} (detector recorded at "
             f"{doc['recorded_at']:g}; each value with the other classes at their chosen "
             "values)")
    lines = [title]
    for name, rows in doc["sweeps"].items():
        lines.append(f"  {name:<12} {'value':>5} {'reported':>8} {'alerts':>6} {'false':>5} "
                     f"{'quiet broken':>12} {'box recall/prec':>15}")
        for r in rows:
            mark = "*" if r["value"] == doc["chosen"][name] else " "
            b = r["boxes"]
            box = "-" if b is None else f"{_pct(b['recall'])}/{_pct(b['precision'])}"
            lines.append(f"  {'':<12}{mark}{r['value']:>5.2f} "
                         f"{r['reported']:>4}/{r['violations']:<3} {r['alerts']:>6} "
                         f"{r['false_alarms']:>5} {r['quiet_broken']:>12} {box:>15}")
    lines.append(f"  {'class':<12} {'current':>7} {'chosen':>6}  chosen without each case")
    for name in doc["classes"]:
        spread = Counter(f[name] for f in doc["folds"].values())
        folds = ", ".join(f"{v:g} x{n}" for v, n in sorted(spread.items()))
        lines.append(f"  {name:<12} {doc['current'][name]:>7.2f} {doc['chosen'][name]:>6.2f}"
                     f"  {folds}")
    lines.append(f"  {'figures':<20} {'viol':>4} {'reported':>8} {'alerts':>6} {'false':>5} "
                 f"{'quiet broken':>12} {'recall':>6} {'prec':>5} {'right':>6}")
    names = {"current": "current values", "in_sample": "chosen, in-sample",
             "leave_one_case_out": "leave-one-case-out"}
    for key, name in names.items():
        f = doc["figures"][key]
        lines.append(f"  {name:<20} {f['violations']:>4} {f['reported']:>8} {f['alerts']:>6} "
                     f"{f['false_alarms']:>5} {f['quiet_broken']:>12} {_pct(f['recall']):>6} "
                     f"{_pct(f['precision']):>5} {f['cases_right']:>3}/{f['cases']:<2}")
    for key in ("current", "chosen"):
        boxes = doc["boxes"][key]
        if boxes:
            lines.append(f"  boxes at {key} values: " + ", ".join(
                f"{k} {_pct(v['recall'])}/{_pct(v['precision'])}" for k, v in boxes.items()))
    held, now = doc["figures"]["leave_one_case_out"], doc["figures"]["current"]
    if doc["chosen"] == doc["current"]:
        lines.append("verdict: the current values stay (nothing better found)")
    elif doc["keep"]:
        lines.append("verdict: the chosen values did better held out than the current ones")
    elif all(held[k] == now[k] for k in ("reported", "false_alarms", "quiet_broken")):
        lines.append("verdict: keep the current values: held out, the chosen values do no "
                     "better than them (each gain rests on the one case it fits)")
    else:
        lines.append("verdict: keep the current values: chosen without each case, the values "
                     "did worse on it than the current ones (overfitting)")
    return "\n".join(lines)
