"""The center's zones-only push (``wire.protocol.ZonesPush``) as the edge takes it
(``edge.reconfig.parse_pushed``): listed cameras get the pushed zones, everything else runs on;
a push for another edge, for a camera the edge does not run, or with zones the shared models
refuse is rejected with the reason. A whole config document (an operator's push, or one an
older center left retained) still works beside it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge.config import EdgeConfig
from edge.reconfig import PushRejected, parse_pushed
from wire.protocol import ZonesPush
from wire.zones import ReportedZones

PAVEMENT = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
KERB = {"id": "kerb", "polygon": PAVEMENT, "dwell_s": 5,
        "rules": [{"type": "illegal_parking"}]}


def _running(tmp_path: Path) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": "e1", "broker": {"username": "e1", "password": "s3cret"},
        "cameras": [
            {"id": "cam-a", "source": str(tmp_path / "a.mp4"), "sample_fps": 2,
             "zones": [{"id": "old", "polygon": PAVEMENT, "rules": [{"type": "illegal_parking"}]}]},
            {"id": "cam-b", "source": "rtsp://admin:pw@10.0.0.5/1",
             "zones": [{"id": "b-zone", "polygon": PAVEMENT,
                        "rules": [{"type": "doorway_trading"}]}]}]})


def _push(cameras: list[dict[str, Any]], edge_id: str = "e1") -> bytes:
    return json.dumps({"schema_version": 1, "edge_id": edge_id,
                       "at": datetime.now(UTC).isoformat(), "cameras": cameras}).encode()


def test_zones_push_replaces_the_listed_cameras_zones_only(tmp_path: Path) -> None:
    running = _running(tmp_path)
    new = parse_pushed(_push([{"id": "cam-a", "zones": [KERB]}]), running, tmp_path)
    assert [z.id for z in new.cameras[0].zones] == ["kerb"]
    assert new.cameras[0].zones[0].rules[0].event_type == "0506"
    assert new.cameras[1].zones == running.cameras[1].zones  # not listed: kept
    # Everything the center never sees stays as it runs: credentials, sources, sampling.
    assert new.broker.password == "s3cret"
    assert [c.source for c in new.cameras] == [c.source for c in running.cameras]
    assert new.cameras[0].sample_fps == 2
    cleared = parse_pushed(_push([{"id": "cam-b", "zones": []}]), new, tmp_path)
    assert cleared.cameras[1].zones == [] and [z.id for z in cleared.cameras[0].zones] == ["kerb"]


@pytest.mark.parametrize(("cameras", "edge_id", "reason"), [
    ([{"id": "cam-a", "zones": [KERB]}], "e2", "edge_id 'e2' is not this edge"),
    ([{"id": "cam-x", "zones": []}], "e1", "cameras ['cam-x'] are not run by this edge"),
    ([{"id": "cam-a", "zones": [{**KERB, "polygon": [[0, 0], [2, 0], [1, 1]]}]}], "e1",
     "cameras[0].zones[0].polygon: Value error, point [2.0, 0.0] is outside 0..1"),
    ([{"id": "cam-a", "zones": [{**KERB, "dwel_s": 3}]}], "e1", "cameras[0].zones[0].dwel_s"),
    ([{"id": "cam-a", "zones": [KERB, KERB]}], "e1", "duplicate zone id 'kerb'"),
    ([{"id": "cam-a", "zones": []}, {"id": "cam-a", "zones": []}], "e1",
     "duplicate camera id 'cam-a'"),
    ([{"id": "cam-a", "zones": [KERB], "source": "rtsp://elsewhere/1"}], "e1",
     "cameras[0].source"),
    ([], "e1", "cameras"),
])
def test_bad_zones_push_is_rejected_with_the_reason(tmp_path: Path, cameras: list[Any],
                                                    edge_id: str, reason: str) -> None:
    with pytest.raises(PushRejected) as err:
        parse_pushed(_push(cameras, edge_id), _running(tmp_path), tmp_path)
    assert reason in str(err.value)


def test_zones_push_is_checked_against_the_cameras_clip_buffer(tmp_path: Path) -> None:
    """What only the edge knows still holds: a dwell longer than a fixed clip buffer can reach
    back over is refused by the edge, as in its YAML."""
    running = EdgeConfig.model_validate({"edge_id": "e1", "cameras": [
        {"id": "cam-a", "source": str(tmp_path / "a.mp4"), "clips": {"buffer_s": 60}}]})
    with pytest.raises(PushRejected, match=r"cameras\[0\]: .*clips.buffer_s 60"):
        parse_pushed(_push([{"id": "cam-a", "zones": [{**KERB, "dwell_s": 120}]}]), running,
                     tmp_path)


def test_whole_document_push_still_applies(tmp_path: Path) -> None:
    running = _running(tmp_path)
    doc = running.model_dump(mode="json")
    doc["cameras"][0]["zones"] = [KERB]
    doc["heartbeat_s"] = 3
    new = parse_pushed(json.dumps(doc).encode(), running, tmp_path)
    assert [z.id for z in new.cameras[0].zones] == ["kerb"] and new.heartbeat_s == 3


def test_reported_zones_read_only_ids_and_zones() -> None:
    """The center's reading of a config state: the edge's own settings pass unread, a bad zone
    is refused with its key path."""
    reported = ReportedZones.model_validate({"edge_id": "e1", "detector": {"model": "x"},
                                             "cameras": [{"id": "c", "sample_fps": 99,
                                                          "zones": [KERB]}]})
    assert [z.id for z in reported.cameras[0].zones] == ["kerb"]
    with pytest.raises(ValidationError, match=r"cameras.0.zones.0.rules.0.type"):
        ReportedZones.model_validate({"cameras": [{"id": "c", "zones": [
            {**KERB, "rules": [{"type": "jaywalking"}]}]}]})


def test_zones_push_round_trips_as_the_center_sends_it() -> None:
    push = ZonesPush.model_validate({"edge_id": "e1", "at": datetime.now(UTC),
                                     "cameras": [{"id": "cam-a", "zones": [KERB]}]})
    again = ZonesPush.model_validate_json(push.model_dump_json(exclude_none=True))
    assert again == push
