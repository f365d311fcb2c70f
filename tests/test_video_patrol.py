"""Video patrol (docs/video.md "Video patrol"): a case filed from a camera's frame, with the
real center on PostgreSQL; in Chromium, grabbed from the live view that a real edge streams
(the live engineer's fixtures, tests/test_live.py)."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from tests.browser import browser  # noqa: F401 - the fixture
from tests.conftest import RunningCenter
from tests.test_live import (  # noqa: F401 - the live engineer's fixtures
    CAMERA,
    OUTSIDER,
    center_settings,
    clock_camera,
    edge,
    edge_yaml,
)
from tests.test_wall_detail import wall_page
from tests.waiting import wait_until


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
    # The indicators count cases by source: this month's two are video patrol's.
    rows = center.client("op-01").get("/api/v1/indicators?level=source").json()["rows"]
    assert [(r["key"], r["registered"]) for r in rows] == [("video_patrol", 2)]


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


@pytest.mark.browser
def test_an_operator_files_a_case_from_the_live_frame_in_chromium(
        browser: Browser, center: RunningCenter, edge: Any) -> None:  # noqa: F811
    """On the wall: the camera's panel plays it live; "grab frame" puts the frame on a canvas
    (the HLS video is same-origin: the canvas is not tainted), the operator drags a box,
    picks the event type, files; the case is in the open cases, routed to the camera's
    worker, its picture the grabbed frame and its ledger keeping the box."""
    page, errors = wall_page(browser, center, "/wall?lang=en")
    page.locator(f'#camera-list [data-camera-id="{CAMERA}"]').click()
    panel = page.locator("#detail")
    expect(panel.locator('[data-testid="detail-live-state"]')).to_have_attribute(
        "data-state", "playing", timeout=30_000)
    live = panel.locator('[data-testid="detail-live"]')
    wait_until(lambda: float(live.evaluate("v => v.currentTime")) > 0.5, 20,
               "the panel's video to play")
    panel.locator('[data-testid="patrol-grab"]').click()
    dialog = page.locator('[data-testid="patrol-dialog"]')
    expect(dialog).to_be_visible()
    frame = dialog.locator('[data-testid="patrol-frame"]')
    size = frame.evaluate("c => [c.width, c.height]")
    assert size == live.evaluate("v => [v.videoWidth, v.videoHeight]") and size[0] > 0
    stage = dialog.locator('[data-testid="patrol-stage"]')
    box = stage.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.6, steps=5)
    page.mouse.up()
    drawn = [float(v) for v in (stage.get_attribute("data-box") or "").split(",")]
    assert drawn == pytest.approx([0.25, 0.25, 0.75, 0.6], abs=0.02)
    dialog.locator('[data-testid="patrol-type"]').select_option("0504")
    dialog.locator('[data-testid="patrol-note"]').fill("stall on the pavement")
    dialog.locator('[data-testid="patrol-file"]').click()
    expect(dialog).to_have_count(0)
    filed = panel.locator('[data-testid="patrol-filed"]')
    expect(filed).to_have_attribute("data-ticket-id", re.compile(r"^\d+$"))
    ticket_id = int(filed.get_attribute("data-ticket-id") or 0)
    expect(filed).to_have_text(f"Filed: case #{ticket_id}")
    page.keyboard.press("Escape")
    row = page.locator(f'#ticket-rows tr[data-ticket-id="{ticket_id}"]')
    expect(row).to_be_visible(timeout=10_000)

    case = center.client("op-01").get(f"/api/v1/tickets/{ticket_id}").json()
    assert (case["source"], case["camera_id"], case["assignee_id"], case["event_type"],
            case["description"]) == ("video_patrol", CAMERA, "w-0111", "0504",
                                     "stall on the pavement")
    assert case["events"][0]["note_args"]["box"] == pytest.approx(drawn, abs=1e-4)
    picture = center.client("w-0111").get(case["snapshot_url"])
    assert picture.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(picture.content))
    assert (image.format, list(image.size)) == ("JPEG", size)
    assert np.asarray(image).std() > 5  # the camera's picture, not a blank canvas

    # The video wall's tiles carry the same button.
    page.goto(f"{center.url}/wall?mode=video&lang=en")
    tile = page.locator(f'#video-wall .video-tile[data-camera-id="{CAMERA}"]')
    expect(tile.locator('[data-testid="patrol-grab"]')).to_have_text("Grab frame")
    assert errors == []
