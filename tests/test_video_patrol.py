"""Video patrol (docs/video.md "Video patrol"): a case filed from a camera's frame, with the
real center on PostgreSQL; in Chromium, grabbed from the live view that a real edge streams
(the live engineer's fixtures, tests/test_live.py)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from tests.conftest import RunningCenter
from tests.test_live import (  # noqa: F401 - the live engineer's fixtures
    CAMERA,
    OUTSIDER,
    center_settings,
    clock_camera,
    edge,
    edge_yaml,
)


def frame_jpeg() -> bytes:
    """A frame as a browser's canvas.toBlob would give it: a 320x180 JPEG."""
    out = io.BytesIO()
    Image.fromarray(np.full((180, 320, 3), 90, dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def file_case(client: Any, camera: str = CAMERA, *, frame: bytes | None = None,
              content_type: str = "image/jpeg", **fields: str) -> Any:
    data = {"event_type": "0504", "x0": "0.1", "y0": "0.2", "x1": "0.5", "y1": "0.6",
            "note": "stall blocking the pavement", **fields}
    return client.post(f"/api/v1/cameras/{camera}/patrol-cases", data=data,
                       files={"frame": ("frame.jpg", frame or frame_jpeg(), content_type)})


def test_a_case_filed_from_a_frame_is_routed_by_the_camera(center: RunningCenter) -> None:
    """Routed to the camera's micro-grid worker (cam-vn-01 is in mg-011: w-0111) like the
    camera's alerts; source video_patrol in the API and the ledger, which says who filed it
    and keeps the box; its picture is the very frame."""
    frame = frame_jpeg()
    answer = file_case(center.client("op-01"), frame=frame)
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert (case["source"], case["camera_id"], case["micro_grid_id"], case["assignee_id"],
            case["state"], case["event_type"]) == (
        "video_patrol", CAMERA, "mg-011", "w-0111", "dispatched", "0504")
    assert case["description"] == "stall blocking the pavement"
    full = center.client("op-01").get(f"/api/v1/tickets/{case['id']}").json()
    register = full["events"][0]
    assert (register["action"], register["actor_id"], register["note_key"]) == (
        "register", "op-01", "video_patrol")
    assert register["note_args"] == {"camera": CAMERA, "person": "op-01",
                                     "box": [0.1, 0.2, 0.5, 0.6]}
    assert full["events"][1]["note_key"] == "routed"
    picture = center.client("w-0111").get(case["snapshot_url"])
    assert picture.status_code == 200 and picture.content == frame
    assert picture.headers["content-type"] == "image/jpeg"
    mine = center.client("w-0111").get("/api/v1/tickets?open=true&assignee_id=w-0111").json()
    assert [(t["id"], t["source"]) for t in mine] == [(case["id"], "video_patrol")]
    # The area's leader may file too (they watch its cameras live).
    assert file_case(center.client("l-011"), event_type="0506").status_code == 201


def test_outsiders_and_bad_inputs_are_refused_and_nothing_is_stored(
        center: RunningCenter) -> None:
    op = center.client("op-01")
    refused = [
        (file_case(center.client(OUTSIDER)), 403, OUTSIDER),
        (file_case(center.client("l-021")), 403, "l-021"),
        (file_case(center.client("eng-01")), 403, "engineer"),
        (file_case(op, "no-such-camera"), 404, "no-such-camera"),
        (file_case(op, frame=b"GIF89a not a jpeg"), 415, "JPEG"),
        (file_case(op, frame=b"\x89PNG\r\n\x1a\n" + b"\0" * 64), 415, "JPEG"),
        (file_case(op, frame=b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)), 413, "MiB"),
        (file_case(op, event_type="9999"), 422, "9999"),
        (file_case(op, x1="1.5"), 422, "x1"),
        (file_case(op, y0="-0.1"), 422, "y0"),
        (file_case(op, x0="0.6", x1="0.5"), 422, "x0 < x1"),
    ]
    for answer, status, said in refused:
        assert answer.status_code == status, answer.text
        assert said in answer.text, answer.text
    assert op.get("/api/v1/tickets").json() == []
