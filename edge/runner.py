"""The edge's main loop: capture threads -> one inference loop -> rules -> evidence -> sinks.

Inference runs on one thread for all cameras, because the detector already uses the CPU's
cores (``detector.threads``) and interleaving cameras keeps each one's latency fair. With
``detector.processes`` > 1 that thread hands frames to a pool of detector processes
(edge/detect/pool.py), keeps up to that many in flight, and takes the results back in the
order it sent them, so each camera's rules still see its frames in order.

Open violations are restored from the edge's store at start (an edge restarted mid-violation
continues the same alert) and saved with every message. A config pushed by the center is
validated on paho's thread and applied here, between frames (``edge.reconfig``); so is a
model assigned by the center, loaded beside the running one first (``edge.model_switch``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.capture import CameraCapture, Frame, SourceState
from edge.capture.packets import CameraPackets, PacketRing
from edge.clip_outbox import ClipOutbox
from edge.clips import ClipCutter
from edge.config import CameraConfig, DetectorConfig, EdgeConfig
from edge.detect import Detections, load_from_config
from edge.detect.crops import submit_frame
from edge.detect.crops import windows as crop_windows
from edge.detect.pool import DetectorPool, InlineDetector
from edge.evidence import keep_frame, snapshot, thumbnail
from edge.live.streams import LiveStreams
from edge.model_switch import ModelSwitcher, Switch, set_model_defaults
from edge.outbox import EdgeStore
from edge.publish import FolderRecorder, MqttPublisher, to_alert
from edge.reconfig import ConfigInbox, apply_zones
from edge.rules import CameraRules, detector_floor
from edge.track import MotionTracker
from wire.models import model_min_scores
from wire.protocol import MAX_FRAME_SIDE, MAX_SNAPSHOT_BYTES

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


def open_store(config: EdgeConfig) -> EdgeStore:
    path = None if config.state_dir is None else Path(config.state_dir) / "edge.sqlite"
    if path is None:
        log.warning("edge=%s no state_dir: undelivered alerts and open violations are kept in "
                    "memory only", config.edge_id)
    return EdgeStore(path, max_messages=config.outbox.max_messages,
                     max_bytes=config.outbox.max_bytes)


def open_clip_outbox(config: EdgeConfig, record_dir: Path | None, mqtt: bool
                     ) -> ClipOutbox | None:
    """Where alert clips wait: ``state_dir``/clips for the broker; an offline replay keeps
    them in ``record_dir``/clips (MP4 + description) and has none without one."""
    if not any(c.clips.enabled for c in config.cameras):
        return None
    if not mqtt:
        return None if record_dir is None else ClipOutbox(Path(record_dir) / "clips")
    folder = None if config.state_dir is None else Path(config.state_dir) / "clips"
    return ClipOutbox(folder, max_clips=config.clip_outbox.max_clips,
                      max_bytes=config.clip_outbox.max_bytes)


def clip_sources(config: EdgeConfig) -> dict[str, CameraPackets]:
    """A packet buffer for every camera with clips on (``CameraConfig.clip_buffer_s``)."""
    return {c.id: CameraPackets(c.id, PacketRing(c.clip_buffer_s(), c.clips.buffer_bytes))
            for c in config.cameras if c.clips.enabled}


#: The packet buffer of a camera that has live view but no clips: a key-frame group or two.
LIVE_ONLY_RING_S = 1.0
LIVE_ONLY_RING_BYTES = 32 * 1024 * 1024


def live_sources(config: EdgeConfig, packets: dict[str, CameraPackets]
                 ) -> dict[str, CameraPackets]:
    """``packets`` plus a small packet source for every camera without one, which live view
    listens to."""
    return {c.id: packets.get(c.id) or CameraPackets(
        c.id, PacketRing(LIVE_ONLY_RING_S, LIVE_ONLY_RING_BYTES)) for c in config.cameras}


def camera_rules(config: EdgeConfig, camera: CameraConfig) -> CameraRules:
    tracker = MotionTracker(camera.sample_fps, max_move=config.motion.max_move,
                            window_s=config.motion.window_s,
                            enabled=config.motion.tracker == "bytetrack")
    return CameraRules(camera, ZoneInfo(config.timezone), tracker,
                       model_min_scores(config.detector.model))


def detector_settings(config: EdgeConfig) -> DetectorConfig:
    """The detector as the edge runs it (``edge preview`` too): it keeps every box some zone
    would accept (``edge.rules.detector_floor``)."""
    return config.detector.model_copy(update={"score_threshold": detector_floor(config)})


def open_detector(config: EdgeConfig, wakeup: threading.Event) -> DetectorPool | InlineDetector:
    """The detector ``config`` asks for: a pool of processes (a finished job wakes the loop
    like a new frame) or in-process. At start and for a model switch."""
    settings = detector_settings(config)
    if settings.processes > 1:
        return DetectorPool(settings, settings.processes, on_done=wakeup.set)
    return InlineDetector(load_from_config(settings))


class _Active:
    """The detector in use; a model switch replaces it between frames (``swap``)."""

    def __init__(self, detector: DetectorPool | InlineDetector) -> None:
        self.detector = detector
        self._closing: list[threading.Thread] = []

    def swap(self, new: DetectorPool | InlineDetector) -> None:
        """``new`` from now on; the old one is closed on a thread of its own, since stopping a
        pool's processes takes about half a second (docs/model-rollout.md) that the frames
        should not wait for. Call it with no frame in flight on the old one."""
        old, self.detector = self.detector, new
        closing = threading.Thread(target=old.close, name="detector-close", daemon=True)
        closing.start()
        self._closing.append(closing)

    def close(self) -> None:
        self.detector.close()
        for closing in self._closing:
            closing.join()


def run(config: EdgeConfig, *, until_eof: bool = False, speed: float = 1.0,
        record_dir: Path | None = None, stop_event: threading.Event | None = None,
        mqtt: bool = True, config_dir: Path | None = None) -> RunStats:
    """Run the edge until ``stop_event`` is set, a signal arrives, or (``until_eof``) every
    file camera has reached its end. ``speed`` paces file replay (0 = as fast as possible);
    ``mqtt=False`` replays offline, with ``record_dir`` as the only output. ``config_dir``
    resolves relative file sources of a config pushed by the center."""
    stop = stop_event or threading.Event()
    wakeup = threading.Event()
    active = _Active(open_detector(config, wakeup))
    try:
        return _run(config, active, wakeup, stop, until_eof=until_eof, speed=speed,
                    record_dir=record_dir, mqtt=mqtt, config_dir=config_dir)
    finally:
        active.close()


def _run(config: EdgeConfig, active: _Active, wakeup: threading.Event,
         stop: threading.Event, *, until_eof: bool, speed: float, record_dir: Path | None,
         mqtt: bool, config_dir: Path | None) -> RunStats:
    store = open_store(config)
    recorder = FolderRecorder(record_dir) if record_dir is not None else None
    clip_outbox = open_clip_outbox(config, record_dir, mqtt)
    packets = clip_sources(config) if clip_outbox is not None else {}
    cutter = None if clip_outbox is None else ClipCutter(
        config.edge_id, packets, {c.id: c.clips for c in config.cameras}, clip_outbox)
    inbox = ConfigInbox(config, config_dir or Path.cwd())
    publisher = switcher = live = None
    # Captures by camera, for live view's packet sources (a camera read through OpenCV has
    # none: its capture drops it); before the captures exist, the sources they will get.
    by_camera: dict[str, CameraCapture] = {}
    if mqtt:
        if config.accept_pushed_config:
            switcher = ModelSwitcher(config, partial(open_detector, wakeup=wakeup),
                                     on_ready=wakeup.set)
        publisher = MqttPublisher(config.edge_id, config.broker, store=store,
                                  outbox=config.outbox, clips=clip_outbox,
                                  clip_inflight=config.clip_outbox.max_inflight,
                                  on_config=inbox.offer if switcher else None,
                                  on_model=switcher.offer if switcher else None)
        if config.live.enabled:
            packets = live_sources(config, packets)
            live = LiveStreams(
                config.edge_id, [c.id for c in config.cameras],
                lambda camera_id: by_camera[camera_id].packets if camera_id in by_camera
                else packets.get(camera_id), publisher.live, max_streams=config.live.max_streams,
                segment_s=config.live.segment_s, transcode=config.live.transcode,
                max_keyframe_interval_s=config.live.max_keyframe_interval_s)
            publisher.on_live = live.offer
        publisher.start()
        publisher.config_state(config, model=switcher.state if switcher else None)

    def on_state(camera_id: str, state: SourceState, detail: str,
                 fps: float | None = None) -> None:
        log.info("camera=%s state=%s fps=%s %s", camera_id, state, fps, detail)
        if publisher is not None:
            publisher.camera_status(camera_id, state, detail, fps=fps)
        if live is not None:
            live.camera_state(camera_id, state, detail)

    # Rules (and ByteTrack's import) before the cameras start, so no early frame waits or drops.
    rules = {camera.id: camera_rules(config, camera) for camera in config.cameras}
    captures = [CameraCapture(camera, stop, speed=speed, on_state=on_state, wakeup=wakeup,
                              packets=packets.get(camera.id))
                for camera in config.cameras]
    by_camera.update((capture.camera.id, capture) for capture in captures)
    for capture in captures:
        capture.start()
    try:
        with _stop_on_signals(stop):
            analysed, sent = _loop(config, rules, captures, active, store, recorder,
                                   publisher, inbox, switcher, stop, wakeup, until_eof, cutter)
    finally:
        stop.set()
        if switcher is not None:
            switcher.close()
        for capture in captures:
            capture.join(timeout=5)
        if cutter is not None:  # clips still waiting for their post-roll: what there is
            cutter.close()
        if live is not None:
            live.close()
        if publisher is not None:
            publisher.close()
        if clip_outbox is not None:
            clip_outbox.close()
        store.close()
    stats = RunStats(analysed, sum(c.queue.dropped for c in captures), sent)
    log.info("edge=%s stopped: %s", config.edge_id, stats)
    return stats


def _loop(config: EdgeConfig, rules: dict[str, CameraRules], captures: list[CameraCapture],
          active: _Active, store: EdgeStore, recorder: FolderRecorder | None,
          publisher: MqttPublisher | None, inbox: ConfigInbox,
          switcher: ModelSwitcher | None, stop: threading.Event,
          wakeup: threading.Event, until_eof: bool,
          cutter: ClipCutter | None = None) -> tuple[int, int]:
    saved = store.violations()
    for camera_rule in rules.values():
        for state in camera_rule.states():
            if state.key in saved:
                state.restore(saved[state.key])
                log.info("camera=%s alert_id=%s resuming open violation %s", state.camera_id,
                         saved[state.key]["alert_id"], state.key)
    analysed = sent = 0
    next_beat = time.monotonic()
    next_frame: dict[str, float] = {}  # camera -> when its next frame goes to the center
    # Frames sent to the detector and not yet through the rules, oldest first.
    pending: deque[tuple[Frame, Any]] = deque()

    def finish_oldest() -> int:
        frame, job = pending.popleft()
        return _handle(config, rules[frame.camera_id], frame, job.result(), store, recorder,
                       publisher, cutter)

    while not stop.is_set():
        wakeup.clear()  # before looking at the queues, so a frame put meanwhile is not missed
        pushed = inbox.take()
        if pushed is not None:
            config = apply_zones(config, pushed, rules, partial(camera_rules, pushed))
            if switcher is not None:
                switcher.running(config)
            if publisher is not None:
                publisher.config_state(config, model=switcher.state if switcher else None)
        assigned = switcher.take() if switcher is not None else None
        if isinstance(assigned, Switch) and switcher is not None:
            if assigned.handle is not None:  # loaded: the frames in flight finish on the old
                while pending:
                    sent += finish_oldest()
                active.swap(assigned.handle)
            config = config.model_copy(update={"detector": assigned.detector})
            inbox.set_detector(assigned.detector)
            switcher.running(config)
            set_model_defaults(rules, model_min_scores(config.detector.model))
            log.info("edge=%s now runs model %s (sha256 %s, rollout %s)", config.edge_id,
                     assigned.state.model, (assigned.state.sha256 or "?")[:12],
                     assigned.state.rollout_id)
        if assigned is not None and publisher is not None:
            publisher.config_state(config, model=assigned.state)
        got_frame = False
        for capture in captures:
            frame = capture.queue.get_nowait()
            if frame is None:
                continue
            got_frame = True
            while len(pending) >= active.detector.processes:
                sent += finish_oldest()
            analysed += 1
            if config.replay_start is not None and capture.camera.is_file:
                frame = replace(frame, wall=config.replay_start + timedelta(seconds=frame.ts))
            if publisher is not None and time.monotonic() >= next_frame.get(frame.camera_id, 0):
                next_frame[frame.camera_id] = time.monotonic() + config.frame_every_s
                _send_frame(publisher, frame)
            pending.append((frame, _submit(active.detector, rules[frame.camera_id].camera,
                                           frame)))
        while pending and pending[0][1].done():
            sent += finish_oldest()
        if publisher is not None and time.monotonic() >= next_beat:
            publisher.heartbeat(len(captures), analysed, sum(c.queue.dropped for c in captures))
            next_beat = time.monotonic() + config.heartbeat_s
        if not got_frame:
            if until_eof and not pending and all(c.finished.is_set() and not len(c.queue)
                                                 for c in captures):
                break
            wakeup.wait(0.2)
    while pending:  # stopped: the frames in flight still go through the rules
        sent += finish_oldest()
    return analysed, sent


def _submit(detector: DetectorPool | InlineDetector, camera: CameraConfig, frame: Frame) -> Any:
    """The frame to the detector, with the camera's zone crops when it has them on."""
    size = (frame.image.shape[1], frame.image.shape[0])
    rects = crop_windows(camera.crops, camera.zones, size, detector.input_side)
    return submit_frame(detector, frame.image, rects, full_frame=camera.crops.full_frame)


def _send_frame(publisher: MqttPublisher, frame: Frame) -> None:
    try:
        publisher.camera_frame(frame.camera_id, thumbnail(frame.image, MAX_FRAME_SIDE))
    except Exception:  # the engineer view's picture must never stop detection
        log.exception("camera=%s frame for the center could not be sent", frame.camera_id)


def _handle(config: EdgeConfig, camera_rules_: CameraRules, frame: Frame,
            detections: Detections, store: EdgeStore, recorder: FolderRecorder | None,
            publisher: MqttPublisher | None, cutter: ClipCutter | None = None) -> int:
    events = camera_rules_.update(frame, detections)
    states = {s.key: s for s in camera_rules_.states()}
    for event in events:
        evidence = snapshot(event)
        if event.kind == "new" and config.evidence.keep_frame:
            evidence = replace(evidence, frame=keep_frame(
                event, detections, config.evidence, MAX_SNAPSHOT_BYTES - len(evidence.jpeg)))
        alert = to_alert(config.edge_id, evidence)
        key = f"{event.camera_id}/{event.zone.id}/{event.rule.id}"
        violation = (key, states[key].export() if key in states else None)
        log.info("camera=%s alert_id=%s seq=%d kind=%s zone=%s rule=%s label=%s count=%d "
                 "score=%.2f", alert.camera_id, alert.alert_id, alert.seq, alert.kind,
                 alert.zone_id, event.rule.id, alert.label, event.violation.count, alert.score)
        if recorder is not None:
            try:
                recorder.send(alert, crop_jpeg=evidence.crop_jpeg)
            except Exception:  # one broken output must not stop the others
                log.exception("camera=%s alert_id=%s recorder failed", alert.camera_id,
                              alert.alert_id)
        if publisher is not None:
            publisher.send(alert, violation=violation)
        else:
            store.save_violation(*violation)
        if cutter is not None:
            cutter.on_event(event)
    return len(events)
