"""Inference in a pool of worker processes (``detector.processes`` > 1), results in order.

On a small CPU box N processes x 1 ONNX Runtime thread analyse more frames per second than one
process with N threads (docs/performance.md). Each worker loads its own detector once (the
pool's initializer, ``load_from_config``); the runner keeps up to N frames in flight and takes
the results back **in submission order** (a FIFO of jobs), so every camera's rules see its
frames in order.

Frames travel by pickling. A backend that plainly resizes every frame to a fixed size (no
letterbox; it says so with ``Detector.plain_resize_to``, NanoDet: 416x416) gets the frame
already resized to that size by :func:`shrink_for_detector`, which is far cheaper to send
(0.5 MB instead of 2.7 MB at 720p) and gives the model the very same input; the worker's
:func:`_detect` passes the original ``frame_size`` so the backend scales its boxes to the
frame's pixels with the same arithmetic as in-process (alerts are bit-identical). Other
backends get the full frame.

A camera with zone crops on (edge/detect/crops.py) sends each window of a frame as a job of
its own, so the workers analyse one frame's windows in parallel; ``input_side`` (probed from a
worker's detector) sizes those windows.

Failures:
    * the detector raises in a worker (bad frame, backend bug), or fails to load there:
      :class:`DetectorError` naming the model and the worker's exception (its traceback is
      chained); the runner stops with it, as the in-process detector would.
    * a worker process dies (segfault, OOM kill): logged as an error, the pool is recreated
      and the frames in flight are sent again, so the edge keeps running; more than
      ``MAX_RESTARTS`` deaths within ``RESTART_WINDOW_S`` raise :class:`DetectorError`
      (a frame that kills the detector every time must not loop forever).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.detect.base import Detections, Detector

if TYPE_CHECKING:
    from edge.config import DetectorConfig

log = logging.getLogger(__name__)

#: Worker deaths tolerated within ``RESTART_WINDOW_S`` before the edge stops.
MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0
#: Seconds to wait for the first worker to load its model.
START_TIMEOUT_S = 120.0

Factory = Callable[["DetectorConfig"], Detector]


class DetectorError(RuntimeError):
    """The detector failed in a worker process (or its workers keep dying)."""


# --- frame size: the one place frames are shrunk before sending and boxes scaled back -------

def shrink_for_detector(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` resized to ``size`` (width, height) exactly as a plain-resizing backend would
    (cv2 INTER_LINEAR), or unchanged when the backend gives no size. The backend's own resize of
    an image already at its size is then a copy, so its input is bit-identical."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


# --- worker side ----------------------------------------------------------------------------

_worker_detector: Detector | None = None
_worker_error: str | None = None


def _init_worker(config: DetectorConfig, factory: Factory) -> None:
    """Load the detector once per worker. A load error is kept and raised by every call, so
    the parent sees the real message instead of a bare "pool broken"."""
    global _worker_detector, _worker_error  # noqa: PLW0603 - per-process worker state
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        _worker_detector = factory(config)
    except Exception as exc:  # noqa: BLE001 - reported on the first call
        _worker_error = f"loading detector {config.model!r} failed: {type(exc).__name__}: {exc}"


def _detector() -> Detector:
    if _worker_detector is None:
        raise DetectorError(_worker_error or "detector not loaded")
    return _worker_detector


def _probe() -> tuple[tuple[int, int] | None, int | None]:
    """The worker detector's ``plain_resize_to`` and ``input_side``."""
    detector = _detector()
    size = getattr(detector, "plain_resize_to", None)
    side = getattr(detector, "input_side", None)
    return (None if size is None else (int(size[0]), int(size[1])),
            None if side is None else int(side))


def _detect(image: np.ndarray, frame_size: tuple[int, int]) -> Detections:
    """Detections in pixels of the original frame (``frame_size``, width x height)."""
    detector = _detector()
    if (image.shape[1], image.shape[0]) != frame_size:  # shrunk by shrink_for_detector
        return detector.detect(image, frame_size=frame_size)  # type: ignore[call-arg]
    return detector.detect(image)


# --- parent side ----------------------------------------------------------------------------

class Job:
    """One frame in flight; :meth:`result` waits for its detections (re-sending the frame if
    its worker died)."""

    def __init__(self, pool: DetectorPool, image: np.ndarray, frame_size: tuple[int, int]):
        self._pool = pool
        self._image = image
        self._frame_size = frame_size
        self._generation, self.future = pool._submit(image, frame_size)

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout: float | None = None) -> Detections:
        while True:
            try:
                return self.future.result(timeout)
            except BrokenProcessPool as exc:
                self._pool._recover(self._generation, exc)
                self._generation, self.future = self._pool._submit(self._image,
                                                                   self._frame_size)
            except DetectorError:
                raise
            except Exception as exc:
                raise DetectorError(f"detector {self._pool.model!r} failed in a worker "
                                    f"process: {type(exc).__name__}: {exc}") from exc


class DetectorPool:
    """N worker processes, each with its own detector (``factory(config)``).

    Example:
        >>> with DetectorPool(config, 2) as pool:                         # doctest: +SKIP
        ...     jobs = [pool.submit(frame) for frame in frames]
        ...     detections = [job.result() for job in jobs]               # in order
    """

    def __init__(self, config: DetectorConfig, processes: int, *,
                 factory: Factory | None = None, on_done: Callable[[], None] | None = None,
                 start_method: str = "spawn") -> None:
        if factory is None:
            from edge.detect import load_from_config

            factory = load_from_config
        self.model = config.model
        self.processes = processes
        self._config = config
        self._factory = factory
        self._on_done = on_done
        self._context = mp.get_context(start_method)
        self._lock = threading.Lock()
        self._deaths: list[float] = []
        self._generation = 0
        self._executor = self._new_executor()
        try:
            self.send_size, self.input_side = self._executor.submit(_probe).result(
                START_TIMEOUT_S)
        except BrokenProcessPool as exc:
            self.close()
            raise DetectorError(f"detector {self.model!r}: worker process died while "
                                f"loading the model") from exc
        except BaseException:
            self.close()
            raise
        log.info("detector=%s running in %d worker processes x %d threads; frames sent as %s",
                 self.model, processes, config.threads,
                 "full frames" if self.send_size is None else "{}x{}".format(*self.send_size))

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=self._context,
                                   initializer=_init_worker,
                                   initargs=(self._config, self._factory))

    def _submit(self, image: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, Future]:
        while True:
            with self._lock:
                generation, executor = self._generation, self._executor
            try:
                future = executor.submit(_detect, image, frame_size)
                break
            except BrokenProcessPool as exc:  # it broke since the last job came back
                self._recover(generation, exc)
        on_done = self._on_done
        if on_done is not None:
            future.add_done_callback(lambda _f: on_done())
        return generation, future

    def _recover(self, generation: int, exc: BaseException) -> None:
        """A worker died: recreate the pool once per breakage, or give up if it keeps dying."""
        with self._lock:
            if generation != self._generation:
                return  # another job already recreated it
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
            if len(self._deaths) > MAX_RESTARTS:
                raise DetectorError(
                    f"detector {self.model!r}: worker processes died {len(self._deaths)} times "
                    f"within {RESTART_WINDOW_S:.0f} s ({exc}); stopping") from exc
            log.error("detector=%s worker process died (%s); recreating the pool of %d and "
                      "re-sending the frames in flight (%d/%d restarts in %.0f s)", self.model,
                      exc, self.processes, len(self._deaths), MAX_RESTARTS, RESTART_WINDOW_S)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            self._generation += 1

    def submit(self, image: np.ndarray) -> Job:
        """Send one frame; the job's detections are in the frame's own pixels."""
        frame_size = (image.shape[1], image.shape[0])
        return Job(self, shrink_for_detector(image, self.send_size), frame_size)

    def close(self) -> None:
        """Stop the workers; frames still queued are cancelled."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InlineDetector:
    """``detector.processes: 1``: the detector in this process, behind the same ``submit`` /
    ``result`` as the pool (detection happens in ``submit``)."""

    processes = 1

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.input_side: int | None = getattr(detector, "input_side", None)

    def submit(self, image: np.ndarray) -> Future:
        future: Future = Future()
        future.set_result(self.detector.detect(image))
        return future

    def close(self) -> None:
        pass
