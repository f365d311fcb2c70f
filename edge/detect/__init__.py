"""Detector backends behind one ``Detector`` protocol, chosen by name from models/registry.yaml.

The registry is an explicit dict of import paths so a box without, say, ultralytics installed
can still run the ONNX backend: a backend's heavy dependencies load only when it is chosen.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from center.paths import MODELS_DIR, shared_file
from edge.detect.base import Detections, Detector

__all__ = ["BACKENDS", "Detections", "Detector", "load_detector", "model_names"]

#: backend name (``backend:`` in models/registry.yaml) -> "module:class".
BACKENDS: dict[str, str] = {
    "nanodet_onnx": "edge.detect.nanodet:NanoDetOnnx",
}

REGISTRY_FILE = MODELS_DIR / "registry.yaml"


def _registry() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8")) or {}


def model_names() -> list[str]:
    return sorted(_registry())


def _resolve(path: str) -> Path:
    if path.startswith("shared:"):
        return shared_file(path.removeprefix("shared:"))
    return MODELS_DIR / path


def load_detector(name: str, *, threads: int = 1, score_threshold: float = 0.35) -> Detector:
    """Build the detector registered as ``name``; errors say which names exist."""
    registry = _registry()
    if name not in registry:
        raise KeyError(f"unknown model {name!r} (known in {REGISTRY_FILE}: {sorted(registry)})")
    entry = registry[name]
    backend = entry["backend"]
    if backend not in BACKENDS:
        raise KeyError(f"model {name!r} uses unknown backend {backend!r} "
                       f"(known: {sorted(BACKENDS)})")
    module_name, class_name = BACKENDS[backend].split(":")
    backend_cls = getattr(importlib.import_module(module_name), class_name)
    labelmap = _resolve(entry["labelmap"]).read_text(encoding="utf-8").splitlines()
    return backend_cls(_resolve(entry["path"]), [line.strip() for line in labelmap if line.strip()],
                       dict(entry.get("class_map", {})),
                       score_threshold=score_threshold, threads=threads)
