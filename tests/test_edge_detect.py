"""NanoDet backend against the numbers verified in ../shared/models/README.md."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.detect import Detections, load_detector
from edge.detect.nanodet import nms_per_class
from tests.conftest import shared
from wire.models import model_names


@pytest.fixture(scope="module")
def detector():
    shared("models/nanodet-m-416-coco.onnx")
    return load_detector("nanodet-m-416-coco", threads=2, score_threshold=0.35)


def test_bicycle_found_as_two_wheeler(detector) -> None:
    image = cv2.imread(str(shared("media/darknet_dog_bicycle.jpg")))
    dets = detector.detect(image)
    assert isinstance(dets, Detections)
    bikes = [i for i, label in enumerate(dets.labels) if label == "two_wheeler"]
    assert bikes, f"no two_wheeler in {dets}"
    best = max(bikes, key=lambda i: dets.scores[i])
    assert dets.scores[best] > 0.5
    np.testing.assert_allclose(dets.xyxy[best], [122, 128, 569, 424], atol=15)
    assert "dog" not in dets.labels  # unmapped COCO classes are dropped
    assert set(dets.labels) <= {"two_wheeler", "person", "vending_cue", "car"}


def test_registry_lists_default_model() -> None:
    assert "nanodet-m-416-coco" in model_names()


def test_unknown_model_names_known_ones() -> None:
    with pytest.raises(KeyError, match="nanodet-m-416-coco"):
        load_detector("yolo-nope")


def test_nms_is_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32)
    keep = nms_per_class(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([1, 1, 3]), 0.5)
    assert keep.tolist() == [0, 2]


def test_detections_validate_shapes() -> None:
    with pytest.raises(ValueError, match="xyxy"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), np.zeros(1, int),
                   ["car"])
    with pytest.raises(ValueError, match="x2 >= x1"):
        Detections(np.array([[5, 0, 1, 1]], np.float32), np.ones(1, np.float32),
                   np.zeros(1, int), ["car"])
    assert len(Detections.empty()) == 0
