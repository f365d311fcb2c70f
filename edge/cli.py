"""``gridwatch edge ...``: run an edge worker or check its configuration.

Exit codes follow the project's CLI rule: 0 ok, 1 failure, 2 bad usage (click's own).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge.config import ConfigError, load_config
from edge.yaml_lines import compose, line_of
from wire.errors import key_path

if TYPE_CHECKING:
    from edge.eval.labels import EvalSet


@click.group("edge")
def edge_group() -> None:
    """Edge worker: cameras -> detector -> zone rules -> MQTT alerts."""


@edge_group.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-sources", is_flag=True,
              help="Do not open the camera sources (by default each must deliver a frame "
                   "within its timeout_s).")
def check_config(config_file: Path, no_sources: bool) -> None:
    """Validate CONFIG_FILE and say what is wrong, with the line and key path; then check
    that the detector's model is known and its weights are there, that every rule watches a
    class the model can output, and that every camera source delivers a frame. Exit 0 when
    all holds, 1 with one line per problem."""
    from edge.checks import check_rule_classes, check_sources
    from edge.detect import check_model

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    problems: list[tuple[tuple[str | int, ...], str]] = [
        (("detector", key), text) for key, text in check_model(config.detector)]
    problems += check_rule_classes(config)
    if not no_sources:
        problems += check_sources(config)
    if problems:
        root = compose(config_file.read_text(encoding="utf-8"))
        click.echo("\n".join(f"{config_file}:{line_of(root, loc)}: {key_path(loc)}: {text}"
                             for loc, text in problems), err=True)
        sys.exit(1)
    zones = sum(len(c.zones) for c in config.cameras)
    sources = "sources not opened" if no_sources else "every source delivered a frame"
    click.echo(f"OK {config_file}: edge {config.edge_id}, {len(config.cameras)} cameras, "
               f"{zones} zones, model {config.detector.model}, {sources}")


@edge_group.command("preview")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("preview"), show_default=True,
              help="Folder for <camera_id>.png and <camera_id>.json.")
@click.option("--seconds", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Stream time to watch per camera (motion and dwell need a few frames).")
@click.option("--frames", type=click.IntRange(min=1),
              help="Stop after this many frames per camera (sooner than --seconds).")
@click.option("--camera", "cameras", multiple=True, help="Only this camera id (repeatable).")
def preview_command(config_file: Path, out_dir: Path, seconds: float, frames: int | None,
                    cameras: tuple[str, ...]) -> None:
    """Draw what the edge sees: per camera, the last of a few seconds of frames with the
    zones, every detection with class and score, and what the rules made of it (qualifying,
    building dwell, moving, ridden, below threshold ...), through the same capture, detector,
    tracker and rules as `edge run`. Exit 1 when a camera gave no frame."""
    from edge.checks import quiet
    from edge.preview import plural, preview

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    unknown = sorted(set(cameras) - {c.id for c in config.cameras})
    if unknown:
        raise click.BadParameter(f"no camera {unknown} in {config_file}", param_hint="--camera")
    try:
        with quiet("edge.capture", logging.WARNING):
            results = preview(config, out_dir, frames=frames, seconds=seconds, cameras=cameras)
    except (FileNotFoundError, KeyError) as exc:  # missing weights, unknown model name
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for r in results:
        if r.error is not None:
            click.echo(f"{r.camera.id}: no picture: {r.error}", err=True)
            continue
        counts: dict[str, int] = {}
        for view in r.detections:
            counts[view.status] = counts.get(view.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no detections"
        click.echo(f"{r.camera.id}: {r.png} ({plural(r.frames, 'frame')}; {summary})")
    if any(r.error is not None for r in results):
        sys.exit(1)


@edge_group.command("run")
@click.option("--config", "config_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Edge YAML file.")
@click.option("--until-eof", is_flag=True,
              help="Stop once every file camera has reached its end (loop: false).")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Replay speed for file cameras; 0 = as fast as possible.")
@click.option("--record", "record_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write alerts.jsonl and snapshot JPEGs to this folder.")
@click.option("--no-mqtt", is_flag=True, help="Do not connect to the broker (offline replay).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run_command(config_file: Path, until_eof: bool, speed: float, record_dir: Path | None,
                no_mqtt: bool, verbose: bool) -> None:
    """Run the edge worker until Ctrl-C / SIGTERM (or the end of the files)."""
    from edge.runner import run  # loads OpenCV and ONNX Runtime; check-config does not need them

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    try:
        stats = run(config, until_eof=until_eof, speed=speed, record_dir=record_dir,
                    mqtt=not no_mqtt, config_dir=config_file.resolve().parent)
    except (FileNotFoundError, KeyError) as exc:  # missing weights, unknown model name
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"analysed {stats.frames_analysed} frames, dropped {stats.frames_dropped}, "
               f"sent {stats.alerts_sent} alerts")


def _emit(doc: dict[str, Any], json_path: Path | None,
          as_text: Callable[[dict[str, Any]], str]) -> None:
    """The report as text, and as JSON in ``json_path`` too; ``-``: only the JSON, on stdout
    (for pipes)."""
    if json_path is not None and str(json_path) == "-":
        click.echo(json.dumps(doc, indent=1))
        return
    click.echo(as_text(doc))
    if json_path is not None:
        json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


@click.command("eval")
@click.argument("set_path", metavar="SET", type=click.Path(exists=True, path_type=Path))
@click.option("--case", "cases", multiple=True, help="Only this case id (repeatable).")
@click.option("--quick", is_flag=True, help="Only the cases marked quick: true.")
@click.option("--detector-threshold", type=click.FloatRange(0, 1),
              help="Override detector.score_threshold for every case.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override an edge config key (detector.imgsz=640, motion.tracker=none) or, "
                   "as camera.KEY, every case's camera key (camera.sample_fps=2). Repeatable.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file ('-': JSON on stdout instead).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A recorded --json report: exit 1 if any gated figure is worse.")
@click.option("--box-thresholds", metavar="T1,T2,...",
              help="Also the detector's per-class figures at these thresholds (calibration).")
@click.option("--model", help="Override detector.model (a name in models/registry.yaml).")
@click.option("--calibrate", is_flag=True,
              help="Instead of one report: choose the model's per-class min_score defaults "
                   "on SET (detector run once, the rules replayed per candidate), with "
                   "leave-one-case-out figures (docs/detection.md, Calibration).")
@click.option("--grid", metavar="V1,V2,...",
              help="Candidate values for --calibrate (default 0.1 to 0.6 by 0.05).")
@click.option("--classes", "classes_text", metavar="C1,C2,...",
              help="Classes to calibrate (default: the model's min_score keys).")
@click.option("--write", is_flag=True,
              help="With --calibrate: write the chosen values into the model's min_score "
                   "line of the registry, only if they did no worse held out.")
@click.option("--registry", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The registry file --write edits (default models/registry.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="The edge's own log lines too.")
def eval_command(set_path: Path, cases: tuple[str, ...], quick: bool,
                 detector_threshold: float | None, overrides: tuple[str, ...],
                 json_path: Path | None, baseline: Path | None, box_thresholds: str | None,
                 model: str | None, calibrate: bool, grid: str | None,
                 classes_text: str | None, write: bool, registry: Path | None,
                 verbose: bool) -> None:
    """Run the edge offline on the labelled set SET (a YAML file or a folder with set.yaml)
    and print event precision, recall, false alarms per camera-hour, time to alert, and the
    detector's per-class recall/precision on labelled boxes (docs/detection.md)."""
    from edge.eval.labels import load_set
    from edge.eval.run import evaluate, format_report, parse_overrides, regressions, report

    if not calibrate and (write or registry or grid or classes_text):
        raise click.UsageError("--write, --registry, --grid and --classes go with --calibrate")
    if calibrate and (baseline or box_thresholds):
        raise click.UsageError("--baseline and --box-thresholds do not go with --calibrate")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("edge").setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        eval_set, folder = load_set(set_path)
        extra = parse_overrides(list(overrides))
        if detector_threshold is not None:
            extra.setdefault("detector", {})["score_threshold"] = detector_threshold
        if model is not None:
            extra.setdefault("detector", {})["model"] = model
        if calibrate:
            _calibrate(eval_set, folder, extra, list(cases), quick, grid, classes_text,
                       json_path, registry, write)
            return
        sweep = [float(t) for t in box_thresholds.split(",")] if box_thresholds else None
        results = evaluate(eval_set, folder, overrides=extra, only=list(cases), quick=quick,
                           box_thresholds=sweep)
    except (ConfigError, ValueError, FileNotFoundError, KeyError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    doc = report(eval_set, results, extra)
    _emit(doc, json_path, format_report)
    if baseline is not None:
        worse = regressions(doc, json.loads(baseline.read_text(encoding="utf-8")))
        for line in worse:
            click.echo(f"worse than {baseline}: {line}", err=True)
        if worse:
            sys.exit(1)


def _calibrate(eval_set: EvalSet, folder: Path, extra: dict[str, Any], cases: list[str],
               quick: bool, grid: str | None, classes_text: str | None,
               json_path: Path | None, registry: Path | None, write: bool) -> None:
    """``eval --calibrate``: sweep, print, and with ``--write`` edit the registry in place."""
    from edge.eval.calibrate import DEFAULT_GRID, calibrate, format_calibration, report
    from edge.eval.registry_write import set_min_scores
    from wire.models import REGISTRY_FILE

    try:
        values = (tuple(sorted({round(float(v), 4) for v in grid.split(",")}))
                  if grid else DEFAULT_GRID)
    except ValueError:
        raise click.BadParameter(f"{grid!r} is not a list of numbers",
                                 param_hint="--grid") from None
    if any(not 0 <= v <= 1 for v in values):
        raise click.BadParameter("values must lie in 0..1", param_hint="--grid")
    classes = [c.strip() for c in classes_text.split(",") if c.strip()] if classes_text else None
    cal = calibrate(eval_set, folder, overrides=extra, only=cases, quick=quick,
                    classes=classes, grid=values)
    doc = report(eval_set, cal)
    _emit(doc, json_path, format_calibration)
    if not write:
        return
    if not cal.keep:
        click.echo("--write: registry left as it is (see the verdict)", err=True)
        sys.exit(1)
    f, h = doc["figures"]["in_sample"], doc["figures"]["leave_one_case_out"]
    b = doc["figures"]["current"]
    changed = ", ".join(f"{k} {v:g}" for k, v in cal.current.items() if cal.chosen[k] != v)
    note = [(f"on set {eval_set.name}, {doc['date']}, grid {min(values):g}-{max(values):g}: "
             f"reported {b['reported']}/{b['violations']} -> {f['reported']} in-sample, "
             f"{h['reported']} leave-one-case-out;"),
            (f"false alarms {b['false_alarms']} -> {f['false_alarms']} ({h['false_alarms']} "
             f"held out); quiet broken {b['quiet_broken']} -> {f['quiet_broken']} "
             f"({h['quiet_broken']} held out); was {changed}")]
    path = registry or REGISTRY_FILE
    set_min_scores(path, cal.model, cal.chosen, note)
    click.echo(f"wrote {cal.model}.min_score to {path}")
