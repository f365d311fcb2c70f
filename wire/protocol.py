"""Wire protocol v1: the one place that defines what travels between edge, center and screens.

Producers (edge workers, simulators) and consumers (center ingest, dashboards) all import this
module, so a topic or a field cannot drift between them. It depends on the standard library and
pydantic only, so an edge box can import it without the center's database stack.

Idempotency: an alert is one violation seen by one camera in one zone. ``alert_id`` is created by
the edge when the violation starts and stays the same for its ``update`` and ``end`` messages;
``seq`` counts the messages of that alert. ``(alert_id, seq)`` is therefore globally unique and
the center stores each message at most once, however often MQTT QoS 1 redelivers it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_serializer,
    field_validator,
    model_validator,
)

from wire.fields import EventCode, Ident
from wire.zones import CameraZones, reject_duplicates

SCHEMA_VERSION: Literal[1] = 1
TOPIC_ROOT = "gridwatch/v1"
#: MQTT QoS for everything that must not be lost (alerts, status).
QOS_RELIABLE = 1
#: Largest snapshot the center accepts, decoded. Bigger pictures are an edge misconfiguration.
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
#: Largest MQTT payload of the protocol: an alert carrying the largest snapshot (base64: 4/3 of
#: it; a kept frame shares that budget) plus its other fields, with room to spare; frames and
#: configs are smaller. Every broker config the project writes refuses bigger ones
#: (``message_size_limit``, docs/security.md).
MAX_PAYLOAD_BYTES = MAX_SNAPSHOT_BYTES * 4 // 3 + 64 * 1024

#: A SHA-256 digest in lower-case hex (weights files, ``edge.model_switch.weights_sha256``).
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]

#: How far an edge's event time may run ahead of the center's clock when it arrives: a day
#: covers a wrong time zone or a drifting clock, not a year typed by hand.
MAX_CLOCK_AHEAD = timedelta(days=1)
#: Oldest ``last_seen_at`` the center stores: what an edge's outbox can plausibly still be
#: resending after a long outage. Older is not live evidence any more.
MAX_ALERT_AGE = timedelta(days=7)
#: Longest a violation may have lasted (``last_seen_at`` - ``started_at``).
MAX_VIOLATION_LENGTH = timedelta(days=30)
#: Oldest ``at`` of a status or heartbeat: retained statuses may be old, not ancient.
MAX_STATUS_AGE = timedelta(days=366)


def _storable(value: str) -> str:
    """PostgreSQL's text and jsonb cannot hold NUL: refused here, with a reason, instead of
    failing in the database (lone surrogates are refused by the JSON parser already)."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (U+0000)")
    return value


#: Free text that the center stores.
Text = Annotated[str, AfterValidator(_storable)]


def _storable_json(value: Any, path: str = "config") -> None:
    """``_storable`` for every key and string of a JSON document."""
    if isinstance(value, str):
        try:
            _storable(value)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable_json(k, f"{path} key")
            _storable_json(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _storable_json(v, f"{path}[{i}]")


def time_window_problem(at: datetime, now: datetime, max_age: timedelta,
                        what: str) -> str | None:
    """Why an edge's event time ``at`` is outside ``[now - max_age, now + MAX_CLOCK_AHEAD]``
    of the center's clock, or None. Far-off times are a broken clock or a forged message, and
    some (year 9999 at -14:00) cannot even be read back by the center."""
    if at > now + MAX_CLOCK_AHEAD:
        return (f"{what} {at.isoformat()} is more than {MAX_CLOCK_AHEAD} ahead of the center's"
                f" clock ({now.isoformat()})")
    if at < now - max_age:
        return (f"{what} {at.isoformat()} is more than {max_age} before the center's clock"
                f" ({now.isoformat()})")
    return None


class _Versioned(BaseModel):
    """Every wire object (MQTT and websocket) carries ``schema_version`` 1, and unknown fields
    are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # lax mode would take `true` for 1
            raise ValueError("schema_version must be the integer 1")
        return value


class _Message(_Versioned):
    """An MQTT message: immutable once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- topics -----------------------------------------------------------------------------------


def alert_topic(edge_id: str, camera_id: str) -> str:
    return f"{TOPIC_ROOT}/alerts/{edge_id}/{camera_id}"


def edge_status_topic(edge_id: str) -> str:
    """Retained; the edge's MQTT last-will writes ``offline`` here when it dies."""
    return f"{TOPIC_ROOT}/status/{edge_id}"


def camera_status_topic(edge_id: str, camera_id: str) -> str:
    """Retained, so a center that starts later still learns every camera's state."""
    return f"{TOPIC_ROOT}/status/{edge_id}/{camera_id}"


def heartbeat_topic(edge_id: str) -> str:
    return f"{TOPIC_ROOT}/heartbeat/{edge_id}"


def edge_config_topic(edge_id: str) -> str:
    """Retained, center -> edge: the zones of the edge's cameras (``ZonesPush``, what the
    center sends), or a whole edge config document (the edge's own schema, for the live keys
    beyond zones: an operator's push); the edge validates either and applies it live."""
    return f"{TOPIC_ROOT}/config/{edge_id}"


def edge_config_state_topic(edge_id: str) -> str:
    """Retained, edge -> center: the config the edge runs now (``EdgeConfigState``, with broker
    credentials and camera URL passwords removed); re-published after every applied push."""
    return f"{TOPIC_ROOT}/config-state/{edge_id}"


def camera_frame_topic(edge_id: str, camera_id: str) -> str:
    """Retained, edge -> center: a recent frame of the camera as a bare JPEG (longest side at
    most ``MAX_FRAME_SIDE``), sent on start and every ``frame_every_s``; engineers draw zones
    on it."""
    return f"{TOPIC_ROOT}/frames/{edge_id}/{camera_id}"


def model_assignment_topic(edge_id: str) -> str:
    """Retained, center -> edge: the detector model the edge must run (``ModelAssignment``);
    the edge verifies the weights' SHA-256, swaps live and reports in its config state."""
    return f"{TOPIC_ROOT}/model/{edge_id}"


def clip_topic(edge_id: str, camera_id: str) -> str:
    """Edge -> center, QoS 1: an alert clip's MP4 in chunks (``ClipChunk``), from the edge's
    on-disk clip outbox; a chunk leaves it only once the broker acknowledged it."""
    return f"{TOPIC_ROOT}/clips/{edge_id}/{camera_id}"


def live_request_topic(edge_id: str) -> str:
    """Not retained, center -> edge: start, keep alive or stop a camera's live stream
    (``LiveRequest``). Not retained so that a center that died never restarts a stream from
    the broker's memory."""
    return f"{TOPIC_ROOT}/live/{edge_id}"


def live_data_topic(edge_id: str, camera_id: str) -> str:
    """Edge -> center, QoS 0: the live stream's HLS segments in chunks (``LiveChunk``). A lost
    chunk loses one second of video; resending old video to a live viewer is worthless."""
    return f"{TOPIC_ROOT}/live-data/{edge_id}/{camera_id}"


def live_state_topic(edge_id: str, camera_id: str) -> str:
    """Edge -> center: a live stream started, stopped or was refused, and why
    (``LiveState``)."""
    return f"{TOPIC_ROOT}/live-state/{edge_id}/{camera_id}"


#: Longest side of a camera frame thumbnail, in pixels.
MAX_FRAME_SIDE = 640
#: Largest camera frame thumbnail the center stores.
MAX_FRAME_BYTES = 1024 * 1024

#: What the edges report for the engineer view (stored by ``center.edge_state``).
EDGE_STATE_SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/config-state/+",
    f"{TOPIC_ROOT}/frames/+/+",
)

#: What the center subscribes to (ingest hands the edge-state topics to ``center.edge_state``).
CENTER_SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/alerts/+/+",
    f"{TOPIC_ROOT}/status/+",
    f"{TOPIC_ROOT}/status/+/+",
    f"{TOPIC_ROOT}/heartbeat/+",
    *EDGE_STATE_SUBSCRIPTIONS,
    f"{TOPIC_ROOT}/clips/+/+",
    f"{TOPIC_ROOT}/live-data/+/+",
    f"{TOPIC_ROOT}/live-state/+/+",
)


# --- edge -> center ---------------------------------------------------------------------------

AlertKind = Literal["new", "update", "end"]


def _b64_jpeg(value: Any, field: str) -> Any:
    """A base64 JPEG field as bytes (already-bytes passes), refusing oversized text early."""
    return _b64_bytes(value, field, MAX_SNAPSHOT_BYTES)


def _b64_bytes(value: Any, field: str, max_bytes: int) -> Any:
    """A base64 field as bytes (None and already-bytes pass), refusing text that would decode
    to more than ``max_bytes`` before decoding it."""
    if value is None or isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{field} must be base64 text")
    if len(value) > max_bytes * 4 // 3 + 4:
        raise ValueError(f"{field} larger than {max_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{field} is not valid base64: {exc}") from None


def _jpeg_bytes(value: bytes | None, field: str) -> bytes | None:
    if value is not None and not (value.startswith(b"\xff\xd8") and len(value) > 4):
        raise ValueError(f"{field} is not a JPEG image")
    return value


class FrameBox(_Message):
    """One detection in a kept frame (our class vocabulary, box normalised to the frame):
    the detector's pre-label. ``violation`` marks the boxes the alert blamed, which a false
    alarm's export leaves out (docs/models.md)."""

    label: Text = Field(min_length=1, max_length=64)
    score: Unit
    bbox: tuple[Unit, Unit, Unit, Unit]
    violation: bool = False


#: Most detections a kept frame carries (a crowded street; more is a broken detector).
MAX_FRAME_BOXES = 300


class AlertFrame(_Message):
    """The camera's frame at alert time as the edge analysed it: no drawing, at most
    ``frame_max_side`` px, faces and plates blurred when the edge's privacy switch is on
    (``blurred``), with every detection of that frame. Training data for the model loop
    (``gridwatch dataset export``), kept by the center for ``frame_retention_days``."""

    jpeg: bytes
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    blurred: bool
    boxes: list[FrameBox] = Field(default_factory=list, max_length=MAX_FRAME_BOXES)

    @field_validator("jpeg", mode="before")
    @classmethod
    def _decode_jpeg(cls, value: Any) -> Any:
        return _b64_jpeg(value, "frame.jpeg")

    @field_validator("jpeg")
    @classmethod
    def _is_jpeg(cls, value: bytes) -> bytes:
        _jpeg_bytes(value, "frame.jpeg")
        return value

    @field_serializer("jpeg")
    def _encode_jpeg(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")


class Alert(_Message):
    """One message in the life of a violation: ``new`` once, ``update`` when it changes
    materially, ``end`` once the zone has been clear long enough (the center uses ``end`` to
    verify a fix with the camera that found the problem)."""

    alert_id: UUID
    seq: int = Field(ge=0, le=1_000_000)
    kind: AlertKind
    edge_id: Ident
    camera_id: Ident
    zone_id: Ident
    event_type: EventCode
    label: Text = Field(min_length=1, max_length=64)
    score: Unit
    bbox: tuple[Unit, Unit, Unit, Unit]
    started_at: AwareDatetime
    last_seen_at: AwareDatetime
    snapshot_jpeg: bytes | None = None
    #: The clean full frame (edge ``evidence.keep_frame``), on ``new`` messages.
    frame: AlertFrame | None = None
    #: Made up by a simulator (the demo's synthetic alerts: random boxes on real frames), so
    #: screens can say so. A real edge never sets it. Strict: only JSON ``true``/``false``
    #: (lax mode would take ``"yes"`` or ``1``).
    simulated: StrictBool = False

    @field_validator("snapshot_jpeg", mode="before")
    @classmethod
    def _decode_snapshot(cls, value: Any) -> Any:
        return _b64_jpeg(value, "snapshot_jpeg")

    @field_validator("snapshot_jpeg")
    @classmethod
    def _is_jpeg(cls, value: bytes | None) -> bytes | None:
        return _jpeg_bytes(value, "snapshot_jpeg")

    @field_serializer("snapshot_jpeg")
    def _encode_snapshot(self, value: bytes | None) -> str | None:
        return None if value is None else base64.b64encode(value).decode("ascii")

    @model_validator(mode="after")
    def _coherent(self) -> Alert:
        x1, y1, x2, y2 = self.bbox
        if x2 <= x1 or y2 <= y1:
            raise ValueError("bbox must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1")
        if self.last_seen_at < self.started_at:
            raise ValueError("last_seen_at is before started_at")
        if (self.kind == "new") != (self.seq == 0):
            raise ValueError("a 'new' alert has seq 0 and only it does")
        pictures = len(self.snapshot_jpeg or b"") + len(self.frame.jpeg if self.frame else b"")
        if pictures > MAX_SNAPSHOT_BYTES:  # so the payload stays under MAX_PAYLOAD_BYTES
            raise ValueError(f"snapshot_jpeg and frame.jpeg together larger than "
                             f"{MAX_SNAPSHOT_BYTES} bytes")
        return self


EdgeState = Literal["online", "offline"]
CameraState = Literal["online", "offline", "frozen", "lagging"]


class EdgeStatus(_Message):
    edge_id: Ident
    state: EdgeState
    at: AwareDatetime | None = None  # None in the last-will, which is written before death


class CameraStatus(_Message):
    edge_id: Ident
    camera_id: Ident
    state: CameraState
    at: AwareDatetime
    detail: Text = Field(default="", max_length=500)
    fps: float | None = Field(default=None, ge=0)


class Heartbeat(_Message):
    edge_id: Ident
    at: AwareDatetime
    cameras: int = Field(ge=0)
    frames_analysed: int = Field(ge=0)
    frames_dropped: int = Field(ge=0)


class ModelRefusal(_Message):
    """An assignment the edge did not run, and why; the old model kept running."""

    rollout_id: int = Field(ge=1)
    at: AwareDatetime
    reason: Text = Field(min_length=1, max_length=1000)


class ModelState(_Message):
    """The detector model an edge runs: registry name, the weights' SHA-256, since when, and
    the assignment that put it there (None: the edge's own config file); ``refused``: the
    latest assignment it did not take."""

    model: Text = Field(min_length=1, max_length=128)
    sha256: Sha256 | None = None
    since: AwareDatetime
    rollout_id: int | None = Field(default=None, ge=1)
    rollback: bool = False
    refused: ModelRefusal | None = None


class EdgeConfigState(_Message):
    """The edge's running config (its own ``EdgeConfig`` document, credentials removed) and,
    from edges that take model assignments, the model it runs (``model``)."""

    edge_id: Ident
    at: AwareDatetime
    config: dict[str, Any]
    model: ModelState | None = None

    @model_validator(mode="after")
    def _same_edge(self) -> EdgeConfigState:
        _storable_json(self.config)
        if self.config.get("edge_id") != self.edge_id:
            raise ValueError(f"config names edge {self.config.get('edge_id')!r}, "
                             f"not {self.edge_id!r}")
        return self


# --- center -> edge -------------------------------------------------------------------------


def _absolute_path(value: str | None) -> str | None:
    if value is not None and not value.startswith(("/", "~")):
        raise ValueError("path must be absolute (or start with ~): it is a path on the edge box")
    return value


class ModelAssignment(_Message):
    """The model an edge must run (retained on ``model_assignment_topic``): a name of
    models/registry.yaml, optionally other weights (``path`` on the edge box), and the SHA-256
    those weights must have. ``rollback``: it restores the model the edge ran before rollout
    ``rollout_id``."""

    edge_id: Ident
    rollout_id: int = Field(ge=1)
    rollback: bool = False
    model: Text = Field(min_length=1, max_length=128)
    path: Annotated[Text | None, AfterValidator(_absolute_path)] = Field(default=None,
                                                                       max_length=1024)
    sha256: Sha256
    at: AwareDatetime


class ZonesPush(_Message):
    """The zones of an edge's cameras (retained on ``edge_config_topic``): each listed camera's
    whole zone list replaces the one it runs, checked by the same models both sides use
    (``wire.zones``); a camera not listed keeps its zones. Only zones: the center never holds,
    nor sends, an edge's sources, credentials or detector. The edge checks it against what it
    runs (a camera it does not run refuses the whole push) and applies it between frames
    (``edge.reconfig``)."""

    edge_id: Ident
    at: AwareDatetime
    cameras: list[CameraZones] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_cameras(self) -> ZonesPush:
        reject_duplicates([c.id for c in self.cameras], "camera id")
        return self


# --- live view (docs/video.md "Live view") ---------------------------------------------------

#: Largest piece of a live segment in one MQTT message (the broker's limits, other edges'
#: alerts sharing the link: one big message would hold them up).
MAX_LIVE_CHUNK_BYTES = 256 * 1024
#: Largest live segment (all its chunks): a few seconds of a 1080p camera at 8 Mbit/s.
MAX_LIVE_SEGMENT_BYTES = 8 * 1024 * 1024
#: Longest keep-alive a request may give: a stream nobody renews stops within this.
MAX_LIVE_TTL_S = 300.0
StreamId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
LiveAction = Literal["start", "stop"]
LiveStreamState = Literal["playing", "stopped", "refused"]
#: Why a stream was refused or stopped: the camera is offline (or unknown to the edge), the
#: edge's stream limit, a codec it may not transcode, a failure, the center's stop or TTL.
LiveReason = Literal["offline", "limit", "unsupported", "error", "stopped", "expired"]


class LiveRequest(_Message):
    """Center -> edge: play ``camera_id`` as stream ``stream_id`` for ``ttl_s`` more seconds
    (``start``, repeated as the keep-alive), or stop it now. A duration, not a deadline: the
    edge counts it on its own clock, so a skewed clock cannot keep a stream alive, and a dead
    center's stream ends when the last ``ttl_s`` runs out."""

    edge_id: Ident
    camera_id: Ident
    stream_id: StreamId
    action: LiveAction
    ttl_s: float = Field(default=30.0, gt=0.0, le=MAX_LIVE_TTL_S)
    at: AwareDatetime


class LiveChunk(_Message):
    """Edge -> center: part ``part`` of ``parts`` of HLS segment ``seq`` (MPEG-TS, H.264) of a
    live stream. ``duration_s``: the segment's media length, for the playlist; ``transcoded``:
    the edge re-encoded it (the camera's codec is not one browsers play)."""

    edge_id: Ident
    camera_id: Ident
    stream_id: StreamId
    seq: int = Field(ge=0, le=2**31)
    part: int = Field(ge=0)
    parts: int = Field(ge=1, le=MAX_LIVE_SEGMENT_BYTES // MAX_LIVE_CHUNK_BYTES)
    duration_s: float = Field(gt=0.0, le=60.0)
    transcoded: bool = False
    data: bytes

    @field_validator("data", mode="before")
    @classmethod
    def _decode_data(cls, value: Any) -> Any:
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise ValueError("data must be base64 text")
        if len(value) > MAX_LIVE_CHUNK_BYTES * 4 // 3 + 4:
            raise ValueError(f"data larger than {MAX_LIVE_CHUNK_BYTES} bytes")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"data is not valid base64: {exc}") from None

    @field_validator("data")
    @classmethod
    def _chunk_size(cls, value: bytes) -> bytes:
        if not 0 < len(value) <= MAX_LIVE_CHUNK_BYTES:
            raise ValueError(f"data must hold 1 to {MAX_LIVE_CHUNK_BYTES} bytes")
        return value

    @field_serializer("data")
    def _encode_data(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    @model_validator(mode="after")
    def _part_in_range(self) -> LiveChunk:
        if self.part >= self.parts:
            raise ValueError(f"part {self.part} of {self.parts} (parts count from 0)")
        return self


class LiveState(_Message):
    """Edge -> center: what became of a live stream (``playing`` once its first segment is
    out, ``stopped`` with the reason, ``refused`` with the reason: camera offline, the edge's
    stream limit)."""

    edge_id: Ident
    camera_id: Ident
    stream_id: StreamId
    state: LiveStreamState
    reason: LiveReason | None = None
    detail: Text = Field(default="", max_length=500)
    transcoded: bool = False
    at: AwareDatetime


# --- alert clips (docs/video.md "Alert clips") -----------------------------------------------

#: Bytes of a clip per ``ClipChunk`` (every chunk but a clip's last holds exactly this many).
CLIP_CHUNK_BYTES = 256 * 1024
#: Largest clip the center accepts (a minute of an 8 Mbit/s camera is 60 MB).
MAX_CLIP_BYTES = 256 * 1024 * 1024
#: Longest clip (``ended_at`` - ``started_at``): the longest packet buffer plus the post-roll.
MAX_CLIP_LENGTH = timedelta(minutes=15)
ClipKind = Literal["violation", "end"]
#: Codecs (FFmpeg's names) a browser's ``<video>`` plays from an MP4: H.264 everywhere; H.265
#: in Safari and some Chromium builds only, so such a clip is stored but not promised.
BROWSER_CODECS = frozenset({"h264"})


class ClipChunk(_Message):
    """Edge -> center: chunk ``index`` of ``count`` of an alert clip, an MP4 remuxed from the
    camera's own packets (no re-encoding). ``violation``: from the first sighting minus the
    pre-roll to the post-roll after ``new``; ``end``: the seconds before ``end`` (the fix).
    Every chunk carries the whole clip's description, so the center can assemble chunks in
    any order and redeliveries are harmless: ``clip_id`` is ``uuid5(alert_id, kind)``.
    ``codec`` is the camera's (``h264`` plays in every browser; others are stored and said
    so)."""

    clip_id: UUID
    alert_id: UUID
    kind: ClipKind
    edge_id: Ident
    camera_id: Ident
    started_at: AwareDatetime
    ended_at: AwareDatetime
    codec: Text = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    content_type: Literal["video/mp4"] = "video/mp4"
    size: int = Field(ge=1, le=MAX_CLIP_BYTES)
    sha256: Sha256
    index: int = Field(ge=0)
    count: int = Field(ge=1, le=-(-MAX_CLIP_BYTES // CLIP_CHUNK_BYTES))
    data: bytes

    @field_validator("data", mode="before")
    @classmethod
    def _decode_data(cls, value: Any) -> Any:
        return _b64_bytes(value, "data", CLIP_CHUNK_BYTES)

    @field_serializer("data")
    def _encode_data(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    @model_validator(mode="after")
    def _coherent(self) -> ClipChunk:
        if self.clip_id != clip_id_for(self.alert_id, self.kind):
            raise ValueError("clip_id must be uuid5(alert_id, kind)")
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.ended_at - self.started_at > MAX_CLIP_LENGTH:
            raise ValueError(f"a clip longer than {MAX_CLIP_LENGTH}")
        if self.count != -(-self.size // CLIP_CHUNK_BYTES):
            raise ValueError(f"count {self.count} does not fit size {self.size} in chunks of "
                             f"{CLIP_CHUNK_BYTES}")
        if self.index >= self.count:
            raise ValueError(f"index {self.index} of {self.count} (chunks count from 0)")
        expected = min(CLIP_CHUNK_BYTES, self.size - self.index * CLIP_CHUNK_BYTES)
        if len(self.data) != expected:
            raise ValueError(f"chunk {self.index} holds {len(self.data)} bytes, not {expected}")
        return self


def clip_id_for(alert_id: UUID, kind: ClipKind) -> UUID:
    """The clip's id: the same alert and kind always give the same id (idempotent resends)."""
    return uuid5(alert_id, kind)


# --- center -> screens ------------------------------------------------------------------------

WsEventType = Literal["hello", "alert", "ticket", "camera_status", "emergency", "broadcast",
                      "verdict", "clip", "position", "duty", "summary"]


class WsEvent(_Versioned):
    """Envelope for everything pushed to wall screens and phones over the websocket."""

    type: WsEventType
    at: datetime
    data: dict[str, Any]


def alert_time_problem(alert: Alert, now: datetime) -> str | None:
    """Why an alert's times are outside the window the center accepts (see
    ``time_window_problem``), or None."""
    if alert.last_seen_at - alert.started_at > MAX_VIOLATION_LENGTH:
        return (f"started_at is more than {MAX_VIOLATION_LENGTH} before last_seen_at"
                f" ({alert.started_at.isoformat()})")
    return time_window_problem(alert.last_seen_at, now, MAX_ALERT_AGE, "last_seen_at")


def parse_alert(payload: bytes | str) -> Alert:
    """Parse an alert payload; raises ``pydantic.ValidationError`` with the reason."""
    return Alert.model_validate_json(payload)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every message, for docs/protocol.md and for non-Python producers."""
    return {
        m.__name__: m.model_json_schema()
        for m in (Alert, EdgeStatus, CameraStatus, Heartbeat, EdgeConfigState,
                  ModelAssignment, ZonesPush, ClipChunk, LiveRequest, LiveChunk, LiveState,
                  WsEvent)
    }


if __name__ == "__main__":
    import json
    import sys

    json.dump(json_schemas(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
