"""Pushes from the center on the retained topic ``gridwatch/v1/config/{edge_id}``.

Two payloads, told apart by the protocol's ``schema_version`` (which an edge config document
never has):

- ``ZonesPush`` (``wire.protocol``), what the center sends: the zones of some of this edge's
  cameras, checked by the same models the center checked them with (``wire.zones``). Each
  listed camera's zone list replaces its running one; a camera this edge does not run refuses
  the push (its source is added in the edge's own file). The center never holds the edge's
  sources or credentials, so it cannot send them.
- A whole edge config document (YAML or JSON, the edge's own schema): what an operator pushes
  to change ``heartbeat_s``, ``frame_every_s``, ``timezone`` or ``evidence`` (kept full frames,
  privacy blur) live, set centrally without touching each edge's file; and what a center older
  than ``ZonesPush`` left retained, which an upgraded edge still applies on restart instead of
  dropping the engineers' zone edits. The center only ever sees the edge's config with its
  secrets removed (``edge.publish.shareable``), so a document that leaves out the broker
  credentials, or carries a camera source exactly as redacted there, keeps the running values.

Either is validated as soon as it arrives. A push that is invalid, names another edge, or
changes anything beyond those live keys (broker, detector, cameras, sources, state_dir...) is
rejected with one logged error naming the problem, and the running config keeps running. The
detector changes by model assignment instead (``edge.model_switch``, docs/model-rollout.md).
Zones whose config did not change keep their state; a changed zone (same id) carries its open
violations over to its new rules with the same rule id, so a zone edit never opens a second
alert for a bike already reported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edge.capture.redact import redact
from edge.config import DetectorConfig, EdgeConfig
from edge.rules import CameraRules, detector_floor
from wire.errors import describe
from wire.protocol import ZonesPush

log = logging.getLogger(__name__)

#: Top-level keys a push may change live (``evidence``: the city's privacy switch and frame
#: keeping, set centrally without touching each edge's file).
LIVE_KEYS = {"heartbeat_s", "frame_every_s", "timezone", "cameras", "evidence"}


class PushRejected(ValueError):
    """Why a pushed config was not applied, phrased for the person who pushed it."""


def parse_pushed(payload: bytes, running: EdgeConfig, config_dir: Path) -> EdgeConfig:
    """Validate a push (``ZonesPush`` or a config document) against the running config and
    return the config to run; raises ``PushRejected``."""
    try:
        raw: Any = yaml.safe_load(payload.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PushRejected(f"not UTF-8 YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PushRejected(f"expected a mapping, got {type(raw).__name__}")
    if "schema_version" in raw:
        new = _with_pushed_zones(raw, running)
    else:
        new = _from_document(raw, running, config_dir)
    if detector_floor(new) < detector_floor(running):  # it would drop boxes a zone asks for
        raise PushRejected(f"zones need the detector at score {detector_floor(new)}, it runs "
                           f"at {detector_floor(running)}: restart the edge with this config")
    return new


def _with_pushed_zones(raw: dict[str, Any], running: EdgeConfig) -> EdgeConfig:
    """The running config with the cameras' zones of a ``ZonesPush``, validated whole (a
    camera's clip buffer must still reach back over its longest dwell)."""
    try:
        push = ZonesPush.model_validate(raw)
    except ValidationError as exc:
        raise PushRejected(describe(exc)) from None
    _same_edge(push.edge_id, running)
    zones = {c.id: c.zones for c in push.cameras}
    if unknown := sorted(set(zones) - {c.id for c in running.cameras}):
        raise PushRejected(f"cameras {unknown} are not run by this edge (a camera and its "
                           "source are added in the edge's own config file)")
    doc = running.model_dump()
    for camera in doc["cameras"]:
        if camera["id"] in zones:
            camera["zones"] = [z.model_dump() for z in zones[camera["id"]]]
    try:
        return EdgeConfig.model_validate(doc)
    except ValidationError as exc:
        raise PushRejected(describe(exc)) from None


def _from_document(raw: dict[str, Any], running: EdgeConfig, config_dir: Path) -> EdgeConfig:
    """A whole config document, if it changes only ``LIVE_KEYS`` and the cameras' zones."""
    _keep_secrets(raw, running)
    try:
        new = EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        raise PushRejected(describe(exc)) from None
    for camera in new.cameras:
        if camera.is_file and not Path(camera.source).is_absolute():
            camera.source = str((config_dir / camera.source).resolve())
    if new.state_dir is not None and not new.state_dir.is_absolute():
        new.state_dir = (config_dir / new.state_dir).resolve()
    _same_edge(new.edge_id, running)
    old_d = running.model_dump(exclude=LIVE_KEYS)
    new_d = new.model_dump(exclude=LIVE_KEYS)
    changed = sorted(k for k in old_d if old_d[k] != new_d.get(k))
    old_cams = [c.model_dump(exclude={"zones"}) for c in running.cameras]
    new_cams = [c.model_dump(exclude={"zones"}) for c in new.cameras]
    if old_cams != new_cams:
        changed.append("cameras (other than their zones)")
    if changed:
        model = (" (a model changes by `gridwatch model rollout`, docs/model-rollout.md)"
                 if "detector" in changed else "")
        raise PushRejected(f"changes {', '.join(changed)}: only zones, heartbeat_s and "
                           f"timezone can change without a restart{model}")
    return new


def _same_edge(edge_id: str, running: EdgeConfig) -> None:
    if edge_id != running.edge_id:
        raise PushRejected(f"edge_id {edge_id!r} is not this edge ({running.edge_id!r})")


def _keep_secrets(raw: dict[str, Any], running: EdgeConfig) -> None:
    """Put back what ``edge.publish.shareable`` removed: broker credentials left out (or
    null) and camera sources that are the running source's redacted form."""
    broker = raw.get("broker")
    if isinstance(broker, dict):
        for key in ("username", "password"):
            if broker.get(key) is None and getattr(running.broker, key) is not None:
                broker[key] = getattr(running.broker, key)
    sources = {c.id: c.source for c in running.cameras}
    for camera in raw.get("cameras") or ():
        if isinstance(camera, dict) and camera.get("id") in sources:
            source = sources[camera["id"]]
            if camera.get("source") == redact(source) != source:
                camera["source"] = source


class ConfigInbox:
    """Takes pushes on paho's thread, hands the newest valid one to the inference loop."""

    def __init__(self, running: EdgeConfig, config_dir: Path) -> None:
        self._running = running
        self._dir = config_dir
        self._pending: EdgeConfig | None = None
        self._lock = threading.Lock()
        self.rejected = 0
        self.accepted = 0

    def offer(self, payload: bytes) -> None:
        with self._lock:
            base = self._pending or self._running
        try:
            new = parse_pushed(payload, base, self._dir)
        except PushRejected as exc:
            self.rejected += 1
            log.error("edge=%s pushed config REJECTED, the running config stays: %s",
                      base.edge_id, exc)
            return
        with self._lock:
            self._pending = new
            self.accepted += 1

    def set_detector(self, detector: DetectorConfig) -> None:
        """A model switch (``edge.model_switch``) changed the running detector: pushes are
        judged against it from now on, and one already accepted carries it too."""
        with self._lock:
            self._running = self._running.model_copy(update={"detector": detector})
            if self._pending is not None:
                self._pending = self._pending.model_copy(update={"detector": detector})

    def take(self) -> EdgeConfig | None:
        with self._lock:
            new, self._pending = self._pending, None
            if new is not None:
                self._running = new
            return new


def apply_zones(old: EdgeConfig, new: EdgeConfig, rules: dict[str, CameraRules],
                build: Callable[[Any], CameraRules]) -> EdgeConfig:
    """Swap each camera's rules for the new zones, keeping state where it still fits."""
    if new.model_dump() == old.model_dump():
        return new
    for old_cam, cam in zip(old.cameras, new.cameras, strict=True):
        if old_cam.zones == cam.zones and old.timezone == new.timezone:
            rules[cam.id].camera = cam
            continue
        fresh = build(cam)
        previous = {z.zone.id: z for z in rules[cam.id].zones}
        for i, zone in enumerate(fresh.zones):
            before = previous.get(zone.zone.id)
            if before is None:
                continue
            if before.zone == zone.zone and old.timezone == new.timezone:
                fresh.zones[i] = before
                continue
            open_ = {r.rule.id: r.export() for r in before.rules}
            for state in zone.rules:
                if saved := open_.get(state.rule.id):
                    state.restore(saved)
        fresh.tracker = rules[cam.id].tracker
        dropped = set(previous) - {z.zone.id for z in fresh.zones}
        for zone_id in sorted(dropped):
            for state in previous[zone_id].rules:
                if state.violation is not None:
                    log.warning("camera=%s alert_id=%s zone %s removed by a pushed config; its "
                                "open violation gets no end message", cam.id,
                                state.violation.alert_id, zone_id)
        rules[cam.id] = fresh
        log.info("camera=%s pushed config applied: zones %s", cam.id,
                 [z.id for z in cam.zones])
    return new
