"""The wall's video wall in Chromium against the real center: the layout switch gives 1 / 4 / 9 /
16 tiles; a new alert pulls its camera into the first tile with its zone drawn and a label, where
the evidence picture and the reason stand in for live video that is not available; rotation
moves the other tiles on but never the pinned one, which also outlives a reload; a dismissed tile
is released; an escalated case pulls its camera back; with more linked cameras than tiles the
newest show and the others wait their turn."""

from __future__ import annotations

import time

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import expect_image_loaded
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert
from tests.test_wall_detail import CAMERA, ZONE, report_zones, wall_page
from tests.waiting import wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"


def tile_cameras(page: Page) -> list[str]:
    return page.locator("#video-wall .video-tile").evaluate_all(
        "tiles => tiles.map((t) => t.dataset.cameraId ?? '')")


def test_layouts_linkage_rotation_and_dismiss(browser: Browser, center: RunningCenter,
                                              mqtt_broker) -> None:
    page, errors = wall_page(browser, center, "/wall?mode=video")
    wall = page.locator("#video-wall")
    expect(wall).to_be_visible()
    expect(page.locator("#map")).to_be_hidden()
    tiles = wall.locator(".video-tile")
    for n in (1, 9, 16, 4):
        wall.locator(f'[data-testid="video-layout-{n}"]').click()
        expect(tiles).to_have_count(n)
        expect(wall.locator(f'[data-testid="video-layout-{n}"]')).to_have_attribute(
            "aria-pressed", "true")
    # Four of the district's five cameras rotate through the 4 tiles (whole district).
    expect(wall.locator(".video-tile[data-camera-id]")).to_have_count(4, timeout=5_000)
    expect(wall.locator('[data-testid="tile-reason"]').first).to_be_visible(timeout=10_000)
    # The edge reports its zones only now, after the wall read the cameras' setup: the alert
    # naming the new zone makes the wall read it again.
    report_zones(mqtt_broker.port)
    wait_until(lambda: any(c["id"] == CAMERA and c["zones"] for e in center.client("op-01").get(
        "/api/v1/edges").json() for c in e["cameras"]), 10, "the edge's zones at the center")

    # The page notes the moment the pinned tile appears (a MutationObserver: Playwright's own
    # polling is too coarse to time it); both clocks are this machine's.
    page.evaluate("""() => new Promise((ready) => {
        window.__pinnedAt = null;
        const grid = document.querySelector("#video-wall .video-grid");
        const obs = new MutationObserver(() => {
            if (grid.querySelector('.video-tile[data-pinned="true"]')) {
                window.__pinnedAt = Date.now();
                obs.disconnect();
            }
        });
        obs.observe(grid, {childList: true, subtree: true, attributes: true});
        ready();
    })""")
    alert = make_alert()
    pub = Publisher(mqtt_broker.port)
    try:
        sent = time.time() * 1000
        pub.alert(alert)
    finally:
        pub.close()
    pinned = wall.locator(f'.video-tile[data-camera-id="{CAMERA}"][data-pinned="true"]')
    expect(pinned).to_have_count(1, timeout=5_000)
    linked_s = (page.evaluate("window.__pinnedAt") - sent) / 1000
    print(f"publish -> camera pinned on the video wall: {linked_s * 1000:.0f} ms")
    assert linked_s < 2.0, f"the alert took {linked_s:.2f}s to pull its camera onto the wall"
    assert tile_cameras(page)[0] == CAMERA
    expect(pinned.locator(f'polygon.overlay-zone.is-alert[data-zone-id="{ZONE}"]')).to_have_count(
        1, timeout=5_000)
    expect(pinned.locator('[data-testid="tile-label"]')).to_contain_text("非机动车乱停放")
    expect(page.locator('[data-testid="wall-mode-count"]')).to_have_text("1")
    # No edge streams in this test: the tile shows the alert's evidence and says why.
    expect(pinned.locator('[data-testid="tile-reason"]')).to_be_visible(timeout=10_000)
    expect_image_loaded(pinned.locator('[data-testid="tile-evidence"]'))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-video-1920x1080.png"))

    # Rotation moves the three other tiles on; the pinned camera stays in the first tile.
    before = tile_cameras(page)
    page.evaluate("() => window.gridwatchWall.video.rotate()")
    wait_until(lambda: tile_cameras(page)[1:] != before[1:], 5, "the rotation to move on")
    assert tile_cameras(page)[0] == CAMERA

    # A wall screen that reloads keeps what waits for an operator.
    page.reload()
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(pinned).to_have_count(1, timeout=5_000)
    assert tile_cameras(page)[0] == CAMERA

    # Clicking the tile opens the alert's detail panel.
    pinned.locator(".tile-name").click()
    expect(page.locator("#detail")).to_have_attribute("data-alert-id", str(alert.alert_id))
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    pinned.locator('[data-testid="tile-dismiss"]').click()
    expect(wall.locator('.video-tile[data-pinned="true"]')).to_have_count(0)
    expect(page.locator('[data-testid="wall-mode-count"]')).to_be_hidden()
    expect(wall.locator(".video-tile[data-camera-id]")).to_have_count(4)

    # The case's accept deadline passes (a test cannot wait the real minutes): the center's
    # own scheduler escalates it, and the escalated case pulls its camera back onto the wall.
    ticket_id = center.client("op-01").get("/api/v1/tickets?open=true").json()[0]["id"]
    with psycopg.connect(center.settings.db.dsn, autocommit=True) as conn:
        due = conn.execute("UPDATE ticket_timers SET due_at = now() - interval '1 second'"
                           " WHERE ticket_id = %s AND kind = 'accept' AND fired_at IS NULL",
                           (ticket_id,)).rowcount
    assert due == 1
    escalated = wall.locator(f'.video-tile[data-camera-id="{CAMERA}"][data-reason="escalated"]')
    expect(escalated).to_have_count(1, timeout=10_000)
    expect(escalated.locator('[data-testid="tile-label"]')).to_contain_text("升级督办")
    expect(escalated.locator(f'polygon.overlay-zone.is-alert[data-zone-id="{ZONE}"]')).to_have_count(1)
    assert tile_cameras(page)[0] == CAMERA
    escalated.locator('[data-testid="tile-dismiss"]').click()
    expect(wall.locator('.video-tile[data-pinned="true"]')).to_have_count(0)

    # More linked cameras than tiles: the newest shows, the header says how many wait, and
    # dismissing it brings the next one in.
    wall.locator('[data-testid="video-layout-1"]').click()
    pub = Publisher(mqtt_broker.port)
    try:
        pub.alert(make_alert(camera_id="cam-bj-01", zone_id="crossing"))
        expect(wall.locator('.video-tile[data-camera-id="cam-bj-01"]')).to_have_attribute(
            "data-pinned", "true", timeout=5_000)
        pub.alert(make_alert(camera_id="cam-vtest", zone_id="campus"))
    finally:
        pub.close()
    expect(wall.locator('.video-tile[data-camera-id="cam-vtest"]')).to_have_attribute(
        "data-pinned", "true", timeout=5_000)
    expect(tiles).to_have_count(1)
    expect(wall.locator('[data-testid="video-waiting"]')).to_have_text("另有1路联动待显示")
    wall.locator('[data-testid="tile-dismiss"]').click()
    expect(wall.locator('.video-tile[data-camera-id="cam-bj-01"]')).to_have_attribute(
        "data-pinned", "true")
    expect(wall.locator('[data-testid="video-waiting"]')).to_be_hidden()
    wall.locator('[data-testid="tile-dismiss"]').click()

    # Back to the map: the video wall stops (no tiles), the map is there again.
    page.locator('[data-testid="wall-mode"]').click()
    expect(page.locator("#map")).to_be_visible()
    expect(wall).to_be_hidden()
    assert page.evaluate("() => window.gridwatchWall.video.tiles.size") == 0
    assert errors == []
