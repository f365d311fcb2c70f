"""Evaluate detectors on a YOLO-format validation set: precision, recall, mAP50, mAP50-95.

    python models/scripts/evaluate.py runs/ebike/train/weights/best.pt \
        runs/ebike/train/weights/best_openvino_model --data ../shared/media/ebike_indoor_cctv_voc

Each model (``.pt``, ``.onnx`` or OpenVINO folder) runs ultralytics' ``val`` on --data (a
dataset YAML or a labelled image folder with classes.txt); one table row per model and class.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dataset_yaml, ultralytics


def evaluate(weights: str | Path, data: str | Path, *, imgsz: int = 640, batch: int = 1,
             conf: float = 0.001, iou: float = 0.7, split: str = "val") -> list[dict]:
    """Rows of {model, class, images, instances, precision, recall, map50, map50_95}; the
    first row of each model is class "all"."""
    ultralytics(verbose=False)
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(prefix="gridwatch-eval-") as tmp:
        yolo = YOLO(str(weights), task="detect")
        metrics = yolo.val(data=str(dataset_yaml(data, Path(tmp))), imgsz=imgsz, batch=batch,
                           conf=conf, iou=iou, split=split, device="cpu", plots=False,
                           verbose=False, project=tmp, name="val", workers=0)
    box = metrics.box
    name = Path(weights).name
    counts = metrics.nt_per_class if getattr(metrics, "nt_per_class", None) is not None else None
    rows = [{"model": name, "class": "all", "instances": int(counts.sum()) if counts is not None
             else -1, "precision": float(box.mp), "recall": float(box.mr),
             "map50": float(box.map50), "map50_95": float(box.map)}]
    for i, cls in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        rows.append({"model": name, "class": metrics.names[int(cls)],
                     "instances": int(counts[int(cls)]) if counts is not None else -1,
                     "precision": float(p), "recall": float(r), "map50": float(ap50),
                     "map50_95": float(ap)})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<28} {'class':<14} {'inst':>5} {'P':>6} {'R':>6} {'mAP50':>6} {'mAP50-95':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model'][:28]:<28} {r['class'][:14]:<14} {r['instances']:>5} "
                     f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['map50']:>6.3f} "
                     f"{r['map50_95']:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help=".pt, .onnx or OpenVINO folder")
    parser.add_argument("--data", required=True, help="dataset YAML or labelled image folder")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--split", default="val")
    args = parser.parse_args(argv)
    rows = []
    for weights in args.weights:
        rows += evaluate(weights, args.data, imgsz=args.imgsz, split=args.split)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
