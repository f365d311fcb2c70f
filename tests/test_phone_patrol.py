"""Video patrol from the phone (dashboard/static/phone-patrol.js, docs/video.md "Video patrol"):
a worker watching their case's camera live grabs the frame, boxes what is wrong and files a
case, as the wall does; in Chromium at a phone's 390x844, against the real center and a real
edge streaming an H.264 camera (the live engineer's fixtures, tests/test_live.py)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from tests.browser import new_page, new_ticket_card
from tests.conftest import RunningCenter
from tests.test_live import (  # noqa: F401 - the live engineer's fixtures
    CAMERA,
    browser,
    center_settings,
    clock_camera,
    edge,
    edge_yaml,
)
from tests.waiting import wait_until

WIDTH, HEIGHT = 390, 844


def test_a_worker_files_a_case_from_the_live_frame_on_the_phone(
        center: RunningCenter, mqtt_broker: Any, edge: Any,  # noqa: F811
        browser: Browser) -> None:  # noqa: F811
    page, errors = new_page(browser, WIDTH, HEIGHT, center=center, person_id="w-0111")
    page.goto(f"{center.url}/phone?worker_id=w-0111&lang=en")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    new_ticket_card(page, mqtt_broker.port).click()
    page.get_by_test_id("phone-live-toggle").click()
    video = page.get_by_test_id("phone-live-video")
    expect(video).to_have_attribute("data-live-state", "playing", timeout=30_000)
    wait_until(lambda: float(video.evaluate("v => v.currentTime")) > 0.5, 20,
               "the phone's video to play")

    grab = page.get_by_test_id("patrol-grab")
    expect(grab).to_have_text("Grab frame")
    grab.scroll_into_view_if_needed()
    button = grab.bounding_box()
    assert button is not None and button["height"] >= 40  # a finger's target
    grab.click()
    dialog = page.get_by_test_id("patrol-dialog")
    expect(dialog).to_be_visible()
    frame = dialog.get_by_test_id("patrol-frame")
    size = frame.evaluate("c => [c.width, c.height]")
    assert size == video.evaluate("v => [v.videoWidth, v.videoHeight]") and size[0] > 0
    # The dialog fits the phone's width, the frame nearly all of it.
    shown = dialog.bounding_box()
    stage = dialog.get_by_test_id("patrol-stage")
    box = stage.bounding_box()
    assert shown is not None and box is not None
    assert shown["x"] >= 0 and shown["x"] + shown["width"] <= WIDTH + 0.5, shown
    assert box["width"] >= WIDTH - 40 and box["x"] + box["width"] <= WIDTH + 0.5, box
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8, steps=5)
    page.mouse.up()
    drawn = [float(v) for v in (stage.get_attribute("data-box") or "").split(",")]
    assert drawn == pytest.approx([0.2, 0.3, 0.7, 0.8], abs=0.02)
    dialog.get_by_test_id("patrol-type").select_option("0504")
    dialog.get_by_test_id("patrol-note").fill("stall blocking the pavement")
    dialog.get_by_test_id("patrol-file").click()
    expect(dialog).to_have_count(0)
    filed = page.get_by_test_id("patrol-filed")
    expect(filed).to_have_attribute("data-ticket-id", re.compile(r"^\d+$"))
    ticket_id = int(filed.get_attribute("data-ticket-id") or 0)
    expect(filed).to_have_text(f"Filed: case #{ticket_id}")

    case = center.client("op-01").get(f"/api/v1/tickets/{ticket_id}").json()
    assert (case["source"], case["camera_id"], case["event_type"], case["description"]) == (
        "video_patrol", CAMERA, "0504", "stall blocking the pavement")
    register = case["events"][0]
    assert register["actor_id"] == "w-0111", register
    assert register["note_args"]["box"] == pytest.approx(drawn, abs=1e-4)
    picture = center.client("op-01").get(case["snapshot_url"])
    image = Image.open(io.BytesIO(picture.content))
    assert (image.format, list(image.size)) == ("JPEG", size)
    assert not [e for e in errors if "favicon" not in e], errors
