"""Worker presence in Chromium (docs/presence.md): a worker checks in on the phone page, which
then shares its position (granted geolocation) and says so; the position is on the wall's
map within 2 s, moves with the phone, and check-out stops the sharing and takes the worker off
the wall."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.browser import log_in, new_page
from tests.conftest import RunningCenter
from tests.waiting import wait_until

HERE = {"latitude": 30.2716, "longitude": 120.1522, "accuracy": 8}
THERE = {"latitude": 30.2721, "longitude": 120.1535, "accuracy": 8}


@pytest.fixture
def center_settings() -> dict[str, Any]:
    return {"presence": {"min_interval_s": 1.0}}


def _positions(dsn: str, person: str) -> list[tuple[datetime, float, float]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT at, lon, lat FROM worker_positions WHERE person_id = %s"
                            " ORDER BY at", (person,)).fetchall()


def test_a_phone_on_duty_shares_its_position_and_the_wall_shows_it_within_2s(
        browser: Browser, center: RunningCenter, db_dsn: str) -> None:
    wall, wall_errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    wall.goto(center.url + "/wall")
    expect(wall.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)

    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  geolocation=HERE, permissions=["geolocation"])
    log_in(context, center, "w-0111")
    phone = context.new_page()
    phone_errors: list[str] = []
    phone.on("pageerror", lambda e: phone_errors.append(str(e)))
    phone.goto(center.url + "/phone")
    bar = phone.get_by_test_id("duty-bar")
    # Off duty: not watching, and the bar says the position is not shared.
    expect(bar).to_have_attribute("data-state", "off", timeout=10_000)
    expect(bar).to_have_attribute("data-sharing", "false")
    expect(bar.get_by_test_id("duty-status")).to_contain_text("不共享位置")
    assert _positions(db_dsn, "w-0111") == []

    phone.get_by_test_id("duty-button").click()
    expect(bar).to_have_attribute("data-sharing", "true", timeout=10_000)
    expect(bar.get_by_test_id("duty-status")).to_contain_text("正在共享位置")
    first = wait_until(lambda: _positions(db_dsn, "w-0111"), what="the first position stored")
    marker = wall.locator('[data-testid="worker-marker"][data-person-id="w-0111"]')
    expect(marker).to_be_visible(timeout=2_000)
    latency = (datetime.now(UTC) - first[0][0]).total_seconds()
    assert latency < 2, f"stored to shown on the wall took {latency:.2f} s"
    assert (first[0][1], first[0][2]) == (HERE["longitude"], HERE["latitude"])
    expect(marker).to_have_attribute("data-stale", "false")
    expect(marker).to_contain_text("王芳")
    # The legend explains worker markers once one is on the map.
    expect(wall.locator('[data-testid="map-legend"] [data-section="workers"]')).to_be_visible()
    print(f"position stored -> on the wall: {latency:.2f} s")

    # The phone moves: the next fix is stored (after the thinning interval) and moves the marker.
    context.set_geolocation(THERE)
    moved = wait_until(lambda: [p for p in _positions(db_dsn, "w-0111")
                                if p[1] == THERE["longitude"]], what="the moved position stored")
    wait_until(lambda: datetime.fromisoformat(marker.get_attribute("data-at") or "")
               == moved[0][0], 2, "the wall's marker at the moved position")
    # A click on the worker draws today's track.
    marker.click()
    expect(wall.locator('path.worker-track[data-person-id="w-0111"]')).to_be_attached(
        timeout=5_000)

    # Check-out: the phone stops sharing and says so; the worker leaves the wall's map.
    phone.get_by_test_id("duty-button").click()
    expect(bar).to_have_attribute("data-state", "off", timeout=5_000)
    expect(bar).to_have_attribute("data-sharing", "false")
    expect(marker).to_have_count(0, timeout=2_000)
    assert not phone_errors and not wall_errors, (phone_errors, wall_errors)
    context.close()
