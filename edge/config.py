"""Edge worker configuration: one YAML file per edge box, validated before anything starts.

Every model forbids unknown keys, so a misspelt ``dwel_s`` fails at startup with the file, the
key path and the reason, instead of silently falling back to a default at 3 a.m.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.yaml_lines import compose, line_of
from wire.errors import parse_yaml, problems, read_text
from wire.mqtt_tls import MqttTls
from wire.protocol import EventCode, Ident
from wire.vocabulary import (
    OUR_CLASSES,
    RULE_CLASSES,
    RULE_DEFAULT_CLASSES,
    WEEKDAYS,
    RuleType,
)


class ConfigError(Exception):
    """A configuration problem, phrased for the person editing the YAML file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(_Strict):
    """The MQTT broker and this edge's account on it (``gridwatch mqtt gen-auth`` writes the
    snippet: ``username`` is the edge id, ``password_file`` a 0600 file with the password)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    #: A file holding the password, read at start (keeps the secret out of the YAML).
    password_file: Path | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    #: Set (even empty, ``tls: {}``) to connect with TLS; relative paths are taken from the
    #: YAML file's folder.
    tls: MqttTls | None = None

    @model_validator(mode="after")
    def _one_password(self) -> BrokerConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def secret(self) -> str | None:
        """The password (read from ``password_file`` when that is set); raises ConfigError."""
        if self.password_file is None:
            return self.password
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"broker.password_file {self.password_file}: cannot read: "
                              f"{exc.strerror or exc}") from None


class DetectorConfig(_Strict):
    """Which detector runs and how; ``model`` is a name in models/registry.yaml.

    Own weights need no registry edit: keep ``model`` at an entry with the right backend (for
    example ``yolo11n``) and set ``path`` to your ``best.pt``, ``best.onnx`` or
    ``best_openvino_model/`` folder, and ``class_map`` to map its classes to ours.
    """

    model: str = "nanodet-m-416-coco"
    score_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    threads: int = Field(default=1, ge=1, le=64)
    #: Weights file or export folder (a replay file for the ``fake`` backend) replacing the
    #: registry entry's ``path``; relative paths are taken from the current directory.
    path: str | None = None
    #: Model class name -> our class, replacing the registry entry's ``class_map``.
    class_map: dict[str, str] | None = None
    iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    #: Inference size in pixels; default: the entry's ``imgsz``, an export's own size, or 640.
    imgsz: int | None = Field(default=None, ge=32, le=4096)
    #: Frames from several cameras per inference call, where the backend gains from it.
    max_batch: int = Field(default=1, ge=1, le=64)
    #: Worker processes running the detector (each with ``threads`` threads); 1 = in the
    #: edge's own process. On a 2-core box 2 x 1 thread beats 1 x 2 (docs/performance.md).
    processes: int = Field(default=1, ge=1, le=64)

    @field_validator("class_map")
    @classmethod
    def _maps_to_our_classes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        unknown = sorted(set((value or {}).values()) - OUR_CLASSES)
        if unknown:
            raise ValueError(f"class_map maps to unknown classes {unknown}; "
                             f"choose from {sorted(OUR_CLASSES)}")
        return value


#: Classes whose detections are goods or a stall for ``doorway_trading``; people only support
#: them (a vendor, customers) and never qualify a violation by themselves.
GOODS_CLASSES = frozenset({"vending_cue", "car"})
#: Ambiguous classes get size bounds by default where a rule type reads them as something
#: else: in a shopfront, a COCO model calls a hand cart "truck" or "car"; a box the size and
#: shape of a cart (at most 3 % of the frame, not much wider than tall) is goods, a real
#: vehicle is not. Initial values, to be calibrated with ``gridwatch eval``.
RULE_CLASS_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "doorway_trading": {"car": {"max_area": 0.03, "max_aspect": 1.8}}}


class ClassRule(_Strict):
    """Per-class overrides inside a rule; unset values fall back to the rule, then the zone."""

    dwell_s: float | None = Field(default=None, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Box area as a fraction of the frame; filters far-away specks and frame-filling blobs.
    min_area: float = Field(default=0.0, ge=0.0, le=1.0)
    max_area: float = Field(default=1.0, gt=0.0, le=1.0)
    #: Box shape (width / height); tells a cart read as "truck" from a real truck.
    min_aspect: float = Field(default=0.0, ge=0.0)
    max_aspect: float = Field(default=100.0, gt=0.0)

    @model_validator(mode="after")
    def _area_order(self) -> ClassRule:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area {self.min_area} must be below max_area {self.max_area}")
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect {self.min_aspect} must be below max_aspect "
                             f"{self.max_aspect}")
        return self


class ShopfrontConfig(_Strict):
    """Where a shop may use the pavement: goods standing within ``allowed_depth`` of the door
    line (on the street side) are the shop's own strip; only goods beyond it count."""

    #: Two normalised [x, y] points along the shop's front (its door line).
    door_line: tuple[tuple[float, float], tuple[float, float]]
    #: Depth of the allowed strip, as a fraction of the frame height (perpendicular distance
    #: from the door line to the ground point of a box, in pixels / frame height).
    allowed_depth: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("door_line")
    @classmethod
    def _line(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if any(not (0.0 <= v <= 1.0) for point in value for v in point):
            raise ValueError("door_line points must be normalised (0..1)")
        if value[0] == value[1]:
            raise ValueError("door_line needs two different points")
        return value


class ScheduleWindow(_Strict):
    """When a rule is active, in the edge's ``timezone``. ``end`` before ``start`` is an
    overnight window: it starts on the listed day and ends the next morning."""

    days: list[str] = Field(default_factory=lambda: list[str](WEEKDAYS), min_length=1)
    start: str = "00:00"
    end: str = "24:00"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower() not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown days {bad}; use {list(WEEKDAYS)}")
        return [d.lower() for d in value]

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> str:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 07:00 as the number 420
            value = f"{value // 60:02d}:{value % 60:02d}"
        text = str(value)
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if not m or int(m[1]) > 24 or int(m[2]) > 59 or (int(m[1]) == 24 and int(m[2])):
            raise ValueError(f"time {text!r} is not HH:MM (00:00..24:00)")
        return f"{int(m[1]):02d}:{m[2]}"

    def minutes(self) -> tuple[int, int]:
        def to_min(t: str) -> int:
            h, m = t.split(":")
            return int(h) * 60 + int(m)
        return to_min(self.start), to_min(self.end)


class RuleConfig(_Strict):
    """One rule of a zone. ``illegal_parking`` (0506): a two-wheeler standing still in the zone
    for ``dwell_s``, nobody riding it. ``doorway_trading`` (0504): goods or a stall (vending
    cues, a cart) staying put beyond the shop's allowed strip, with people around them, at
    least ``min_objects`` objects of which at least one is goods, for ``dwell_s``."""

    type: RuleType
    #: Defaults to the type; must be unique within the zone.
    id: Ident | None = None
    #: Defaults from the type: illegal_parking 0506 (0505 when only cars are watched),
    #: doorway_trading 0504.
    event_type: EventCode | None = None
    #: A list of class names, or a mapping class -> per-class settings (dwell_s, min_score,
    #: min_area, max_area, min_aspect, max_aspect). Defaults: illegal_parking [two_wheeler];
    #: doorway_trading [vending_cue, person, car (cart-sized only)].
    classes: dict[str, ClassRule] | None = None
    dwell_s: float | None = Field(default=None, gt=0.0)
    clear_s: float | None = Field(default=None, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Qualifying objects needed at once; default 1 (illegal_parking) / 2 (doorway_trading).
    min_objects: int | None = Field(default=None, ge=1, le=100)
    #: Empty: always active.
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    #: doorway_trading only: the shop's door line and the strip it may use.
    shopfront: ShopfrontConfig | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {name: {} for name in value}
        return {k: ({} if v is None else v) for k, v in value.items()} if isinstance(
            value, dict) else value

    @model_validator(mode="after")
    def _fill(self) -> RuleConfig:
        if self.id is None:
            self.id = self.type
        if self.classes is None:
            self.classes = {name: ClassRule() for name in RULE_DEFAULT_CLASSES[self.type]}
        for name, bounds in RULE_CLASS_DEFAULTS.get(self.type, {}).items():
            rule = self.classes.get(name)
            if rule is not None:  # defaults only for the bounds the config leaves unset
                self.classes[name] = ClassRule.model_validate(
                    {**bounds, **rule.model_dump(exclude_unset=True)})
        if self.shopfront is not None and self.type != "doorway_trading":
            raise ValueError("shopfront is for doorway_trading rules only")
        allowed = RULE_CLASSES[self.type]
        bad = sorted(set(self.classes) - set(allowed))
        if bad or not self.classes:
            raise ValueError(f"classes {bad or '[]'} not usable by {self.type}; "
                             f"choose from {list(allowed)}")
        if self.event_type is None:
            self.event_type = ("0504" if self.type == "doorway_trading" else
                               "0505" if set(self.classes) == {"car"} else "0506")
        if self.min_objects is None:
            self.min_objects = 2 if self.type == "doorway_trading" else 1
        return self


class ZoneConfig(_Strict):
    """A polygon in normalised image coordinates, so it survives a change of stream resolution.

    Two forms: ``rules: [...]`` (any number of rules, each with its own type, classes, dwell
    and schedule), or the original one-rule form with ``event_type`` and ``classes`` on the
    zone, which is read as one rule (0504 -> doorway_trading with min_objects 1, anything else
    -> illegal_parking). ``dwell_s``, ``clear_s`` and ``min_score`` on the zone are the
    defaults of its rules; ``min_score`` unset falls back to the model's per-class default
    (models/registry.yaml).
    """

    id: Ident
    polygon: list[tuple[float, float]] = Field(min_length=3)
    #: Frames an object must be seen in the zone before it counts (flicker filter).
    inertia: int = Field(default=3, ge=1, le=100)
    dwell_s: float = Field(default=30.0, gt=0.0)
    clear_s: float = Field(default=10.0, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    rules: list[RuleConfig] = Field(default_factory=list)
    # The original one-rule form:
    event_type: EventCode | None = None
    classes: list[str] | None = Field(default=None, min_length=1)

    @field_validator("polygon")
    @classmethod
    def _normalised(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return _normalised_points(value)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - OUR_CLASSES)
        if unknown:
            raise ValueError(f"unknown classes {unknown}; choose from {sorted(OUR_CLASSES)}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> ZoneConfig:
        legacy = self.event_type is not None or self.classes is not None
        if self.rules and legacy:
            raise ValueError("give either rules: [...] or event_type + classes, not both")
        if not self.rules:
            if self.event_type is None or self.classes is None:
                raise ValueError("a zone needs rules: [...] (or event_type and classes)")
            kind: RuleType = "doorway_trading" if self.event_type == "0504" else "illegal_parking"
            bad = sorted(set(self.classes) - set(RULE_CLASSES[kind]))
            if bad:
                raise ValueError(f"classes {bad} cannot be used for event {self.event_type} "
                                 f"({kind}: {list(RULE_CLASSES[kind])})")
            self.rules = [RuleConfig(type=kind, event_type=self.event_type,
                                     classes={c: ClassRule() for c in self.classes},
                                     min_objects=1)]
            # Kept only in the rules form, so a dump (the config state the center sees, and
            # pushes back with edited zones) validates again.
            self.event_type = self.classes = None
        _reject_duplicates([r.id or r.type for r in self.rules], "rule id")
        return self


class CropConfig(_Strict):
    """Extra detector passes over the camera's zones at a larger scale, so small and distant
    objects are found (edge/detect/crops.py; cost and figures in docs/edge.md)."""

    #: off: the whole frame only. zones: square windows over each zone's bounding region, at
    #: least the model's input side. tiles: windows of ``tile_px`` over the zones' regions.
    mode: Literal["off", "zones", "tiles"] = "off"
    #: Tile side in frame pixels; unset: the model's input side (the detector sees native
    #: pixels). Smaller tiles enlarge tiny objects further, at more passes per frame.
    tile_px: int | None = Field(default=None, ge=32, le=4096)
    #: Share of a window repeated in its neighbour, so an object cut by one is whole in another.
    overlap: float = Field(default=0.2, ge=0.0, le=0.5)
    #: Also analyse the whole frame, for objects larger than a window (as SAHI does).
    full_frame: bool = True


#: Longest rolling packet buffer a camera may keep (seconds), whatever its dwell times.
MAX_CLIP_BUFFER_S = 600.0
#: Slack added to the longest dwell when the buffer length is derived: a site needs
#: ``inertia`` sightings at 60 % of frames besides its dwell (edge/rules.py), so its first
#: sighting can lie a few seconds before "dwell ago".
CLIP_BUFFER_SLACK_S = 10.0


class ClipConfig(_Strict):
    """Alert clips of one camera (edge/clips.py, docs/video.md): a rolling buffer of its
    encoded packets (PyAV sources only), from which every violation gets a clip from its first
    sighting minus ``pre_roll_s`` to ``post_roll_s`` after its ``new``, and an ``end`` clip of
    the ``end_clip_s`` before its ``end`` (the zone clear: the fix)."""

    enabled: bool = True
    pre_roll_s: float = Field(default=5.0, ge=0.0, le=60.0)
    post_roll_s: float = Field(default=5.0, ge=0.0, le=60.0)
    #: 0: no end clip.
    end_clip_s: float = Field(default=5.0, ge=0.0, le=60.0)
    #: Seconds of packets kept. Unset: the camera's longest dwell + ``pre_roll_s`` +
    #: ``CLIP_BUFFER_SLACK_S``, at most ``MAX_CLIP_BUFFER_S``.
    buffer_s: float | None = Field(default=None, gt=0.0, le=MAX_CLIP_BUFFER_S)
    #: Hard memory bound of the buffer (bytes): 64 MiB is ~2 min of a 4 Mbit/s camera.
    buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, le=2 * 1024 ** 3)


class CameraConfig(_Strict):
    id: Ident
    name: str = ""
    #: File path, rtsp:// or http(s):// URL, or a device index such as "0". A still image is a
    #: valid source: it behaves like a frozen camera, which is handy for demos and tests.
    source: str = Field(min_length=1)
    loop: bool = True
    #: Files only: seconds of stream time to replay, then stop. A still image with a duration
    #: is a frozen camera for that long (with ``loop: false`` and none it gives one frame,
    #: which no dwell can build on); a video with ``loop: true`` loops until then.
    duration_s: float | None = Field(default=None, gt=0.0)
    sample_fps: float = Field(default=1.0, ge=0.1, le=30.0)
    #: ``auto``: PyAV (decodes only what is sampled) for files and streams, OpenCV for devices.
    decoder: str = Field(default="auto", pattern=r"^(auto|pyav|opencv)$")
    #: Seconds of an unchanged picture (stream time) before the camera counts as frozen.
    frozen_after_s: float = Field(default=120.0, gt=0.0)
    #: Seconds frames may run behind real time before the camera counts as lagging.
    lag_s: float = Field(default=5.0, gt=0.0)
    #: Seconds to wait for a live source to open or deliver the next packet.
    timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    #: Longest wait between reconnect attempts (the wait doubles from 1 s up to this).
    reconnect_max_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    zones: list[ZoneConfig] = Field(default_factory=list)
    #: Normalised polygons (traffic lanes, stop lines) where no object ever counts for any zone
    #: of this camera: what box geometry cannot settle, such as a queue at a red light.
    exclude: list[list[tuple[float, float]]] = Field(default_factory=list)

    @field_validator("exclude")
    @classmethod
    def _exclude_polygons(cls, value: list[list[tuple[float, float]]]
                          ) -> list[list[tuple[float, float]]]:
        for polygon in value:
            if len(polygon) < 3:
                raise ValueError("an exclude polygon needs at least 3 points")
            _normalised_points(polygon)
        return value
    #: Zone crops for small and distant objects; off by default (each window is one more
    #: detector pass per frame).
    crops: CropConfig = Field(default_factory=CropConfig)
    clips: ClipConfig = Field(default_factory=ClipConfig)

    @model_validator(mode="after")
    def _unique_zone_ids(self) -> CameraConfig:
        _reject_duplicates([z.id for z in self.zones], "zone id")
        return self

    @model_validator(mode="after")
    def _buffer_reaches_back(self) -> CameraConfig:
        clips = self.clips
        if clips.buffer_s is not None and clips.enabled:
            needed = self.longest_dwell_s() + clips.pre_roll_s
            if clips.buffer_s < needed:
                raise ValueError(
                    f"clips.buffer_s {clips.buffer_s:g} is shorter than the longest dwell "
                    f"({self.longest_dwell_s():g} s) + clips.pre_roll_s ({clips.pre_roll_s:g} s)"
                    f": a clip could not reach back to the first sighting; raise it to at "
                    f"least {needed:g} or leave it unset")
        return self

    def longest_dwell_s(self) -> float:
        """The longest dwell any rule of this camera can wait (class, rule or zone)."""
        dwells = [c.dwell_s or r.dwell_s or z.dwell_s for z in self.zones for r in z.rules
                  for c in (r.classes or {}).values()]
        return max(dwells, default=0.0)

    def clip_buffer_s(self) -> float:
        """Seconds of packets the camera keeps for clips (``ClipConfig.buffer_s``)."""
        if self.clips.buffer_s is not None:
            return self.clips.buffer_s
        return min(self.longest_dwell_s() + self.clips.pre_roll_s + CLIP_BUFFER_SLACK_S,
                   MAX_CLIP_BUFFER_S)

    @property
    def is_file(self) -> bool:
        return not (self.source.isdigit() or re.match(r"^[a-z][a-z0-9+.-]*://", self.source))


class OutboxConfig(_Strict):
    """Store-and-forward queue on disk (see docs/edge.md for the drop policy)."""

    max_messages: int = Field(default=20_000, ge=10)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    #: QoS 1 messages handed to the broker and not yet acknowledged (paho's default too).
    max_inflight: int = Field(default=20, ge=1, le=1000)


class ClipOutboxConfig(_Strict):
    """Clips waiting on disk (``state_dir``/clips) for the broker to acknowledge every chunk
    (edge/clip_outbox.py); past either bound the oldest waiting clips are dropped, logged."""

    max_clips: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=2 * 1024 ** 3, ge=1024 * 1024)
    #: Chunks handed to the broker and not yet acknowledged (alerts go first).
    max_inflight: int = Field(default=8, ge=1, le=1000)


class MotionConfig(_Strict):
    """How moving objects are told from stationary ones (ByteTrack tracks)."""

    tracker: Literal["bytetrack", "none"] = "bytetrack"
    #: A track that moved more than this many of its own box diagonals within ``window_s``
    #: is moving and never builds dwell.
    max_move: float = Field(default=0.5, gt=0.0)
    window_s: float = Field(default=3.0, gt=0.0)


class EvidenceConfig(_Strict):
    """The clean full frame kept with each new alert (edge/evidence.py), training data for the
    model loop (models/README.md); the drawn snapshot and crop are unaffected."""

    #: Send the frame the alert fired on, undrawn, with the frame's detections as pre-labels.
    #: Off unless set: a center older than Alert.frame refuses alerts that carry it, so an
    #: upgraded edge turns it on once its center is upgraded (the shipped configs do).
    keep_frame: bool = False
    #: Longest side of the kept frame in pixels (larger frames are shrunk).
    frame_max_side: int = Field(default=1920, ge=320, le=4096)
    frame_quality: int = Field(default=90, ge=50, le=100)
    #: Privacy switch: blur detected people's heads and cars' plate band in the kept frame
    #: before it leaves the edge. On by default (data minimisation, models/README.md).
    blur: bool = True


class EdgeConfig(_Strict):
    edge_id: Ident
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    heartbeat_s: float = Field(default=10.0, gt=0.0)
    #: Seconds between the camera frames sent to the center for engineers to draw zones on
    #: (one also goes out as soon as each camera delivers its first frame).
    frame_every_s: float = Field(default=60.0, gt=0.0)
    #: IANA time zone in which rule schedules are read.
    timezone: str = "Asia/Shanghai"
    #: Files only: the wall-clock time of stream time 0. Unset, a replay starts "now"; set it
    #: to make schedule decisions of a replay reproducible.
    replay_start: AwareDatetime | None = None
    #: Folder for the store-and-forward queue and open violations (SQLite). Unset: kept in
    #: memory only, so an edge restart loses undelivered alerts. Relative to the YAML file.
    state_dir: Path | None = None
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    clip_outbox: ClipOutboxConfig = Field(default_factory=ClipOutboxConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    #: Apply configs pushed by the center on gridwatch/v1/config/{edge_id} (retained).
    accept_pushed_config: bool = True
    cameras: list[CameraConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a folder
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> EdgeConfig:
        _reject_duplicates([c.id for c in self.cameras], "camera id")
        return self


def _normalised_points(value: list[tuple[float, float]]) -> list[tuple[float, float]]:
    for x, y in value:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point [{x}, {y}] is outside 0..1 (use normalised coordinates)")
    return value


def _reject_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"duplicate {what} {ident!r}")
        seen.add(ident)


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate an edge YAML file; relative file sources are taken from its folder,
    so a config and its media can move together."""
    path = Path(path)
    text = read_text(path, ConfigError)
    raw = parse_yaml(text, path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        root = compose(text)  # parsed above, so this cannot fail
        raise ConfigError("\n".join(f"{path}:{line_of(root, loc)}: {text}"
                                     for loc, text in problems(exc))) from None
    for camera in config.cameras:
        if camera.is_file and not Path(camera.source).is_absolute():
            camera.source = str((path.parent / camera.source).resolve())
    if config.state_dir is not None and not config.state_dir.is_absolute():
        config.state_dir = (path.parent / config.state_dir).resolve()
    broker = config.broker
    if broker.password_file is not None and not broker.password_file.is_absolute():
        broker.password_file = (path.parent / broker.password_file).resolve()
    if broker.tls is not None:
        broker.tls = broker.tls.relative_to(path.parent)
    return config
