"""The wire protocol accepts what the edge sends and rejects broken input with a reason."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from tests.mqtt_helpers import alert_json, make_alert
from wire.protocol import (
    CENTER_SUBSCRIPTIONS,
    alert_topic,
    camera_status_topic,
    json_schemas,
    parse_alert,
)


def test_round_trip_keeps_snapshot_bytes() -> None:
    alert = make_alert()
    again = parse_alert(alert.model_dump_json())
    assert again == alert and again.snapshot_jpeg.startswith(b"\xff\xd8")


@pytest.mark.parametrize(("change", "reason"), [
    ({"schema_version": 2}, "schema_version"),
    ({"kind": "start"}, "kind"),
    ({"event_type": "506"}, "event_type"),
    ({"bbox": [0.5, 0.5, 0.4, 0.9]}, "x2 > x1"),
    ({"bbox": [0.1, 0.1, 1.4, 0.9]}, "bbox"),
    ({"score": 1.5}, "score"),
    ({"camera_id": "cam/../x"}, "camera_id"),
    ({"seq": 3}, "seq 0"),
    ({"started_at": "2026-01-01T00:00:00"}, "timezone"),
    ({"extra_field": 1}, "extra_field"),
    ({"snapshot_jpeg": base64.b64encode(b"GIF89a....").decode()}, "not a JPEG"),
    ({"snapshot_jpeg": "%%%"}, "base64"),
    ({"label": "two\u0000wheeler"}, "NUL"),
])
def test_rejections_name_the_problem(change: dict, reason: str) -> None:
    data = alert_json(make_alert()) | change
    with pytest.raises(ValidationError) as err:
        parse_alert(json.dumps(data))
    assert reason in str(err.value)


def test_text_postgresql_cannot_store_is_refused_in_every_message() -> None:
    """NUL in a status detail used to reach the database and stop the ingest (issue 11)."""
    from wire.protocol import CameraStatus, EdgeConfigState

    status = {"edge_id": "e1", "camera_id": "c1", "state": "online",
              "at": "2026-01-01T00:00:00Z", "detail": "ok\u0000nul"}
    with pytest.raises(ValidationError, match="NUL"):
        CameraStatus.model_validate_json(json.dumps(status))
    config = {"edge_id": "e1", "at": "2026-01-01T00:00:00Z",
              "config": {"edge_id": "e1", "cameras": [{"id": "c1", "name": "a\u0000b"}]}}
    with pytest.raises(ValidationError, match=r"config.cameras\[0\].name: text must not"):
        EdgeConfigState.model_validate_json(json.dumps(config))


@pytest.mark.parametrize("payload", [b"", b"{", b"\xff\xfe", b"[]", b"null", b"1" * 10])
def test_garbage_is_a_validation_error(payload: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_alert(payload)


def test_topics_match_the_center_subscriptions() -> None:
    import paho.mqtt.client as mqtt

    for topic in (alert_topic("e1", "c1"), camera_status_topic("e1", "c1")):
        assert any(mqtt.topic_matches_sub(s, topic) for s in CENTER_SUBSCRIPTIONS)


def test_json_schema_is_published_for_every_message() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"Alert", "EdgeStatus", "CameraStatus", "Heartbeat", "EdgeConfigState",
                            "ModelAssignment", "ZonesPush", "ClipChunk", "LiveRequest",
                            "LiveChunk", "LiveState", "WsEvent"}
    assert "alert_id" in schemas["Alert"]["required"]


def test_published_schema_file_is_current() -> None:
    from wire.paths import REPO

    on_disk = json.loads((REPO / "docs" / "protocol.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(json_schemas())), (
        "docs/protocol.schema.json is stale: run python -m wire.protocol > "
        "docs/protocol.schema.json")
