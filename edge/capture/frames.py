"""What a capture thread hands to inference: sampled `Frame`s through a bounded `FrameQueue`."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class Frame:
    """A sampled picture. ``ts`` is stream time in seconds (a file's position, a live stream's
    time since connecting), so rules behave the same whether a file replays at 1x or 100x;
    ``wall`` is when it was taken, for people reading alerts."""

    camera_id: str
    image: np.ndarray
    ts: float
    wall: datetime


class FrameQueue:
    """Bounded hand-over from a capture thread to inference.

    Live cameras drop the oldest frame when inference falls behind, so alerts are judged on
    what the street looks like now and the drop is counted rather than hidden. A file replay
    blocks instead, at any speed: a file has no "now" to keep up with, and dropping would make
    a replay's alerts depend on how busy the machine was (the capture reports it lagging).
    """

    def __init__(self, maxsize: int = 2, *, block_when_full: bool = False) -> None:
        self._items: deque[Frame] = deque()
        self._maxsize = maxsize
        self._block = block_when_full
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            if self._block:
                while len(self._items) >= self._maxsize and not stop.is_set():
                    self._cond.wait(0.1)
            elif len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)

    def get_nowait(self) -> Frame | None:
        with self._cond:
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
