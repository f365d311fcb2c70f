"""NanoDet-m (COCO-80) through ONNX Runtime: the detector that runs on a plain CPU edge box.

Pre- and post-processing follow ../shared/models/README.md exactly: plain resize (no
letterbox), BGR, per-channel mean/std, three stride heads with an 11-bin distance distribution.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.detect.base import Detections, Detector

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_BINS = 11
MEAN = np.array([103.53, 116.28, 123.675], np.float32)
STD = np.array([57.375, 57.12, 58.395], np.float32)
NMS_IOU = 0.5

log = logging.getLogger(__name__)


class NanoDetOnnx(Detector):
    """Detector backend; ``class_map`` maps model class names to ours and drops the rest early,
    so NMS and decoding never spend time on classes nobody acts on.

    ONNX Runtime runs with graph optimisation ALL (worth 20-30 % here) and ``threads`` intra-op
    threads. The shipped model's batch is fixed at 1, so ``max_batch`` is 1 and
    ``detect_batch`` is the default loop.

    Example:
        >>> det = NanoDetOnnx(path, coco80, {"bicycle": "two_wheeler"})  # doctest: +SKIP
        >>> det.detect(cv2.imread("darknet_dog_bicycle.jpg")).labels      # doctest: +SKIP
        ['two_wheeler']
    """

    plain_resize_to = (INPUT_SIZE, INPUT_SIZE)
    input_side = INPUT_SIZE

    def __init__(self, path: Path, labelmap: list[str], class_map: dict[str, str], *,
                 score_threshold: float = 0.35, threads: int = 1,
                 iou_threshold: float = NMS_IOU, imgsz: int | None = None,
                 max_batch: int = 1) -> None:
        if imgsz not in (None, INPUT_SIZE):
            raise ValueError(f"NanoDet's ONNX input is fixed at {INPUT_SIZE}, got imgsz={imgsz}")
        if max_batch > 1:
            log.warning("NanoDet's ONNX model has batch fixed at 1: ignoring max_batch=%d",
                        max_batch)
        unknown = sorted(set(class_map) - set(labelmap))
        if unknown:
            raise ValueError(f"class_map names classes missing from the labelmap: {unknown}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._heads = self._pick_heads()
        self._score_threshold = score_threshold
        self._iou_threshold = iou_threshold
        self._labels = [class_map.get(name, "") for name in labelmap]
        self._keep = np.array([bool(label) for label in self._labels])
        self._centres = {s: _cell_centres(INPUT_SIZE // s, s) for s in STRIDES}

    def _pick_heads(self) -> dict[int, tuple[int, int]]:
        """Output names are not ordered by stride, so match them by shape (README)."""
        shapes = [tuple(o.shape) for o in self._session.get_outputs()]
        heads = {}
        for stride in STRIDES:
            n = (INPUT_SIZE // stride) ** 2
            heads[stride] = (shapes.index((1, n, 80)), shapes.index((1, n, 4 * REG_BINS)))
        return heads

    def detect(self, frame_bgr: np.ndarray,
               frame_size: tuple[int, int] | None = None) -> Detections:
        """Boxes in pixels of ``frame_size`` (width, height) if given (``frame_bgr`` is then
        that frame already resized to ``plain_resize_to``), else of ``frame_bgr``."""
        width, height = frame_size or (frame_bgr.shape[1], frame_bgr.shape[0])
        outputs = self._session.run(None, {self._input: _preprocess(frame_bgr)})
        boxes, scores, classes = [], [], []
        for stride, (cls_idx, reg_idx) in self._heads.items():
            cls_scores = outputs[cls_idx][0]
            cls_scores = np.where(self._keep, cls_scores, 0.0)
            cells, class_ids = np.nonzero(cls_scores > self._score_threshold)
            if not len(cells):
                continue
            dist = _expected_distance(outputs[reg_idx][0][cells]) * stride
            centre = self._centres[stride][cells]
            boxes.append(np.concatenate([centre - dist[:, :2], centre + dist[:, 2:]], axis=1))
            scores.append(cls_scores[cells, class_ids])
            classes.append(class_ids)
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes) * np.array(
            [width, height, width, height], np.float32) / INPUT_SIZE
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        score = np.concatenate(scores).astype(np.float32)
        class_ids = np.concatenate(classes)
        keep = nms_per_class(xyxy, score, class_ids, self._iou_threshold)
        return Detections(xyxy[keep], score[keep], class_ids[keep].astype(np.int64),
                          [self._labels[c] for c in class_ids[keep]])


def _preprocess(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    resized = cv2.resize(frame_bgr, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    normalised = (resized.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def _cell_centres(grid: int, stride: int) -> np.ndarray:
    ys, xs = np.divmod(np.arange(grid * grid), grid)
    return np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=1).astype(np.float32)


def _expected_distance(reg: np.ndarray) -> np.ndarray:
    """Softmax over each side's bins, then the expected bin: distance in strides (l, t, r, b)."""
    logits = reg.reshape(-1, 4, REG_BINS)
    logits = logits - logits.max(axis=2, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=2, keepdims=True)
    return prob @ np.arange(REG_BINS, dtype=np.float32)


def nms_per_class(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                  iou_threshold: float) -> np.ndarray:
    """Class-aware NMS: offsetting each class into its own region makes boxes of different
    classes never overlap, so one greedy pass suffices."""
    offset = class_ids[:, None].astype(np.float32) * (float(xyxy.max()) + 1.0)
    boxes = xyxy + offset
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) -
                    np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) -
                    np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)
