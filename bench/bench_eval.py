"""Detection quality on the project's labelled set: ``gridwatch eval eval/`` on every case, at
the shipped defaults and with the detector threshold at the 0.2 that models/README.md suggests,
then ``gridwatch eval eval/ --calibrate`` (the model's per-class min_score defaults chosen on
the set, with leave-one-case-out figures; nothing is written).

    .venv/bin/python -m bench eval      (env BENCH_EVAL_SET: another set; BENCH_EVAL_ARGS: more
                                         --set style overrides, space separated, for each run)

Prints the per-case table of each variant and writes every figure to ``results.json``; the
figures recorded in docs/detection.md come from here.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, write_results
from edge.eval import calibrate
from edge.eval.labels import load_set
from edge.eval.run import evaluate, format_report, parse_overrides, report

SET = Path(os.environ.get("BENCH_EVAL_SET", ROOT / "eval" / "set.yaml"))
EXTRA = os.environ.get("BENCH_EVAL_ARGS", "").split()
VARIANTS = [("shipped defaults", []), ("detector threshold 0.2", ["detector.score_threshold=0.2"])]


def main() -> None:
    eval_set, folder = load_set(SET)
    results = []
    for name, overrides in VARIANTS:
        extra = parse_overrides(overrides + EXTRA)
        t0 = time.monotonic()
        doc = report(eval_set, evaluate(eval_set, folder, overrides=extra), extra)
        print(f"\n--- {name} ({time.monotonic() - t0:.0f}s)\n{format_report(doc)}", flush=True)
        results.append({"variant": name, **doc})
    extra = parse_overrides(EXTRA)
    t0 = time.monotonic()
    doc = calibrate.report(eval_set, calibrate.calibrate(eval_set, folder, overrides=extra))
    print(f"\n--- calibration ({time.monotonic() - t0:.0f}s)\n"
          f"{calibrate.format_calibration(doc)}", flush=True)
    results.append({"variant": "calibration", **doc})
    write_results(Path(tempfile.mkdtemp(prefix="bench-eval-")), results)


if __name__ == "__main__":
    main()
