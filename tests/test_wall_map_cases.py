"""Open cases on the wall's map in Chromium (docs/map.md, issue 15): a pin per case at its place,
coloured by state, a red "late" mark once past its time limit (also when the deadline passes
with no message), kept current by the websocket, explained by the legend, opening the detail
panel on a click, and clustered zoomed out in the colour of the worst case held."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.waiting import wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
# One patrol report per micro-grid of the demo district, by that micro-grid's A-post worker.
PLACES = {"w-0111": ("120.1515", "30.2712"), "w-0121": ("120.1555", "30.2705"),
          "w-0211": ("120.1600", "30.2725"), "w-0221": ("120.1640", "30.2710")}


def report_case(center: RunningCenter, worker: str) -> int:
    lon, lat = PLACES[worker]
    r = center.client(worker).post("/api/v1/reports", data={
        "event_type": "0506", "note": "case on the map", "lon": lon, "lat": lat})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _act(center: RunningCenter, person: str, ticket: int, action: str, **kw: str) -> None:
    r = center.client(person).post(f"/api/v1/tickets/{ticket}/actions",
                                   json={"action": action, **kw})
    assert r.status_code == 200, r.text


def _pin(page: Page, ticket: int) -> Locator:
    return page.locator(f'#map [data-testid="case-marker"][data-ticket-id="{ticket}"]')


def _colour(page: Page, selector: str) -> str:
    return page.locator(selector).first.evaluate("(el) => getComputedStyle(el).backgroundColor")


def test_case_pins_by_state_and_lateness_live_legend_detail_and_clusters(
        browser: Browser, center: RunningCenter) -> None:
    new = report_case(center, "w-0111")
    _act(center, "w-0111", new, "return", note="not mine")  # registered again: to dispatch
    dispatched = report_case(center, "w-0121")  # a worker's report is dispatched to them
    in_hand = report_case(center, "w-0211")
    _act(center, "w-0211", in_hand, "accept")
    to_verify = report_case(center, "w-0221")
    _act(center, "w-0221", to_verify, "accept")
    _act(center, "w-0221", to_verify, "resolve", note="cleared")
    with psycopg.connect(center.settings.db.dsn, autocommit=True) as conn:
        # Past its handling limit already (the view says overdue) ...
        conn.execute("UPDATE tickets SET stage_due_at = now() - interval '5 minutes'"
                     " WHERE id = %s", (in_hand,))
        # ... and one whose accept limit passes while the wall looks, with no message.
        conn.execute("UPDATE tickets SET stage_due_at = now() + interval '12 seconds'"
                     " WHERE id = %s", (dispatched,))

    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    pins = page.locator('#map [data-testid="case-marker"]')
    expect(pins).to_have_count(4, timeout=10_000)
    kinds = {int(p.get_attribute("data-ticket-id") or 0): p.get_attribute("data-kind")
             for p in pins.all()}
    assert kinds == {new: "new", dispatched: "assigned", in_hand: "in_hand",
                     to_verify: "to_verify"}, kinds
    colours = {k: _colour(page, f'#map [data-ticket-id="{t}"]') for t, k in kinds.items()}
    assert len(set(colours.values())) == 4, colours
    expect(_pin(page, in_hand)).to_have_attribute("data-late", "true")
    expect(_pin(page, in_hand)).to_have_class("case-pin case-in_hand is-late")
    expect(_pin(page, in_hand)).to_have_text("!")
    expect(_pin(page, dispatched)).to_have_attribute("data-late", "false")
    # Pins stand above the place: every camera dot stays clickable at its centre.
    covered = page.evaluate("""() => [...document.querySelectorAll('#map path.cam-marker')]
        .filter((dot) => { const r = dot.getBoundingClientRect();
            return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) !== dot; })
        .map((dot) => dot.dataset.cameraId)""")
    assert covered == [], covered
    # The legend explains the pins.
    legend = page.get_by_test_id("map-legend")
    shown = {li.get_attribute("data-symbol") for li in legend.locator("li").all()
             if li.is_visible()}
    assert {"case_new", "case_assigned", "case_in_hand", "case_to_verify", "case_late",
            "case_cluster"} <= shown, shown
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-map-cases-1920x1080.png"))

    # The accept deadline passes without a message: the pin turns late by itself.
    expect(_pin(page, dispatched)).to_have_attribute("data-late", "true", timeout=25_000)
    # Live: a dispatch moves a pin to "dispatched", a verified case leaves the map.
    _act(center, "op-01", new, "dispatch", assignee_id="w-0111")
    expect(_pin(page, new)).to_have_attribute("data-kind", "assigned", timeout=2_000)
    _act(center, "op-01", to_verify, "verify")
    expect(_pin(page, to_verify)).to_have_count(0, timeout=2_000)
    expect(pins).to_have_count(3)

    # A click on a pin opens the wall's detail panel on its case.
    _pin(page, in_hand).click()
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(detail).to_have_attribute("data-ticket-id", str(in_hand))
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # Zoomed out the cases cluster: one counted pin, red because one of them is late.
    page.evaluate("() => { const m = window.gridwatchWall.map.map;"
                  " m.setZoom(m.getZoom() - 4, {animate: false}); }")
    cluster = page.locator('#map [data-testid="case-cluster"]')
    expect(cluster).to_have_count(1)
    expect(pins).to_have_count(0)
    expect(cluster).to_have_attribute("data-count", "3")
    assert cluster.get_attribute("data-late") == "2"
    assert _colour(page, '#map [data-testid="case-cluster"]') == "rgb(239, 68, 68)"
    cluster.click()
    wait_until(lambda: pins.count() >= 2, 5, "the clicked cluster to zoom in and split")
    assert errors == []


def test_case_pins_at_4k(browser: Browser, center: RunningCenter) -> None:
    """At 3840×2160 everything doubles (rem): the pins too, and they still point at the place."""
    ticket = report_case(center, "w-0111")
    page, errors = new_page(browser, 3840, 2160, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    pin = _pin(page, ticket)
    expect(pin).to_be_visible(timeout=10_000)
    tip_js = f"""() => {{
        const m = window.gridwatchWall.map.map;
        const p = m.latLngToContainerPoint([{PLACES["w-0111"][1]}, {PLACES["w-0111"][0]}]);
        const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }}"""

    def standing_over_its_place() -> bool:
        """1.3 rem at a 32 px root, rotated; the head's centre S/√2 above the place and
        straight over it. Read until the map has settled: the wall fits the district and
        redraws its pins (a pin read mid-redraw is detached: no box)."""
        box = pin.bounding_box()
        if not box or box["width"] <= 2 * 16:
            return False
        tip = page.evaluate(tip_js)
        return (abs(box["x"] + box["width"] / 2 - tip[0]) < 2
                and box["y"] + box["height"] / 2 < tip[1] - 20)

    wait_until(standing_over_its_place, 10, "the 4K pin, doubled, standing over its place")
    page.screenshot(path=str(ARTIFACTS / "wall-map-cases-3840x2160.png"))
    assert errors == []
