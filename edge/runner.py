"""The edge's main loop: capture threads -> one inference loop -> rules -> evidence -> sinks.

Inference runs on one thread for all cameras, because the detector already uses the CPU's
cores (``detector.threads``) and interleaving cameras keeps each one's latency fair.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.capture import CameraCapture, SourceState
from edge.config import EdgeConfig
from edge.detect import Detector, load_detector
from edge.evidence import snapshot
from edge.publish import AlertSink, FolderRecorder, MqttPublisher, to_alert
from edge.rules import CameraRules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunStats:
    frames_analysed: int
    frames_dropped: int
    alerts_sent: int


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM end the run cleanly (offline statuses get published); only the main
    thread may install handlers, so runs in other threads (tests) rely on ``stop_event``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(config: EdgeConfig, *, until_eof: bool = False, speed: float = 1.0,
        record_dir: Path | None = None, stop_event: threading.Event | None = None,
        mqtt: bool = True) -> RunStats:
    """Run the edge until ``stop_event`` is set, a signal arrives, or (``until_eof``) every
    file camera has reached its end. ``speed`` paces file replay (0 = as fast as possible);
    ``mqtt=False`` replays offline, with ``record_dir`` as the only output."""
    stop = stop_event or threading.Event()
    detector = load_detector(config.detector.model, threads=config.detector.threads,
                             score_threshold=config.detector.score_threshold)
    sinks: list[AlertSink] = []
    if record_dir is not None:
        sinks.append(FolderRecorder(record_dir))
    publisher = MqttPublisher(config.edge_id, config.broker) if mqtt else None
    if publisher is not None:
        publisher.start()
        sinks.append(publisher)

    def on_state(camera_id: str, state: SourceState, detail: str) -> None:
        log.info("camera=%s state=%s %s", camera_id, state, detail)
        if publisher is not None:
            publisher.camera_status(camera_id, state, detail)

    wakeup = threading.Event()
    captures = [CameraCapture(camera, stop, speed=speed, on_state=on_state, wakeup=wakeup)
                for camera in config.cameras]
    for capture in captures:
        capture.start()
    try:
        with _stop_on_signals(stop):
            analysed, sent = _loop(config, captures, detector, sinks, publisher, stop, wakeup,
                                   until_eof)
    finally:
        stop.set()
        for capture in captures:
            capture.join(timeout=5)
        if publisher is not None:
            publisher.close()
    stats = RunStats(analysed, sum(c.queue.dropped for c in captures), sent)
    log.info("edge=%s stopped: %s", config.edge_id, stats)
    return stats


def _loop(config: EdgeConfig, captures: list[CameraCapture], detector: Detector,
          sinks: list[AlertSink], publisher: MqttPublisher | None, stop: threading.Event,
          wakeup: threading.Event, until_eof: bool) -> tuple[int, int]:
    rules = {camera.id: CameraRules(camera) for camera in config.cameras}
    analysed = sent = 0
    next_beat = time.monotonic()
    while not stop.is_set():
        wakeup.clear()  # before looking at the queues, so a frame put meanwhile is not missed
        got_frame = False
        for capture in captures:
            frame = capture.queue.get_nowait()
            if frame is None:
                continue
            got_frame = True
            analysed += 1
            for event in rules[frame.camera_id].update(frame, detector.detect(frame.image)):
                alert = to_alert(config.edge_id, snapshot(event))
                log.info("camera=%s alert_id=%s kind=%s zone=%s label=%s score=%.2f",
                         alert.camera_id, alert.alert_id, alert.kind, alert.zone_id,
                         alert.label, alert.score)
                for sink in sinks:
                    try:
                        sink.send(alert)
                    except Exception:  # one broken output must not stop the others
                        log.exception("camera=%s alert_id=%s sink %s failed", alert.camera_id,
                                      alert.alert_id, type(sink).__name__)
                sent += 1
        if publisher is not None and time.monotonic() >= next_beat:
            publisher.heartbeat(len(captures), analysed, sum(c.queue.dropped for c in captures))
            next_beat = time.monotonic() + config.heartbeat_s
        if not got_frame:
            if until_eof and all(c.finished.is_set() and not len(c.queue) for c in captures):
                break
            wakeup.wait(0.2)
    return analysed, sent
