"""The video wall and the detail panel play a camera live in Chromium with real parts: a live
H.264 camera (simulators/clock_camera.py) read by a real edge process, segments over Mosquitto
to the real center, hls.js in the page (the live engineer's fixtures, tests/test_live.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert
from tests.test_live import (  # noqa: F401 - the live engineer's fixtures
    CAMERA,
    center_settings,
    clock_camera,
    edge,
    edge_yaml,
)
from tests.test_wall_detail import wall_page
from tests.waiting import wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


def test_a_linked_tile_and_the_detail_panel_play_live(browser: Browser, center: RunningCenter,
                                                      mqtt_broker, edge) -> None:  # noqa: F811
    page, errors = wall_page(browser, center, "/wall?mode=video")
    wall = page.locator("#video-wall")
    wall.locator('[data-testid="video-layout-1"]').click()
    pub = Publisher(mqtt_broker.port)
    try:
        pub.alert(make_alert(camera_id=CAMERA))
    finally:
        pub.close()
    tile = wall.locator(f'.video-tile[data-camera-id="{CAMERA}"][data-pinned="true"]')
    expect(tile).to_have_attribute("data-live", "playing", timeout=30_000)
    video = tile.locator("video")

    def current_time() -> float:
        return float(video.evaluate("v => v.currentTime"))

    start = wait_until(current_time, 20, "the tile's video to start")
    wait_until(lambda: current_time() > start + 1.0, 20, "the tile's video time to grow")
    expect(tile.locator('[data-testid="tile-evidence"]')).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-video-live-1920x1080.png"))

    # The tile opens the alert's panel, which plays the camera live too.
    tile.locator(".tile-name").click()
    live = page.locator('#detail [data-testid="detail-live"]')
    expect(page.locator('#detail [data-testid="detail-live-state"]')).to_have_attribute(
        "data-state", "playing", timeout=30_000)
    wait_until(lambda: float(live.evaluate("v => v.currentTime")) > 0.5, 20,
               "the panel's video to play")
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert errors == []
