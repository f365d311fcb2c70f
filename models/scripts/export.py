"""Export an ultralytics YOLO ``.pt`` to ONNX (for ONNX Runtime) or OpenVINO (Intel CPUs).

    python models/scripts/export.py runs/ebike/train/weights/best.pt --format openvino

Writes ``best.onnx`` or the folder ``best_openvino_model/`` beside the weights (or into
--out) and prints its path; both load through the same ultralytics backend as the ``.pt``.
The input size is fixed at --imgsz (default: the size the model was trained at).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ultralytics

FORMATS = ("onnx", "openvino")


def export(weights: str | Path, fmt: str, *, imgsz: int | None = None,
           out: str | Path | None = None, half: bool = False, simplify: bool = False,
           verbose: bool = True) -> Path:
    """Export and return the path of the ``.onnx`` file or OpenVINO folder."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    ultralytics(verbose)
    from ultralytics import YOLO

    yolo = YOLO(str(weights), task="detect")
    size = imgsz or ((yolo.ckpt or {}).get("train_args") or {}).get("imgsz") or 640
    options = {"simplify": simplify} if fmt == "onnx" else {}
    # simplify needs the onnxslim package; ONNX Runtime's own graph optimisation does the same.
    result = Path(yolo.export(format=fmt, imgsz=size, half=half, dynamic=False, device="cpu",
                              verbose=verbose, **options))
    if out is not None:
        target = Path(out) / result.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        result = Path(shutil.move(str(result), target))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a YOLO .pt file")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--imgsz", type=int, default=None)
    parser.add_argument("--half", action="store_true", help="FP16 weights (OpenVINO)")
    parser.add_argument("--out", default=None, help="folder for the export (default: beside)")
    args = parser.parse_args(argv)
    print(export(args.weights, args.format, imgsz=args.imgsz, out=args.out, half=args.half))
    return 0


if __name__ == "__main__":
    sys.exit(main())
