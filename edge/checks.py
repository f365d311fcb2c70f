"""Checks that need more than the YAML: can the model's classes feed each rule, does each camera
deliver a frame.

``edge check-config`` runs them after validation, and ``edge preview`` reads its frames through
``sample_frames``. Both go through the real capture code (``edge.capture.CameraCapture``, the
same decoder choice, timeouts and reconnect messages as ``edge run``), so a source that passes
here is a source the edge can read, and one that fails says why in the words the running edge
would log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from edge.capture import CameraCapture, Frame, SourceState, redact
from edge.config import CameraConfig, EdgeConfig

#: Added to a camera's ``timeout_s`` for its first frame: decoder start-up, a still's decode.
STARTUP_MARGIN_S = 2.0
#: Sources opened at once by ``check_sources`` (each open is a thread and a decoder).
MAX_PARALLEL_OPENS = 16


class SourceError(Exception):
    """A camera source that delivered no frame; the message is the capture's reason."""


def _reason(detail: str) -> str:
    """The capture's offline detail without its reconnect promise (a check does not retry)."""
    for tail in ("; retrying", "; reconnecting"):
        detail = detail.split(tail, 1)[0]
    return detail or "went offline"


def sample_frames(camera: CameraConfig, *, frames: int | None = None,
                  seconds: float = 0.0) -> Iterator[Frame]:
    """Sampled frames of ``camera`` as ``edge run`` would see them (at its ``sample_fps``),
    until ``frames`` frames or ``seconds`` of stream time, whichever comes first (neither: one
    frame). Files replay as fast as they decode. Raises ``SourceError`` when no frame comes
    within the camera's ``timeout_s``; a source that ends or drops later just ends the
    sequence."""
    stop, wakeup = threading.Event(), threading.Event()
    offline: list[str] = []

    def on_state(_camera_id: str, state: SourceState, detail: str) -> None:
        if state == "offline":
            offline.append(detail)
            wakeup.set()

    capture = CameraCapture(camera, stop, speed=0.0, on_state=on_state, wakeup=wakeup)
    capture.start()
    wait_s = camera.timeout_s + STARTUP_MARGIN_S
    try:
        count, first_ts = 0, None
        deadline = time.monotonic() + wait_s
        while True:
            wakeup.clear()
            frame = capture.queue.get_nowait()
            if frame is not None:
                yield frame
                count += 1
                first_ts = frame.ts if first_ts is None else first_ts
                if ((frames is not None and count >= frames)
                        or (seconds > 0 and frame.ts - first_ts >= seconds)
                        or (frames is None and seconds <= 0)):
                    return
                deadline = time.monotonic() + wait_s
                continue
            if offline or capture.finished.is_set():
                if count:
                    return
                raise SourceError(_reason(offline[-1] if offline else "capture stopped"))
            if time.monotonic() > deadline:
                what = "a frame" if not count else "the next frame"
                raise SourceError(f"no {what} within {wait_s:.0f} s")
            wakeup.wait(0.1)
    finally:
        stop.set()
        capture.join(timeout=1.0)  # a live decoder blocked in a read is a daemon thread


@contextmanager
def quiet(logger: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise ``logger``'s level for a while: a check reports the capture's problems itself,
    and its INFO/WARNING lines would say the same thing twice."""
    log = logging.getLogger(logger)
    previous = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(previous)


def check_rule_classes(config: EdgeConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules none of whose classes the model can output: such a rule can never alert (a
    custom model mapping only ``ebike`` and ``person`` under a ``doorway_trading`` rule)."""
    from edge.detect import model_classes

    produced = model_classes(config.detector)
    if produced is None:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for c, camera in enumerate(config.cameras):
        for z, zone in enumerate(camera.zones):
            for r, rule in enumerate(zone.rules):
                watched = set(rule.classes or ())
                if not watched & produced:
                    text = (f"rule {rule.id} watches {sorted(watched)}, which model "
                            f"{config.detector.model!r} never outputs (its class map gives "
                            f"{sorted(produced)}): this rule can never alert")
                    problems.append((("cameras", c, "zones", z, "rules", r, "classes"), text))
    return problems


def check_source(camera: CameraConfig) -> str | None:
    """Why ``camera`` delivers no frame (None when it does)."""
    try:
        next(sample_frames(camera, frames=1))
    except SourceError as exc:
        source = redact(camera.source)
        reason = str(exc)
        return f"camera {camera.id}: {reason if source in reason else f'{source}: {reason}'}"
    return None


def check_sources(config: EdgeConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Open the cameras in parallel (a dead camera costs its ``timeout_s``, not the sum);
    each problem comes with the key path of the camera's ``source``."""
    workers = min(MAX_PARALLEL_OPENS, max(1, len(config.cameras)))
    with quiet("edge.capture"), ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(check_source, config.cameras))
    return [(("cameras", i, "source"), r) for i, r in enumerate(results) if r]
