"""The wall screen and the phone page in a real browser (Debian chromium via Playwright)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from center.paths import REPO
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (make test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def _page(browser: Browser, width: int, height: int) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def test_wall_shows_a_published_alert_live(browser: Browser, center: RunningCenter,
                                           mqtt_broker) -> None:
    page, errors = _page(browser, 1920, 1080)
    page.goto(center.url + "/wall")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    alert = make_alert()
    pub = Publisher(mqtt_broker.port)
    sent = time.monotonic()
    pub.alert(alert)
    item = page.locator(f'#alert-feed .alert-item[data-alert-id="{alert.alert_id}"]')
    expect(item).to_be_visible(timeout=5_000)
    latency = time.monotonic() - sent
    pub.close()
    expect(item.locator("img")).to_have_attribute("src", f"/api/v1/alerts/{alert.alert_id}/snapshot.jpg")
    expect(page.locator("#ticket-table tr[data-ticket-id]")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-1920x1080.png"))
    assert latency < 2.0, f"alert took {latency:.2f}s to reach the wall"
    assert errors == []


def test_phone_accepts_and_resolves(browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    page, errors = _page(browser, 375, 812)
    page.goto(center.url + "/phone?worker_id=w-0111")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())
    pub.close()
    card = page.locator(".ticket-card[data-ticket-id]").first
    expect(card).to_be_visible(timeout=5_000)
    ticket_id = card.get_attribute("data-ticket-id")
    card.locator('button[data-action="accept"]').click()
    expect(card.locator('button[data-action="resolve"]')).to_be_visible(timeout=5_000)
    card.locator('button[data-action="resolve"]').click()
    state = httpx.get(f"{center.url}/api/v1/tickets/{ticket_id}").json()["state"]
    for _ in range(50):
        if state == "handled":
            break
        time.sleep(0.1)
        state = httpx.get(f"{center.url}/api/v1/tickets/{ticket_id}").json()["state"]
    assert state == "handled"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone-375x812.png"))
    assert errors == []
