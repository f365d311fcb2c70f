"""The hub serialises its events without building a ``WsEvent`` (center/transport/push.py
``_text``); what it sends must still be exactly the model's JSON, for every kind of value a
view holds (names in Chinese, floats, nulls, nested lists, ISO times as strings)."""

from __future__ import annotations

from typing import Any

import pytest

from center.transport.push import _text
from wire.protocol import WsEvent

VIEWS: list[tuple[Any, dict[str, Any]]] = [
    ("ticket", {"id": 12, "state": "dispatched", "camera_name": "解放路口东", "lon": 120.123456,
                "lat": 30.5, "assignee_id": None, "allowed_actions": ["accept", "reject"],
                "opened_at": "2026-12-07T10:00:00.000001+00:00", "emergency": False,
                "sent_back": {"action": "rework", "note": "还有两辆", "at": None}}),
    ("alert", {"alert_id": "0193a7f2-0000-7000-8000-000000000000", "seq": 3, "score": 0.1 + 0.2,
               "bbox": [0.1, 0.25, 0.5, 1.0], "snapshot_url": None, "simulated": True}),
    ("summary", {"folded": {"alert": 1840, "ticket": 212}, "since": "2026-12-07T10:21:03Z"}),
]


@pytest.mark.parametrize(("type_", "data"), VIEWS)
def test_an_event_is_the_models_json_byte_for_byte(type_: Any, data: dict[str, Any]) -> None:
    text = _text(type_, data)
    event = WsEvent.model_validate_json(text)
    assert (event.type, event.data) == (type_, data)
    assert event.model_dump_json() == text
