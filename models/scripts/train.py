"""Fine-tune (or train from scratch) an ultralytics YOLO detector on a YOLO-format dataset.

    python models/scripts/train.py --data ../shared/media/ebike_indoor_cctv_voc \
        --model yolo11n.pt --epochs 50 --imgsz 640 --out runs/ebike
    # the model loop: a set exported from operators' verdicts (docs/models.md)
    gridwatch dataset export runs/set-2026-12 && python models/scripts/train.py \
        --data runs/set-2026-12/data.yaml --model /srv/models/current.pt --out runs/cand

``--data`` is a dataset YAML or a folder of images with YOLO txt labels and a classes.txt (a
dataset YAML is then written into --out). ``--model`` is where training starts: ``yolo11n.pt``
(pretrained COCO weights; ultralytics downloads them on a connected machine), any ``.pt`` of
yours, or ``yolo11n.yaml`` (the architecture only, random weights: works offline). Prints the
path of the best weights; register them as models/registry.yaml explains.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dataset_yaml, ultralytics


def pick_device(device: str | None) -> str:
    """``device`` as given, else the first CUDA GPU when torch sees one, else the CPU."""
    if device:
        return device
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def train(data: str | Path, out: str | Path, *, model: str = "yolo11n.pt", epochs: int = 50,
          imgsz: int = 640, batch: int = 16, workers: int = 0, fraction: float = 1.0,
          name: str = "train", verbose: bool = True, device: str | None = None,
          **extra) -> Path:
    """Train and return the path of ``best.pt`` (``last.pt`` if no best was saved).

    ``amp`` stays off: ultralytics' AMP check downloads yolo11n.pt, which an offline box
    cannot (mixed precision would only speed up a GPU run)."""
    ultralytics(verbose)
    from ultralytics import YOLO

    out = Path(out).resolve()
    yolo = YOLO(model, task="detect")
    yolo.train(data=str(dataset_yaml(data, out)), epochs=epochs, imgsz=imgsz, batch=batch,
               workers=workers, fraction=fraction, device=pick_device(device),
               project=str(out), name=name, exist_ok=True, plots=False, amp=False,
               verbose=verbose, **extra)
    weights = Path(yolo.trainer.save_dir) / "weights"
    best = weights / "best.pt"
    return best if best.exists() else weights / "last.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset YAML or labelled image folder")
    parser.add_argument("--model", default="yolo11n.pt",
                        help="start point: yolo11n.pt, your .pt, or yolo11n.yaml (from scratch)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of images to use")
    parser.add_argument("--out", default="runs/detect", help="output folder")
    parser.add_argument("--name", default="train")
    parser.add_argument("--device", default=None,
                        help="cpu, a CUDA index such as 0 (default: a GPU when there is one)")
    args = parser.parse_args(argv)
    best = train(args.data, args.out, model=args.model, epochs=args.epochs, imgsz=args.imgsz,
                 batch=args.batch, fraction=args.fraction, name=args.name, device=args.device)
    print(best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
