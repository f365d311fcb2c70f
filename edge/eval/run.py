"""``gridwatch eval SET``: run the real edge pipeline offline on every case of a labelled set
and score what it raised (``edge.eval.metrics``) and what its detector found (``edge.eval.boxes``).

Each case is one ``edge.runner.run`` with one file camera, no broker, speed 0 and a recorder
folder as the only output: the same capture, detector, tracker, rules and evidence code as a
deployed edge, so a figure here is a figure of the product, not of a re-implementation.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import yaml

from edge.config import CameraConfig, EdgeConfig
from edge.detect import Detections, load_from_config
from edge.detect.crops import submit_frame
from edge.detect.crops import windows as crop_windows
from edge.detect.pool import InlineDetector
from edge.eval.boxes import ClassCounts, above, read_boxes, score_boxes
from edge.eval.labels import Case, EvalSet, deep_merge, media_path
from edge.eval.metrics import EventScore, Raised, score_events
from edge.publish import read_recorded
from edge.runner import run

REPORT_FORMAT = "gridwatch-eval-report/1"


@dataclass
class CaseResult:
    case: Case
    events: EventScore | None = None
    alerts: list[Raised] = field(default_factory=list)
    frames: int = 0
    boxes: dict[str, ClassCounts] | None = None
    #: Box figures at each threshold of ``--box-thresholds``.
    sweep: dict[float, dict[str, ClassCounts]] = field(default_factory=dict)
    seconds: float = 0.0


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY.PATH=VALUE`` pairs (values read as YAML) as one nested mapping; ``camera.*`` keys
    apply to every case's camera, the others to the edge config (``detector.imgsz=640``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not KEY=VALUE (e.g. detector.imgsz=640)")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r} conflicts with another")
        value = yaml.safe_load(text)
        # YAML 1.1 reads off/on/yes/no as booleans; here they are words (crops.mode=off).
        node[leaf] = text if isinstance(value, bool) and text.lower() not in (
            "true", "false") else value
    return out


def edge_config(eval_set: EvalSet, case: Case, source: Path,
                overrides: dict[str, Any]) -> EdgeConfig:
    """The edge config a case runs under: the set's ``edge`` keys and the command line's
    overrides over the shipped defaults, one camera, no broker, no state on disk."""
    edge = deep_merge(eval_set.edge, {k: v for k, v in overrides.items() if k != "camera"})
    camera = case.camera_config(str(source), overrides.get("camera"))
    return EdgeConfig.model_validate({
        **edge, "edge_id": "eval", "replay_start": eval_set.replay_start,
        "timezone": eval_set.timezone, "accept_pushed_config": False,
        "cameras": [camera.model_dump()]})


def detect_frame(detector: Any, image: Any, camera: CameraConfig | None) -> Detections:
    """The detector on a frame (a labelled still, or a clip's frame for ``--calibrate``) as
    the runner submits it: with the camera's zone crops when the case has a camera that has
    them on."""
    inline = InlineDetector(detector)
    if camera is None:
        return inline.submit(image).result()
    size = (image.shape[1], image.shape[0])
    rects = crop_windows(camera.crops, camera.zones, size, inline.input_side)
    return submit_frame(inline, image, rects, full_frame=camera.crops.full_frame).result()


def run_case(eval_set: EvalSet, folder: Path, case: Case, overrides: dict[str, Any],
             detector: Any | None, thresholds: tuple[float, list[float]] = (0.0, [])
             ) -> CaseResult:
    """One case: the pipeline when it has a camera, the detector on its still when it has
    boxes (``detector`` is loaded once for the set by the caller). ``thresholds``: the
    configured detector threshold and the sweep's, when the detector runs below them."""
    started = time.monotonic()
    result = CaseResult(case)
    source = media_path(case.media, folder)
    config = edge_config(eval_set, case, source, overrides) if case.camera else None
    if config is not None:
        camera = config.cameras[0]
        with tempfile.TemporaryDirectory(prefix="gridwatch-eval-") as out:
            config.state_dir = Path(out) / "state"  # as deployed: open violations on disk
            stats = run(config, until_eof=True, speed=0, record_dir=Path(out) / "alerts",
                        mqtt=False)
            alerts = read_recorded(Path(out) / "alerts")
        result.frames = stats.frames_analysed
        result.alerts = [Raised(a.zone_id, a.event_type,
                                (a.last_seen_at - eval_set.replay_start).total_seconds(),
                                a.label, a.score)
                         for a in alerts if a.kind == "new"]
        hours = stats.frames_analysed / camera.sample_fps / 3600
        result.events = score_events(case.violations, case.quiet, result.alerts, hours,
                                     eval_set.tolerance_s)
    if case.boxes is not None and detector is not None:
        image = cv2.imread(str(source))
        if image is None:
            raise ValueError(f"case {case.id}: boxes need a still image, cannot read {source}")
        height, width = image.shape[:2]
        truth = read_boxes(case.boxes, media_path(case.boxes.path, folder), width, height)
        dets = detect_frame(detector, image, config.cameras[0] if config is not None else None)
        classes = set(case.boxes.classes.values())
        configured, sweep = thresholds
        result.boxes = score_boxes(truth, above(dets, configured), eval_set.box_iou, classes)
        result.sweep = {t: score_boxes(truth, above(dets, t), eval_set.box_iou, classes)
                        for t in sweep}
    result.seconds = time.monotonic() - started
    return result


def effective_edge(eval_set: EvalSet, overrides: dict[str, Any]) -> EdgeConfig:
    """The edge settings every case shares (the set's, then the command line's)."""
    edge = deep_merge(eval_set.edge, {k: v for k, v in overrides.items() if k != "camera"})
    return EdgeConfig.model_validate({**edge, "edge_id": "eval",
                                      "cameras": [{"id": "x", "source": "x"}]})


def evaluate(eval_set: EvalSet, folder: Path, *, overrides: dict[str, Any] | None = None,
             only: list[str] | None = None, quick: bool = False,
             box_thresholds: list[float] | None = None) -> list[CaseResult]:
    """Every chosen case of the set (``only``: these ids; ``quick``: the cases marked quick).
    ``box_thresholds`` adds the box figures at each of these detector thresholds (one
    detector run per still, at the lowest of them and the configured one)."""
    overrides = overrides or {}
    cases = [c for c in eval_set.cases
             if (not only or c.id in only) and (not quick or c.quick)]
    unknown = sorted(set(only or ()) - {c.id for c in eval_set.cases})
    if unknown:
        raise ValueError(f"no case {unknown} in set {eval_set.name}")
    detector = None
    config = effective_edge(eval_set, overrides).detector
    sweep = sorted(set(box_thresholds or ()))
    if any(c.boxes is not None for c in cases):
        lowest = min([config.score_threshold, *sweep])
        detector = load_from_config(config.model_copy(update={"score_threshold": lowest}))
    return [run_case(eval_set, folder, case, overrides, detector,
                     (config.score_threshold, sweep)) for case in cases]


def report(eval_set: EvalSet, results: list[CaseResult], overrides: dict[str, Any]
           ) -> dict[str, Any]:
    """The machine-readable report (``--json``); ``total`` and ``boxes`` are what a recorded
    baseline is compared on."""
    total = EventScore()
    boxes: dict[str, ClassCounts] = {}
    sweep: dict[float, dict[str, ClassCounts]] = {}
    cases = []
    for r in results:
        entry: dict[str, Any] = {"id": r.case.id, "frames": r.frames,
                                 "seconds": round(r.seconds, 2)}
        if r.events is not None:
            total.add(r.events)
            entry |= {"right": r.events.right, "events": r.events.summary(),
                      "alerts": [a.__dict__ for a in r.alerts],
                      "missed": [v.model_dump() for v in r.events.missed],
                      "false_alarms": [a.__dict__ for a in r.events.false_alarms]}
        if r.boxes is not None:
            entry["boxes"] = {k: v.summary() for k, v in sorted(r.boxes.items())}
            for label, counts in r.boxes.items():
                boxes.setdefault(label, ClassCounts()).add(counts)
        for t, per_class in r.sweep.items():
            for label, counts in per_class.items():
                sweep.setdefault(t, {}).setdefault(label, ClassCounts()).add(counts)
        cases.append(entry)
    scored = [r for r in results if r.events is not None]
    return {
        "format": REPORT_FORMAT, "set": eval_set.name, "overrides": overrides,
        "detector": effective_edge(eval_set, overrides).detector.model_dump(mode="json"),
        "total": {**total.summary(), "cases": len(scored),
                  "cases_right": sum(r.events.right for r in scored if r.events)},
        "boxes": {k: v.summary() for k, v in sorted(boxes.items())},
        "box_iou": eval_set.box_iou,
        "box_sweep": {f"{t:g}": {k: v.summary() for k, v in sorted(per_class.items())}
                      for t, per_class in sorted(sweep.items())},
        "cases": cases,
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(doc: dict[str, Any]) -> str:
    """The report as a table for people."""
    head = (f"{'case':<28} {'viol':>4} {'rep':>4} {'alerts':>6} {'false':>5} {'prec':>5} "
            f"{'recall':>6} {'fa/cam-h':>8} {'tta s':>6}  right")
    lines = [f"set {doc['set']}" + (f"  overrides {doc['overrides']}" if doc["overrides"]
                                    else ""), head]

    def row(name: str, e: dict[str, Any], right: str) -> str:
        tta = e["time_to_alert_s"]
        return (f"{name:<28} {e['violations']:>4} {e['reported']:>4} {e['alerts']:>6} "
                f"{e['false_alarms']:>5} {_fmt(e['precision']):>5} {_fmt(e['recall']):>6} "
                f"{_fmt(e['false_alarms_per_camera_hour'], 0):>8} "
                f"{_fmt(tta and tta['mean'], 1):>6}  {right}")

    for case in doc["cases"]:
        if "events" in case:
            lines.append(row(case["id"], case["events"], "yes" if case["right"] else "NO"))
    total = doc["total"]
    if total["cases"]:
        lines.append(row("total", total, f"{total['cases_right']}/{total['cases']}"))
        for case in doc["cases"]:
            for v in case.get("missed", []):
                lines.append(f"  missed  {case['id']}: {v['zone']} {v['event_type']} "
                             f"{v['start']:g}-{v['end']:g}s {v['note']}")
            for a in case.get("false_alarms", []):
                lines.append(f"  false   {case['id']}: {a['zone']} {a['event_type']} at "
                             f"{a['at']:.1f}s ({a['label']} {a['score']:.2f})")
    if doc["boxes"]:
        lines.append(f"detector on labelled boxes (IoU {doc['box_iou']}):")
        lines.append(f"  {'class':<12} {'labelled':>8} {'found':>6} {'false':>6} "
                     f"{'recall':>6} {'prec':>5}")
        for label, c in doc["boxes"].items():
            lines.append(f"  {label:<12} {c['labelled']:>8} {c['found']:>6} {c['false']:>6} "
                         f"{_fmt(c['recall']):>6} {_fmt(c['precision']):>5}")
    if doc.get("box_sweep"):
        lines.append("recall / precision by detector threshold:")
        lines.append(f"  {'class':<12} " + " ".join(f"{t:>11}" for t in doc["box_sweep"]))
        for label in doc["boxes"]:
            cells = [doc["box_sweep"][t].get(label, {}) for t in doc["box_sweep"]]
            lines.append(f"  {label:<12} " + " ".join(
                f"{_fmt(c.get('recall')):>5}/{_fmt(c.get('precision')):<5}" for c in cells))
    return "\n".join(lines)


#: Figures compared with a recorded baseline: (key, True when higher is better).
GATED = (("recall", True), ("precision", True), ("false_alarms", False),
         ("cases_right", True))


def _violation(v: dict[str, Any]) -> str:
    return f"{v['zone']} {v['event_type']} {v['start']:g}-{v['end']:g}s"


def regressions(doc: dict[str, Any], baseline: dict[str, Any], slack: float = 1e-9
                ) -> list[str]:
    """What got worse than a recorded report: the totals in ``GATED``, each case's false
    alarms and every violation it reported (a total can hide one violation lost for another
    gained), and each class's box recall (not box precision: more boxes found at some false
    ones is a trade the event figures judge). An empty list means no worse anywhere."""
    ids, old_ids = ([c["id"] for c in d["cases"]] for d in (doc, baseline))
    if ids != old_ids:  # totals over other cases compare nothing
        return [f"cases differ from the recorded report's: {sorted(set(ids) ^ set(old_ids))}"]
    worse = []
    pairs = [(f"total {k}", doc["total"].get(k), baseline["total"].get(k), up)
             for k, up in GATED]
    for label, old in baseline.get("boxes", {}).items():
        new = doc["boxes"].get(label, {})
        pairs.append((f"boxes {label} recall", new.get("recall"), old.get("recall"), True))
    for case, old_case in zip(doc["cases"], baseline["cases"], strict=True):
        if "events" not in old_case:
            continue
        lost = ({_violation(v) for v in case["missed"]}
                - {_violation(v) for v in old_case["missed"]})
        worse += [f"case {case['id']}: {v} no longer reported" for v in sorted(lost)]
        pairs.append((f"case {case['id']} false_alarms", case["events"]["false_alarms"],
                      old_case["events"]["false_alarms"], False))
    for name, new, old, up in pairs:
        if old is None:
            continue
        if new is None or (new < old - slack if up else new > old + slack):
            worse.append(f"{name}: {new} (recorded {old})")
    return worse
