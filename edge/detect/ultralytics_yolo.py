"""Any ultralytics YOLO detector: a PyTorch ``.pt``, an exported ``.onnx`` or an OpenVINO folder.

ultralytics is imported through :func:`import_ultralytics` only, which first makes it safe to
run offline: no downloads of fonts or packages, no telemetry, a config folder of our own, and
the torchvision shim (:mod:`edge.detect.torchvision_compat`) when torchvision's ops do not load.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge.detect.base import Detections, Detector
from wire.paths import DATA_DIR

log = logging.getLogger(__name__)

#: Where ultralytics keeps settings.json and its fonts unless YOLO_CONFIG_DIR is already set.
CONFIG_DIR = DATA_DIR / "ultralytics"
_SYSTEM_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)


def any_ttf() -> Path | None:
    """A TTF that is surely here: matplotlib (an ultralytics dependency) ships DejaVuSans."""
    spec = importlib.util.find_spec("matplotlib")
    candidates = [Path(p) for p in _SYSTEM_FONTS]
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidates.append(Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    return next((c for c in candidates if c.is_file()), None)


def prepare_environment() -> Path:
    """Set the environment ultralytics reads at import; returns its font/settings folder.

    Respects values the user already set (``setdefault``), so ``YOLO_CONFIG_DIR`` can move.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")  # never probe the network (downloads fail fast)
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")  # never pip-install a missing package
    os.environ.setdefault("YOLO_CONFIG_DIR", str(CONFIG_DIR))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    # OpenVINO's converter sends telemetry unless it sees CI or an opt-out consent file.
    os.environ.setdefault("CI", "true")
    folder = Path(os.environ["YOLO_CONFIG_DIR"]).expanduser() / "Ultralytics"
    folder.mkdir(parents=True, exist_ok=True)
    font = any_ttf()
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):  # ultralytics downloads these when missing
        if not (folder / name).exists() and font is not None:
            shutil.copyfile(font, folder / name)
    return folder


def import_ultralytics() -> ModuleType:
    """``import ultralytics``, made offline-safe first (idempotent)."""
    from edge.detect.torchvision_compat import ensure_torchvision

    if "ultralytics" not in sys.modules:
        prepare_environment()
    ensure_torchvision()
    import ultralytics

    return ultralytics


def _exported_imgsz(path: Path) -> int | None:
    """The fixed input size an export was made at (from its metadata); None for ``.pt``."""
    import yaml

    if path.is_dir():
        meta = path / "metadata.yaml"
        if meta.is_file():
            data = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
            size = data.get("imgsz")
            return int(max(size)) if isinstance(size, list) else (int(size) if size else None)
        return None
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        meta = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]
                                    ).get_modelmeta().custom_metadata_map
        if "imgsz" in meta:
            size = yaml.safe_load(meta["imgsz"])
            return int(max(size)) if isinstance(size, list) else int(size)
    return None


class UltralyticsYolo(Detector):
    """A YOLO detector run by ultralytics on CPU; class names come from the model itself
    (``model.names``) and are mapped to ours through ``class_map``.

    ``threads`` sets PyTorch's intra-op threads (process-wide); exported ONNX and OpenVINO
    models use their runtime's default (all physical cores). ``imgsz`` defaults to 640; an
    export always runs at the size it was made at. ``max_batch`` > 1 lets ``detect_batch`` run
    several frames in one call (docs/performance.md: on a 2-core CPU it does not pay).

    Example:
        >>> det = UltralyticsYolo(Path("best.pt"), None, {"ebike": "two_wheeler"})  # doctest: +SKIP
        >>> det.detect(cv2.imread("lift.png")).labels  # doctest: +SKIP
        ['two_wheeler']
    """

    def __init__(self, path: Path, labelmap: list[str] | None, class_map: dict[str, str], *,
                 score_threshold: float = 0.35, threads: int = 1, iou_threshold: float = 0.5,
                 imgsz: int | None = None, max_batch: int = 1) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"missing ultralytics weights {path} (a .pt file, an .onnx "
                                    f"file or an OpenVINO export folder)")
        import_ultralytics()
        import torch
        from ultralytics import YOLO

        if path.suffix == ".pt":
            torch.set_num_threads(threads)
        self._model = YOLO(str(path), task="detect")
        names: dict[int, str] | list[str] = labelmap or self._model.names
        if isinstance(names, dict):
            names = [names[i] for i in sorted(names)]
        unknown = sorted(set(class_map) - set(names))
        if unknown:
            raise ValueError(f"class_map names classes the model {path.name} does not have: "
                             f"{unknown} (its classes: {names})")
        self._labels = [class_map.get(name, "") for name in names]
        self._classes = [i for i, label in enumerate(self._labels) if label]
        fixed = _exported_imgsz(path)
        if fixed and imgsz and imgsz != fixed:
            log.warning("%s was exported at imgsz=%d; using that instead of %d", path, fixed,
                        imgsz)
        self._imgsz = fixed or imgsz or 640
        self.input_side = self._imgsz
        self._predict_args: dict[str, Any] = {
            "imgsz": self._imgsz, "conf": score_threshold, "iou": iou_threshold, "device": "cpu",
            "verbose": False, "classes": self._classes}
        self.max_batch = max_batch
        self.path = path

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Detections]:
        if not frames_bgr:
            return []
        if not self._classes:  # nothing we act on: skip inference entirely
            return [Detections.empty() for _ in frames_bgr]
        out: list[Detections] = []
        step = max(1, self.max_batch)
        for start in range(0, len(frames_bgr), step):
            chunk = list(frames_bgr[start:start + step])
            results = self._model.predict(chunk if len(chunk) > 1 else chunk[0],
                                          **self._predict_args)
            out.extend(self._to_detections(r) for r in results)
        return out

    def _to_detections(self, result: Any) -> Detections:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        class_ids = boxes.cls.numpy().astype(np.int64)
        keep = np.array([bool(self._labels[c]) for c in class_ids])
        class_ids = class_ids[keep]
        return Detections(boxes.xyxy.numpy()[keep].astype(np.float32),
                          boxes.conf.numpy()[keep].astype(np.float32), class_ids,
                          [self._labels[c] for c in class_ids])
