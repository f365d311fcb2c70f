"""Edge worker configuration: one YAML file per edge box, validated before anything starts.

Every model forbids unknown keys, so a misspelt ``dwel_s`` fails at startup with the file, the
key path and the reason, instead of silently falling back to a default at 3 a.m.

Zones and their rules are the floor's (``wire.zones``): the center validates engineers' edits
and the edges' reports with the same models. What is here is the edge's alone: the broker and
its credentials, the detector and its weights, camera sources, clips, the outbox, state.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, ValidationError, field_validator, model_validator

from edge.yaml_lines import compose, line_of
from wire.errors import parse_yaml, problems, read_text
from wire.fields import Ident
from wire.mqtt_tls import MqttTls
from wire.vocabulary import OUR_CLASSES
from wire.zones import CameraZones, Strict, normalised_points, reject_duplicates


class ConfigError(Exception):
    """A configuration problem, phrased for the person editing the YAML file."""


class BrokerConfig(Strict):
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


class DetectorConfig(Strict):
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


class CropConfig(Strict):
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


class ClipConfig(Strict):
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


class CameraConfig(CameraZones):
    """A camera of this edge: its ``id`` and ``zones`` (``wire.zones.CameraZones``, unique zone
    ids) and what only the edge knows: where the stream comes from and how it is read."""

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
            normalised_points(polygon)
        return value
    #: Zone crops for small and distant objects; off by default (each window is one more
    #: detector pass per frame).
    crops: CropConfig = Field(default_factory=CropConfig)
    clips: ClipConfig = Field(default_factory=ClipConfig)

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


class OutboxConfig(Strict):
    """Store-and-forward queue on disk (see docs/edge.md for the drop policy)."""

    max_messages: int = Field(default=20_000, ge=10)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    #: QoS 1 messages handed to the broker and not yet acknowledged (paho's default too).
    max_inflight: int = Field(default=20, ge=1, le=1000)


class ClipOutboxConfig(Strict):
    """Clips waiting on disk (``state_dir``/clips) for the broker to acknowledge every chunk
    (edge/clip_outbox.py); past either bound the oldest waiting clips are dropped, logged."""

    max_clips: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=2 * 1024 ** 3, ge=1024 * 1024)
    #: Chunks handed to the broker and not yet acknowledged (alerts go first).
    max_inflight: int = Field(default=8, ge=1, le=1000)


class LiveConfig(Strict):
    """Live view on demand (edge/live/, docs/video.md "Live view"): the center asks, the edge
    remuxes the camera's packets into HLS segments and sends them over MQTT."""

    enabled: bool = True
    #: Cameras streamed at once (the uplink's share for video); one more ask is refused.
    max_streams: int = Field(default=4, ge=1, le=64)
    #: Shortest segment; a segment ends at the first key frame after this, so with a camera
    #: whose key frames are further apart, segments (and the viewer's delay) are longer.
    segment_s: float = Field(default=1.0, ge=0.2, le=10.0)
    #: Re-encode to H.264 a camera whose codec browsers do not play (MJPEG, HEVC); off: such
    #: a camera's stream is refused instead. Costs a decode and an encode per frame.
    transcode: bool = True
    #: H.264 whose key frames are seen further apart than this is transcoded too (with
    #: ``transcode`` on): remuxed, its segments would be that long and the picture that late.
    #: Cameras at the usual 1-2 s remux; null: remux whatever the spacing.
    max_keyframe_interval_s: float | None = Field(default=3.0, ge=0.5, le=60.0)


class MotionConfig(Strict):
    """How moving objects are told from stationary ones (ByteTrack tracks)."""

    tracker: Literal["bytetrack", "none"] = "bytetrack"
    #: A track that moved more than this many of its own box diagonals within ``window_s``
    #: is moving and never builds dwell.
    max_move: float = Field(default=0.5, gt=0.0)
    window_s: float = Field(default=3.0, gt=0.0)


class EvidenceConfig(Strict):
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


class EdgeConfig(Strict):
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
    live: LiveConfig = Field(default_factory=LiveConfig)
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
        reject_duplicates([c.id for c in self.cameras], "camera id")
        return self


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
