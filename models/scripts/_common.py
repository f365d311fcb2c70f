"""Shared by the model scripts: make ultralytics offline-safe and turn a folder into a dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as `python models/scripts/x.py` from anywhere
    sys.path.insert(0, str(REPO))


def ultralytics(verbose: bool = True):
    """The ultralytics module, imported the way the edge does (offline, shimmed)."""
    os.environ.setdefault("YOLO_VERBOSE", str(verbose))
    from edge.detect.ultralytics_yolo import import_ultralytics

    return import_ultralytics()


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def dataset_yaml(data: str | Path, out_dir: Path) -> Path:
    """``data`` as ultralytics wants it: a dataset YAML is returned unchanged; a folder of
    images with YOLO txt labels beside them and a classes.txt gets a dataset YAML written into
    ``out_dir`` (train = val = that folder).

    The media are never copied: ``out_dir`` gets an ``images/`` + ``labels/`` tree of symlinks,
    so ultralytics' label cache is written there too, not into the (shared, read-only) media
    folder."""
    data = Path(data).expanduser().resolve()
    if data.is_file() and data.suffix in (".yaml", ".yml"):
        return data
    if not data.is_dir():
        raise SystemExit(f"{data}: not a dataset YAML nor a folder of images")
    classes = data / "classes.txt"
    if not classes.is_file():
        raise SystemExit(f"{data}: no classes.txt (one class name per line, in label-id order)")
    names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    root = Path(out_dir).resolve() / f"{data.name}-links"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image in sorted(data.iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        for src, dst in ((image, root / "images" / image.name),
                         (image.with_suffix(".txt"), root / "labels" / f"{image.stem}.txt")):
            if src.is_file() and not dst.is_symlink():
                dst.symlink_to(src)
    target = Path(out_dir).resolve() / f"{data.name}.yaml"
    target.write_text(yaml.safe_dump({"path": str(root), "train": "images", "val": "images",
                                      "names": dict(enumerate(names))}, sort_keys=False),
                      encoding="utf-8")
    return target
