"""Detector backends behind one ``Detector`` protocol, chosen by name from models/registry.yaml.

The registry is an explicit dict of import paths so a box without, say, ultralytics installed
can still run the ONNX backend: a backend's heavy dependencies load only when it is chosen.

Example:
    >>> det = load_detector("nanodet-m-416-coco", threads=2)          # doctest: +SKIP
    >>> det.detect(frame).labels                                        # doctest: +SKIP
    ['two_wheeler', 'car']
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edge.detect.base import Detections, Detector
from wire.models import (
    REGISTRY_FILE,
    entry_weights_path,
    registry,
    resolve_path,
)

if TYPE_CHECKING:
    from edge.config import DetectorConfig

__all__ = ["BACKENDS", "Detections", "Detector", "check_model", "load_detector",
           "load_from_config", "model_classes"]

#: backend name (``backend:`` in models/registry.yaml) -> "module:class".
BACKENDS: dict[str, str] = {
    "nanodet_onnx": "edge.detect.nanodet:NanoDetOnnx",
    "ultralytics": "edge.detect.ultralytics_yolo:UltralyticsYolo",
    "fake": "edge.detect.fake:FakeDetector",
}

def _class_map(value: Any, name: str) -> dict[str, str]:
    """Inline mapping, or a YAML file (relative to models/) holding one: the COCO map lives
    once in labelmaps/coco80_to_ours.yaml and every COCO model points at it."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = yaml.safe_load(resolve_path(value).read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"model {name!r}: class_map must be a mapping or a YAML file of one")
    return {str(k): str(v) for k, v in value.items()}


def _missing_weights(name: str, path: Path, override: str | Path | None) -> str:
    where = "detector.path" if override is not None else f"path in {REGISTRY_FILE}"
    return f"model {name!r}: missing weights {path} ({where})"


def _weights(name: str, entry: dict[str, Any], override: str | Path | None) -> Path:
    path = entry_weights_path(name, entry, override)
    if path.exists():
        return path
    if override is None and entry.get("download") == "ultralytics":
        return _download_ultralytics_asset(name, path)
    raise FileNotFoundError(_missing_weights(name, path, override))


def _download_ultralytics_asset(name: str, path: Path) -> Path:
    """ultralytics fetches its own release weights (yolo11n.pt, ...) on a connected machine."""
    from edge.detect.ultralytics_yolo import import_ultralytics

    import_ultralytics()
    from ultralytics.utils.downloads import attempt_download_asset

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = Path(attempt_download_asset(path))
    except Exception as exc:  # noqa: BLE001 - any failure means: not downloadable here
        reason = f"{type(exc).__name__}: {exc}".strip()
        got = None
    else:
        reason = "download produced no file"
    if got is not None and got.exists():
        return got
    raise FileNotFoundError(
        f"model {name!r}: weights {path} are missing and ultralytics could not download "
        f"{path.name} ({reason}). On a machine with internet access run "
        f"`python -c \"from edge.detect import load_detector; load_detector('{name}')\"` once "
        f"(it downloads to {path}), or copy {path.name} there, or train your own with "
        f"models/scripts/train.py and set detector.path to its best.pt")


def load_detector(name: str, *, threads: int = 1, score_threshold: float = 0.35,
                  path: str | Path | None = None, class_map: dict[str, str] | None = None,
                  iou_threshold: float = 0.5, imgsz: int | None = None,
                  max_batch: int = 1, **backend_options: Any) -> Detector:
    """Build the detector registered as ``name``; errors say which names exist and which file
    is missing. ``path`` and ``class_map`` replace the entry's (your own weights)."""
    entries = registry()
    if name not in entries:
        raise KeyError(f"unknown model {name!r} (known in {REGISTRY_FILE}: {sorted(entries)})")
    entry = entries[name]
    backend = entry["backend"]
    if backend not in BACKENDS:
        raise KeyError(f"model {name!r} uses unknown backend {backend!r} "
                       f"(known: {sorted(BACKENDS)})")
    weights = _weights(name, entry, path)
    module_name, class_name = BACKENDS[backend].split(":")
    backend_cls = getattr(importlib.import_module(module_name), class_name)
    labelmap = None
    if entry.get("labelmap"):
        lines = resolve_path(entry["labelmap"]).read_text(encoding="utf-8").splitlines()
        labelmap = [line.strip() for line in lines if line.strip()]
    mapping = class_map if class_map is not None else _class_map(entry.get("class_map"), name)
    return backend_cls(weights, labelmap, mapping, score_threshold=score_threshold,
                       threads=threads, iou_threshold=iou_threshold,
                       imgsz=imgsz or (entry.get("imgsz") if path is None else None),
                       max_batch=max_batch, **backend_options)


def check_model(config: DetectorConfig) -> list[tuple[str, str]]:
    """Why ``load_from_config`` would fail, found without loading a backend or downloading
    anything (``edge check-config``): an unknown model or backend, missing weights, a missing
    labelmap or class-map file. Each problem comes with the ``detector`` key it is about
    (``model`` or ``path``); empty when the model can load."""
    entries = registry()
    name = config.model
    if name not in entries:
        return [("model", (f"unknown model {name!r} (known in {REGISTRY_FILE}: "
                          f"{sorted(entries)})"))]
    entry = entries[name]
    problems = []
    if entry.get("backend") not in BACKENDS:
        problems.append(("model", (f"model {name!r} uses unknown backend "
                                  f"{entry.get('backend')!r} (known: {sorted(BACKENDS)})")))
    key = "model" if config.path is None else "path"
    try:
        path = entry_weights_path(name, entry, config.path)
    except FileNotFoundError as exc:
        problems.append((key, str(exc)))
    else:
        if not path.exists():
            later = (" (ultralytics would try to download it at start; that needs internet "
                     "access)" if config.path is None and entry.get("download") else "")
            problems.append((key, _missing_weights(name, path, config.path) + later))
    files = [("labelmap", entry.get("labelmap"))]
    if config.class_map is None and isinstance(entry.get("class_map"), str):
        files.append(("class_map", entry["class_map"]))
    for what, value in files:
        if value and not resolve_path(str(value)).is_file():
            problems.append(("model", (f"model {name!r}: {what} file "
                                      f"{resolve_path(str(value))} is missing")))
    return problems


def model_classes(config: DetectorConfig) -> set[str] | None:
    """Our classes the configured model can output (the values of its class map); None when
    that cannot be told here: an unknown model, or an empty map, which passes labels through."""
    entry = registry().get(config.model)
    if entry is None:
        return None
    try:
        mapping = (config.class_map if config.class_map is not None
                   else _class_map(entry.get("class_map"), config.model))
    except (OSError, ValueError):  # a missing or broken map file: check_model reports it
        return None
    return set(mapping.values()) or None


def load_from_config(config: DetectorConfig) -> Detector:
    """The detector an edge config's ``detector:`` section asks for."""
    return load_detector(config.model, threads=config.threads,
                         score_threshold=config.score_threshold,
                         path=os.path.expanduser(config.path) if config.path else None,
                         class_map=config.class_map, iou_threshold=config.iou_threshold,
                         imgsz=config.imgsz, max_batch=config.max_batch)
