"""Make ``import torchvision`` work when its compiled ops cannot load (the one compat shim).

Why: PyPI's ``torchvision==0.28.0`` wheel is linked against CUDA libraries; beside the CPU build
``torch==2.13.0`` its extension ``torchvision/_C.so`` fails to load, and ``import torchvision``
then dies with ``RuntimeError: operator torchvision::nms does not exist`` (torchvision registers
a fake kernel for that op at import). ultralytics imports torchvision for NMS, so it breaks too.

What: :func:`ensure_torchvision` first checks whether torchvision's own ops load (the exact
thing ``import torchvision`` needs). Only when they do not, it defines ``torchvision::nms`` (and
its quantized twin ``qnms``) with a pure-PyTorch CPU kernel through ``torch.library`` before
torchvision is imported, and tells torchvision that its ops are present so
``torchvision.ops.nms`` runs that kernel. Nothing else is patched: other compiled torchvision
ops (``roi_align``, ``deform_conv2d``, ...) stay absent, and calling them raises PyTorch's
"no such operator" error. Remove this module once a CPU
torchvision wheel that matches the pinned torch is installable.

Example:
    >>> from edge.detect.torchvision_compat import ensure_torchvision
    >>> _ = ensure_torchvision()
    >>> import torch, torchvision
    >>> boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    >>> torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    [0, 2]
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_lock = threading.Lock()
_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the op
_state: str | None = None  # "native", "shimmed" or "absent" once decided


def _nms_op_exists() -> bool:
    try:
        torch.ops.torchvision.nms.default  # noqa: B018 - attribute lookup is the check
    except (AttributeError, RuntimeError):
        return False
    return True


def _native_ops_load() -> bool:
    """Load torchvision's compiled extension the way ``torchvision.extension`` does."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(lib))
            except (OSError, RuntimeError) as exc:
                log.debug("torchvision extension %s does not load: %s", lib, exc)
                return False
            return _nms_op_exists()
    return False


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS in plain PyTorch, same contract as ``torchvision.ops.nms``: indices of the kept
    boxes (x1 y1 x2 y2) in decreasing score order; a box is dropped when its IoU with a kept,
    higher-scoring box is above ``iou_threshold``. One vector step per kept box, O(N) memory."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()
    order = torch.sort(scores.float(), descending=True, stable=True).indices
    x1, y1, x2, y2 = boxes[order].unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    remaining = torch.arange(order.numel(), device=boxes.device)
    keep = []
    while remaining.numel():
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-9)
        remaining = rest[iou <= iou_threshold]
    return order[torch.stack(keep)]


def _register_nms() -> None:
    global _library  # noqa: PLW0603 - the process-wide registration, kept alive
    _library = torch.library.Library("torchvision", "DEF")
    # torchvision registers fake kernels for both at import; qnms gets int_repr() tensors.
    for op in ("nms", "qnms"):
        _library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _library.impl(op, nms_reference, "CPU")


def ensure_torchvision() -> str:
    """Make ``import torchvision`` and ``torchvision.ops.nms`` work on CPU; call before
    importing torchvision or ultralytics. Returns ``"native"`` (torchvision's own ops load,
    nothing patched), ``"shimmed"`` (pure-PyTorch ``nms`` registered) or ``"absent"``
    (torchvision is not installed). Idempotent and thread-safe."""
    global _state  # noqa: PLW0603 - decided once per process, under _lock
    with _lock:
        if _state is not None:
            return _state
        if importlib.util.find_spec("torchvision") is None:
            _state = "absent"
            return _state
        if _nms_op_exists() or _native_ops_load():
            _state = "native"
            return _state
        if "torchvision" in sys.modules:
            raise RuntimeError("torchvision was imported before edge.detect.torchvision_compat "
                               "could register its nms kernel; call ensure_torchvision() first")
        _register_nms()
        # Imports torchvision itself, whose import-time fake-kernel registrations need the op.
        import torchvision.extension

        # torchvision decided at import that its ops are missing; ours is there now.
        torchvision.extension._has_ops = lambda: True

        log.info("torchvision's compiled ops do not load here (CUDA-linked wheel); "
                 "using the pure-PyTorch CPU nms from %s", __name__)
        _state = "shimmed"
        return _state
