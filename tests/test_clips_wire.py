"""The alert clip message (wire/protocol.py ``ClipChunk``): what the center refuses before it
touches the disk."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from wire.protocol import CENTER_SUBSCRIPTIONS, CLIP_CHUNK_BYTES, ClipChunk, clip_id_for, clip_topic

ALERT = uuid.UUID("6f1c1a52-9c1e-4bb1-a3c7-0c7d3d1b2a10")
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def chunk(**changes: Any) -> dict[str, Any]:
    data = b"x" * 1000
    doc = {"clip_id": str(clip_id_for(ALERT, "violation")), "alert_id": str(ALERT),
           "kind": "violation", "edge_id": "edge-1", "camera_id": "cam-1",
           "started_at": NOW.isoformat(), "ended_at": (NOW + timedelta(seconds=12)).isoformat(),
           "codec": "h264", "size": CLIP_CHUNK_BYTES + 1000,
           "sha256": hashlib.sha256(b"whole clip").hexdigest(), "index": 1, "count": 2,
           "data": base64.b64encode(data).decode()}
    return doc | changes


def test_a_valid_chunk_round_trips() -> None:
    parsed = ClipChunk.model_validate(chunk())
    assert parsed.data == b"x" * 1000 and parsed.content_type == "video/mp4"
    assert ClipChunk.model_validate_json(parsed.model_dump_json()) == parsed
    assert clip_topic("edge-1", "cam-1") == "gridwatch/v1/clips/edge-1/cam-1"
    assert "gridwatch/v1/clips/+/+" in CENTER_SUBSCRIPTIONS


@pytest.mark.parametrize(("changes", "reason"), [
    ({"data": "not base64!"}, "not valid base64"),
    ({"data": "QUJD" * (CLIP_CHUNK_BYTES // 3 + 10)}, "larger than"),
    ({"clip_id": str(uuid.uuid4())}, "uuid5"),
    ({"index": 2}, "index 2 of 2"),
    ({"count": 3}, "does not fit size"),
    ({"data": base64.b64encode(b"short").decode()}, "holds 5 bytes"),
    ({"ended_at": (NOW - timedelta(seconds=1)).isoformat()}, "before started_at"),
    ({"ended_at": (NOW + timedelta(hours=1)).isoformat()}, "longer than"),
    ({"codec": "H.264; x"}, "codec"),
    ({"sha256": "abc"}, "sha256"),
    ({"kind": "update"}, "kind"),
    ({"extra": 1}, "extra"),
])
def test_malformed_chunks_are_refused_with_the_reason(changes: dict[str, Any],
                                                      reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ClipChunk.model_validate(chunk(**changes))
