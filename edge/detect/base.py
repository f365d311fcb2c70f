"""The one detection type every backend returns and every later stage consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame, already mapped to our class vocabulary.

    Validated on construction so a backend bug surfaces where it happens, not three stages
    later as an odd alert.

    Example:
        >>> d = Detections(np.array([[10, 20, 50, 80]], np.float32), np.array([0.9], np.float32),
        ...                np.array([1]), ["two_wheeler"])
        >>> len(d), d.labels[0]
        (1, 'two_wheeler')
    """

    #: (N, 4) float32, x1 y1 x2 y2 in pixels of the analysed frame.
    xyxy: np.ndarray
    #: (N,) float32 in 0..1.
    scores: np.ndarray
    #: (N,) int, the backend's own class index (kept for debugging and re-mapping).
    class_ids: np.ndarray
    #: N of our class names ("two_wheeler", "person", "vending_cue", "car").
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.xyxy.shape != (n, 4) or self.xyxy.dtype != np.float32:
            raise ValueError(f"xyxy must be float32 of shape ({n}, 4), got {self.xyxy.dtype} "
                             f"{self.xyxy.shape}")
        if self.scores.shape != (n,) or self.class_ids.shape != (n,):
            raise ValueError(f"scores and class_ids must have shape ({n},), got "
                             f"{self.scores.shape} and {self.class_ids.shape}")
        if n and (np.any(self.xyxy[:, 2] < self.xyxy[:, 0]) or
                  np.any(self.xyxy[:, 3] < self.xyxy[:, 1])):
            raise ValueError("boxes must be x1 y1 x2 y2 with x2 >= x1 and y2 >= y1")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros(0, np.int64), [])


class Detector(Protocol):
    """What the runner needs from a backend; a new backend is one module in this package.

    Backends subclass this Protocol explicitly, so they inherit the default ``detect_batch``
    (one ``detect`` per frame). A backend whose model really runs several frames in one call
    faster than one by one overrides it and sets ``max_batch`` above 1; the runner may then hand
    it up to ``max_batch`` frames (from different cameras) at once.

    Example:
        >>> class Nothing(Detector):
        ...     def detect(self, frame_bgr):
        ...         return Detections.empty()
        >>> [len(d) for d in Nothing().detect_batch([np.zeros((4, 4, 3), np.uint8)] * 2)]
        [0, 0]
    """

    #: How many frames one ``detect_batch`` call should get at most; 1 means batching does not
    #: pay for this backend (or its model has a fixed batch of 1).
    max_batch: int = 1
    #: (width, height) the backend plainly resizes every frame to (cv2 INTER_LINEAR, no
    #: letterbox), or None. Such a backend's ``detect`` also takes ``frame_size=(w, h)``: the
    #: frame was shrunk to this size beforehand, give the boxes in pixels of ``frame_size``.
    #: With ``detector.processes`` > 1 frames then travel to the workers at this size
    #: (edge/detect/pool.py), at the cost of one resize that the backend no longer does.
    plain_resize_to: tuple[int, int] | None = None
    #: Side in pixels of the square the model analyses (its input size), or None when it
    #: takes any size. Zone crops (edge/detect/crops.py) size their windows by it.
    input_side: int | None = None

    def detect(self, frame_bgr: np.ndarray) -> Detections: ...

    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each frame, in order; frames may differ in size."""
        return [self.detect(frame) for frame in frames_bgr]
