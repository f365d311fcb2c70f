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
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
TOPIC_ROOT = "gridwatch/v1"
#: MQTT QoS for everything that must not be lost (alerts, status).
QOS_RELIABLE = 1
#: Largest snapshot the center accepts, decoded. Bigger pictures are an edge misconfiguration.
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
EventCode = Annotated[str, Field(pattern=r"^\d{4,6}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


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
    """Retained, center -> edge: the edge's whole YAML/JSON config document (the edge's own
    ``EdgeConfig`` schema); the edge validates it and applies its zones and rules live."""
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
)


# --- edge -> center ---------------------------------------------------------------------------

AlertKind = Literal["new", "update", "end"]


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
    label: str = Field(min_length=1, max_length=64)
    score: Unit
    bbox: tuple[Unit, Unit, Unit, Unit]
    started_at: AwareDatetime
    last_seen_at: AwareDatetime
    snapshot_jpeg: bytes | None = None

    @field_validator("snapshot_jpeg", mode="before")
    @classmethod
    def _decode_snapshot(cls, value: Any) -> Any:
        if value is None or isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise ValueError("snapshot_jpeg must be base64 text")
        if len(value) > MAX_SNAPSHOT_BYTES * 4 // 3 + 4:
            raise ValueError(f"snapshot_jpeg larger than {MAX_SNAPSHOT_BYTES} bytes")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"snapshot_jpeg is not valid base64: {exc}") from None

    @field_validator("snapshot_jpeg")
    @classmethod
    def _is_jpeg(cls, value: bytes | None) -> bytes | None:
        if value is not None and not (value.startswith(b"\xff\xd8") and len(value) > 4):
            raise ValueError("snapshot_jpeg is not a JPEG image")
        return value

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
    detail: str = Field(default="", max_length=500)
    fps: float | None = Field(default=None, ge=0)


class Heartbeat(_Message):
    edge_id: Ident
    at: AwareDatetime
    cameras: int = Field(ge=0)
    frames_analysed: int = Field(ge=0)
    frames_dropped: int = Field(ge=0)


class EdgeConfigState(_Message):
    """The edge's running config (its own ``EdgeConfig`` document, credentials removed)."""

    edge_id: Ident
    at: AwareDatetime
    config: dict[str, Any]

    @model_validator(mode="after")
    def _same_edge(self) -> EdgeConfigState:
        if self.config.get("edge_id") != self.edge_id:
            raise ValueError(f"config names edge {self.config.get('edge_id')!r}, "
                             f"not {self.edge_id!r}")
        return self


# --- center -> screens ------------------------------------------------------------------------

WsEventType = Literal["hello", "alert", "ticket", "camera_status", "emergency", "broadcast"]


class WsEvent(_Versioned):
    """Envelope for everything pushed to wall screens and phones over the websocket."""

    type: WsEventType
    at: datetime
    data: dict[str, Any]


def parse_alert(payload: bytes | str) -> Alert:
    """Parse an alert payload; raises ``pydantic.ValidationError`` with the reason."""
    return Alert.model_validate_json(payload)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every message, for docs/protocol.md and for non-Python producers."""
    return {
        m.__name__: m.model_json_schema()
        for m in (Alert, EdgeStatus, CameraStatus, Heartbeat, EdgeConfigState, WsEvent)
    }


if __name__ == "__main__":
    import json
    import sys

    json.dump(json_schemas(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
