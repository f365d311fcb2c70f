"""The wall screen and the phone page in a real browser (Debian chromium via Playwright)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import log_in, new_ticket_card
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, tiny_jpeg
from tests.waiting import wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


def _page(browser: Browser, width: int, height: int, center: RunningCenter,
          person_id: str) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    log_in(page.context, center, person_id)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def test_wall_shows_a_published_alert_live(browser: Browser, center: RunningCenter,
                                           mqtt_broker) -> None:
    page, errors = _page(browser, 1920, 1080, center, "op-01")
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
    # A signed URL (docs/security.md "Tokens and URLs"), never the token, and it loads.
    snapshot = re.escape(f"/api/v1/alerts/{alert.alert_id}/snapshot.jpg?sig=")
    expect(item.locator("img")).to_have_attribute("src", re.compile(snapshot))
    expect(item.locator("img")).to_have_js_property("complete", True)
    assert item.locator("img").evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#ticket-table tr[data-ticket-id]")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-1920x1080.png"))
    assert latency < 2.0, f"alert took {latency:.2f}s to reach the wall"
    assert errors == []


def test_phone_accepts_and_resolves(browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    page, errors = _page(browser, 375, 812, center, "w-0111")
    page.goto(center.url + "/phone?worker_id=w-0111")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    card = new_ticket_card(page, mqtt_broker.port)
    ticket_id = card.get_attribute("data-ticket-id")
    card.locator('button[data-action="accept"]').click()
    expect(card.locator('button[data-action="resolve"]')).to_be_visible(timeout=5_000)
    card.locator('button[data-action="resolve"]').click()
    api = center.client("op-01")
    wait_until(lambda: api.get(f"/api/v1/tickets/{ticket_id}").json()["state"] == "handled", 5,
               "ticket handled")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone-375x812.png"))
    assert errors == []


def _publish_and_time(page: Page, pub: Publisher, alert) -> float:
    """Seconds from publishing ``alert`` over MQTT to its item in the wall's feed (the page
    records the moment with a MutationObserver; both clocks are this machine's)."""
    page.evaluate("""(id) => new Promise((ready) => {
        window.__seenAt = null;
        const feed = document.getElementById("alert-feed");
        const obs = new MutationObserver(() => {
            if (feed.querySelector(`[data-alert-id="${id}"]`)) {
                window.__seenAt = Date.now();
                obs.disconnect();
            }
        });
        obs.observe(feed, {childList: true, subtree: true});
        ready();
    })""", str(alert.alert_id))
    sent = time.time() * 1000
    pub.alert(alert)
    # polled from here: wait_for_function evaluates a string, which the pages' CSP forbids
    wait_until(lambda: page.evaluate("window.__seenAt !== null"), 5, "the alert on the wall")
    return (page.evaluate("window.__seenAt") - sent) / 1000


def _no_page_scroll(page: Page) -> None:
    sizes = page.evaluate("""() => ({sw: document.documentElement.scrollWidth,
        sh: document.documentElement.scrollHeight, w: innerWidth, h: innerHeight})""")
    assert sizes["sw"] <= sizes["w"] and sizes["sh"] <= sizes["h"], sizes


def test_wall_map_kpis_alert_latency_emergency_and_4k(browser: Browser, center: RunningCenter,
                                                      mqtt_broker) -> None:
    page, errors = _page(browser, 1920, 1080, center, "op-01")
    page.goto(center.url + "/wall")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    # The map: one SVG path per grid, drawn from GET /api/v1/district, no tile layer at all.
    grids = page.locator('#map .leaflet-overlay-pane svg path[data-level="grid"]')
    expect(grids).to_have_count(2, timeout=5_000)
    assert page.locator("#map .leaflet-tile-pane img").count() == 0
    # The demo district's three real cameras and edge-sim's two simulated ones.
    expect(page.locator("#map path.cam-marker")).to_have_count(5)
    # Micro-grids show from the district zoom on (docs/map.md); zoomed out past it they hide.
    expect(page.locator("#map")).to_have_attribute("data-micro-grids", "shown")
    expect(page.locator('#map path[data-level="micro_grid"]')).to_have_count(4)
    page.evaluate("window.gridwatchWall.map.map.zoomOut(1.5, {animate: false})")
    expect(page.locator("#map")).to_have_attribute("data-micro-grids", "hidden")
    page.evaluate("window.gridwatchWall.map._fit()")

    pub = Publisher(mqtt_broker.port)
    alert = make_alert()
    latency = _publish_and_time(page, pub, alert)
    # A second one (a warm path: the first pays for the ticket and the evidence picture).
    latency2 = _publish_and_time(page, pub, make_alert(zone_id="shopfront", event_type="0504"))
    pub.close()
    item = page.locator(f'#alert-feed .alert-item[data-alert-id="{alert.alert_id}"]')
    snapshot = re.escape(f"/api/v1/alerts/{alert.alert_id}/snapshot.jpg?sig=")
    expect(item.locator("img")).to_have_attribute("src", re.compile(snapshot))
    expect(page.locator("#ticket-table tr[data-ticket-id]")).to_have_count(2)
    # The grid with the cases turns to "open"; the camera alerts; the pulse runs.
    g01 = page.locator('#map path[data-area-id="g-01"]')
    expect(g01).to_have_attribute("data-open", "2")
    expect(page.locator('#map path.cam-marker[data-camera-id="cam-vn-01"]')).to_have_attribute(
        "data-state", "alerting")
    assert page.locator(".map-pulse").count() >= 1
    expect(page.locator("#kpi-open-tickets [data-kpi-value]")).to_have_text("2")
    expect(page.locator("#kpi-overdue [data-kpi-value]")).to_have_text("0")
    # Today's indicators and the hourly chart catch up (debounced reload after ticket changes).
    expect(page.locator("#kpi-cases-today [data-kpi-value]")).to_have_text("2", timeout=8_000)
    expect(page.locator("#hourly-chart")).to_have_attribute("data-total", "2", timeout=8_000)
    assert page.locator("#hourly-chart canvas").count() >= 1
    expect(page.locator("#ranking-rows tr")).to_have_count(2)
    _no_page_scroll(page)
    ARTIFACTS.mkdir(exist_ok=True)
    # The chart drew at data-total (no chart animation); CSS animations end at their last frame.
    page.screenshot(path=str(ARTIFACTS / "wall-map-1920x1080.png"), animations="disabled")

    # Emergency mode: two clicks (arm, confirm) as operator op-01; the banner follows the
    # server's websocket message too.
    switch = page.locator("#emergency-switch")
    switch.click()
    expect(switch).to_have_attribute("data-armed", "true")
    switch.click()
    expect(page.locator("#emergency-banner")).to_be_visible(timeout=5_000)
    assert center.client("op-01").get("/api/v1/emergency").json()["active"] == ["district"]
    center.client("admin-01").put("/api/v1/emergency", json={
        "scope": "district", "active": False}).raise_for_status()
    expect(page.locator("#emergency-banner")).to_be_hidden(timeout=5_000)
    center.client("op-01").put("/api/v1/emergency",
              json={"scope": "g-02", "active": True}).raise_for_status()
    expect(page.locator("#emergency-banner")).to_be_visible(timeout=5_000)

    # 4K: the same layout, everything twice the size, still no page scrolling.
    page.set_viewport_size({"width": 3840, "height": 2160})
    # wall.css sizes html.wall-root by the viewport: min(100vw / 120, 100vh / 67.5) = 32px.
    expect(page.locator("html")).to_have_css("font-size", "32px")
    _no_page_scroll(page)
    expect(grids).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "wall-3840x2160.png"))
    page.close()

    en, en_errors = _page(browser, 1920, 1080, center, "op-01")
    en.goto(center.url + "/wall?lang=en")
    expect(en.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(en.locator('[data-i18n="wall.kpi.overdue"]')).to_have_text("Overdue now")
    expect(en.locator("#emergency-banner")).to_be_visible()
    expect(en.locator("#hourly-chart")).to_have_attribute("data-total", "2", timeout=8_000)
    expect(en.locator("#hourly-chart canvas").first).to_be_visible()
    en.screenshot(path=str(ARTIFACTS / "wall-en-1920x1080.png"), animations="disabled")
    assert latency < 1.0, f"alert took {latency:.3f}s from publish to the wall's DOM"
    assert latency2 < 1.0, f"alert took {latency2:.3f}s from publish to the wall's DOM"
    print(f"publish -> wall DOM: {latency * 1000:.0f} ms (first), {latency2 * 1000:.0f} ms")
    assert errors == [] and en_errors == []


def test_leader_filters_opens_timeline_and_reassigns(browser: Browser, center: RunningCenter,
                                                     mqtt_broker) -> None:
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())
    pub.alert(make_alert(zone_id="shopfront", event_type="0504"))
    pub.close()
    def two_tickets() -> list[dict] | None:
        found = center.client("op-01").get("/api/v1/tickets?open=true").json()
        return found if len(found) == 2 else None

    tickets = wait_until(two_tickets, what="two tickets")
    bikes = next(x for x in tickets if x["event_type"] == "0506")
    # A photo in the ledger: the worker accepts, then resolves with a picture.
    base = f"{center.url}/api/v1/tickets/{bikes['id']}"
    worker = center.client("w-0111")
    worker.post(base + "/actions",
                json={"action": "accept"}).raise_for_status()
    photo = worker.post(base + "/attachments",
                        files={"photo": ("p.jpg", tiny_jpeg(), "image/jpeg")}).json()["id"]
    worker.post(base + "/actions", json={"action": "request_extension", "extension_min": 30,
                                         "note": "waiting for the owner",
                                         "attachment_ids": [photo]}).raise_for_status()

    page, errors = _page(browser, 1600, 1000, center, "op-01")
    page.goto(center.url + "/leader")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(page.locator("#acting-as")).to_have_count(0)  # the login says who acts
    rows = page.locator("#ticket-rows tr[data-ticket-id]")
    expect(rows).to_have_count(2)
    page.select_option("#f-type", "0506")
    expect(rows).to_have_count(1)
    page.select_option("#f-grid", "g-02")
    expect(rows).to_have_count(0)
    page.select_option("#f-grid", "g-01")
    page.select_option("#f-micro", "mg-011")
    page.select_option("#f-state", "accepted")
    expect(rows).to_have_count(1)
    page.check("#f-overdue")
    expect(rows).to_have_count(0)
    page.uncheck("#f-overdue")
    expect(rows).to_have_count(1)

    rows.first.click()
    detail = page.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-ticket-id", str(bikes["id"]))
    timeline = page.locator("#timeline li")
    expect(timeline.first).to_have_attribute("data-action", "register")
    extension = page.locator('#timeline li[data-action="request_extension"]')
    expect(extension.locator(".tl-photos img")).to_have_count(1)
    expect(page.locator("#timeline .tl-note")).to_contain_text(["waiting for the owner"])
    # The operator's buttons for an accepted ticket.
    for action in ("void", "reassign", "approve_extension", "acknowledge"):
        expect(detail.locator(f'button[data-action="{action}"]')).to_be_visible()
    detail.locator('button[data-action="approve_extension"]').click()
    expect(page.locator('#timeline li[data-action="approve_extension"]')).to_have_count(1)
    page.select_option("#reassign-to", "w-0112")
    detail.locator('button[data-action="reassign"]').click()
    expect(page.locator('#timeline li[data-action="reassign"]')).to_have_count(1)
    after = center.client("op-01").get(base).json()
    assert after["assignee_id"] == "w-0112" and after["state"] == "dispatched"
    assert [e["actor_id"] for e in after["events"] if e["action"] == "reassign"] == ["op-01"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leader-1600x1000.png"))

    # Indicators with CSV export, and the ranking.
    page.locator('.tab[data-tab="indicators"]').click()
    expect(page.locator("#ind-rows tr")).to_have_count(1)  # grid g-01 only has cases
    page.select_option("#ind-level", "event_type")
    expect(page.locator("#ind-rows tr")).to_have_count(2)
    with page.expect_download() as download:  # the link itself, a signed URL
        page.locator("#ind-csv").click()
    assert "format=csv" in download.value.url and "level=event_type" in download.value.url
    assert "sig=" in download.value.url and "token" not in download.value.url
    rows = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 3 and "," in rows[0]  # a header and the two event types
    page.locator('.tab[data-tab="ranking"]').click()
    expect(page.locator("#rank-rows tr")).to_have_count(2)
    assert errors == []
