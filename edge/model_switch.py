"""Model assignments from the center (retained ``gridwatch/v1/model/{edge_id}``, a
``wire.protocol.ModelAssignment``): the edge swaps its detector live, or keeps the old one
and says why. docs/model-rollout.md is the engineer's side of it.

A switch, step by step:

1. paho's thread hands the payload to :meth:`ModelSwitcher.offer`, which parses it; a malformed
   one is refused with a logged reason (and reported when it names its rollout).
2. The switcher's own thread resolves the model through models/registry.yaml, as the edge
   config does (``path`` replacing the entry's weights), checks that the weights exist on this
   box and that their SHA-256 is the assigned one, and LOADS the new detector (a pool of
   processes, or in-process) while the old one goes on analysing frames. For that moment both
   models are in memory.
3. The runner takes the loaded detector between frames (:meth:`ModelSwitcher.take`): the
   frames in flight finish on the old detector, the new one replaces it and the old one is
   closed. Cameras, zones, tracks and open violations stay as they are, so a bike already
   reported is not reported again; only the model's per-class score defaults
   (``set_model_defaults``) and the detector's threshold floor (``edge.rules.detector_floor``,
   with the new model's defaults) change.

Any failure (unknown model, missing weights, another SHA-256, a load error) keeps the old
detector running and is reported in the edge's config state (``model.refused``). Putting the
weights on the box is the deployment's job: the assignment carries a digest, never the file.
An assignment of the model, weights and digest already running swaps nothing and is confirmed
at once (an edge restarted under a retained assignment reloads only when its file differs).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from edge.config import DetectorConfig, EdgeConfig
from edge.detect import check_model
from edge.rules import CameraRules, min_scores
from wire.errors import describe
from wire.models import weights_path, weights_sha256
from wire.protocol import ModelAssignment, ModelRefusal, ModelState

log = logging.getLogger(__name__)

#: The runner's way of opening a detector for a config (pool or in-process), and closing it.
Loader = Callable[[EdgeConfig], Any]


@dataclass(frozen=True)
class Switch:
    """A model to run from now on: its detector section and its loaded detector (None when the
    assignment names what already runs)."""

    detector: DetectorConfig
    handle: Any
    state: ModelState


@dataclass(frozen=True)
class Refused:
    """An assignment not taken: the old model keeps running; ``state.refused`` says why."""

    state: ModelState


class AssignmentRefused(ValueError):
    """Why an assignment cannot run on this edge, phrased for the engineer who rolled it out."""


def running_state(config: EdgeConfig) -> ModelState:
    """What the edge's own config runs, before any assignment (digest None when the weights
    cannot be found: a backend that downloads them, say)."""
    try:
        sha = weights_sha256(weights_path(config.detector.model, config.detector.path))
    except (KeyError, OSError):
        sha = None
    return ModelState(model=config.detector.model, sha256=sha, since=datetime.now(UTC))


def set_model_defaults(rules: dict[str, CameraRules], defaults: dict[str, float]) -> None:
    """Give every camera's rules the new model's per-class ``min_score`` defaults, in place, so
    their sites, tracks and open violations carry on (``edge.rules.min_scores`` recomputes
    each rule's floors from the same chain: class, rule, zone, model default)."""
    for camera_rules in rules.values():
        camera_rules.defaults = defaults
        for zone in camera_rules.zones:
            zone.defaults = defaults
            for state in zone.rules:
                state.min_score = min_scores(zone.zone, state.rule, defaults)


def _refusal(payload: bytes, reason: str) -> ModelRefusal | None:
    """A refusal to report for a malformed payload, when it names its rollout at all."""
    try:
        rollout_id = json.loads(payload).get("rollout_id")
    except (ValueError, AttributeError):
        return None
    if not isinstance(rollout_id, int) or isinstance(rollout_id, bool) or rollout_id < 1:
        return None
    return ModelRefusal(rollout_id=rollout_id, at=datetime.now(UTC), reason=reason[:1000])


class ModelSwitcher:
    """Checks and loads assigned models on a thread of its own; the runner takes the result
    between frames. One assignment at a time: the newest waiting one wins."""

    def __init__(self, config: EdgeConfig, load: Loader,
                 on_ready: Callable[[], None] = lambda: None) -> None:
        self.edge_id = config.edge_id
        self.state = running_state(config)
        self.refused = 0
        self._config = config
        self._load = load
        self._on_ready = on_ready
        self._pending: ModelAssignment | ModelRefusal | None = None
        self._ready: Switch | Refused | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="model-switch", daemon=True)
        self._thread.start()

    def offer(self, payload: bytes) -> None:
        """An assignment as it came from the broker (paho's thread: parse only)."""
        try:
            item: ModelAssignment | ModelRefusal | None = (
                ModelAssignment.model_validate_json(payload))
        except ValidationError as exc:
            reason = "malformed model assignment: " + describe(exc, with_input=False)
            self._log_refusal(None, reason)
            item = _refusal(payload, reason)
            if item is None:
                return
        with self._cond:
            self._pending = item
            self._cond.notify_all()

    def running(self, config: EdgeConfig) -> None:
        """The config the runner runs now (a zone push changed it), for the next switch's
        threshold floor."""
        with self._cond:
            self._config = config

    def take(self) -> Switch | Refused | None:
        """The loaded model or the refusal waiting for the runner, if any; from now on its
        state is the edge's."""
        with self._cond:
            ready, self._ready = self._ready, None
            if ready is not None:
                self.state = ready.state
                self._cond.notify_all()
            return ready

    def close(self) -> None:
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, None
            self._cond.notify_all()
        self._thread.join(timeout=5)
        if isinstance(ready, Switch) and ready.handle is not None:
            ready.handle.close()

    def _work(self) -> None:
        while True:
            with self._cond:
                # One at a time: the next is judged against what the runner runs after this.
                self._cond.wait_for(lambda: self._closed or (self._pending is not None
                                                             and self._ready is None))
                if self._closed:
                    return
                item, self._pending = self._pending, None
                config, state = self._config, self.state
            assert item is not None
            result = self._judge(item, config, state)
            with self._cond:
                if self._closed:
                    if isinstance(result, Switch) and result.handle is not None:
                        result.handle.close()
                    return
                self._ready = result
            self._on_ready()

    def _judge(self, item: ModelAssignment | ModelRefusal, config: EdgeConfig,
               state: ModelState) -> Switch | Refused:
        if isinstance(item, ModelRefusal):
            self.refused += 1
            return Refused(state.model_copy(update={"refused": item}))
        try:
            return self._switch(item, config, state)
        except AssignmentRefused as exc:
            self.refused += 1
            self._log_refusal(item.rollout_id, str(exc))
            refusal = ModelRefusal(rollout_id=item.rollout_id, at=datetime.now(UTC),
                                   reason=str(exc)[:1000])
            return Refused(state.model_copy(update={"refused": refusal}))

    def _switch(self, assignment: ModelAssignment, config: EdgeConfig,
                state: ModelState) -> Switch:
        if assignment.edge_id != self.edge_id:
            raise AssignmentRefused(f"the assignment names edge {assignment.edge_id!r}, not "
                                    f"this edge ({self.edge_id!r})")
        try:
            path = weights_path(assignment.model, assignment.path)
        except (KeyError, FileNotFoundError) as exc:
            raise AssignmentRefused(str(exc.args[0])) from None
        if not path.exists():
            raise AssignmentRefused(f"model {assignment.model!r}: weights {path} are not on "
                                    f"this edge (put them there before the rollout)")
        sha = weights_sha256(path)
        if sha != assignment.sha256:
            raise AssignmentRefused(f"model {assignment.model!r}: weights {path} have SHA-256 "
                                    f"{sha}, the assignment says {assignment.sha256}")
        new_state = ModelState(model=assignment.model, sha256=sha, since=datetime.now(UTC),
                               rollout_id=assignment.rollout_id, rollback=assignment.rollback)
        running = config.detector
        if ((running.model, running.path) == (assignment.model, assignment.path)
                and sha == state.sha256):
            log.info("edge=%s model %s (sha256 %s) already runs; rollout %d confirmed",
                     self.edge_id, assignment.model, sha[:12], assignment.rollout_id)
            return Switch(running, None, new_state.model_copy(update={"since": state.since}))
        # The assignment names the weights; the running file's class map and size belong to
        # the old model (a model with classes of its own gets a registry entry).
        detector = running.model_copy(update={"model": assignment.model,
                                              "path": assignment.path, "class_map": None,
                                              "imgsz": None})
        if problems := check_model(detector):
            raise AssignmentRefused("; ".join(problem for _key, problem in problems))
        try:
            handle = self._load(config.model_copy(update={"detector": detector}))
        except Exception as exc:  # noqa: BLE001 - any load failure keeps the old model
            raise AssignmentRefused(f"loading model {assignment.model!r} failed: "
                                    f"{type(exc).__name__}: {exc}") from None
        log.info("edge=%s model %s (sha256 %s) loaded for rollout %d; swapping between frames",
                 self.edge_id, assignment.model, sha[:12], assignment.rollout_id)
        return Switch(detector, handle, new_state)

    def _log_refusal(self, rollout_id: int | None, reason: str) -> None:
        log.error("edge=%s model assignment%s REFUSED, model %s keeps running: %s",
                  self.edge_id, "" if rollout_id is None else f" (rollout {rollout_id})",
                  self.state.model, reason)
