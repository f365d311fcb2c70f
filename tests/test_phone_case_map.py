"""The phone's case map on its first render (issue 15: "a grey box with no marker"): at 390×844
the detail sheet of a new case draws Leaflet's map with the case's marker in the middle of the
box, over the deployment's map base (offline: the district's own roads and buildings)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import new_page, new_ticket_card
from tests.conftest import RunningCenter
from tests.waiting import wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
WORKER = "w-0111"
MAP = '#ticket-detail [data-testid="detail-map"]'


def _marker_offset(page: Page) -> list[float] | None:
    """The case marker's centre relative to the map box's centre (px), None when not drawn."""
    return page.evaluate("""(sel) => {
        const box = document.querySelector(sel);
        const dot = box && box.querySelector('path.leaflet-interactive[fill="#dc2626"]');
        if (!box || !dot) return null;
        const b = box.getBoundingClientRect(), d = dot.getBoundingClientRect();
        if (!b.width || !b.height || !d.width) return null;
        return [d.left + d.width / 2 - (b.left + b.width / 2),
                d.top + d.height / 2 - (b.top + b.height / 2)];
    }""", MAP)


def _drawn_in_the_middle(page: Page) -> None:
    expect(page.locator(MAP)).to_have_attribute("data-map", "leaflet", timeout=10_000)
    box = page.locator(MAP).bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150, box

    def centred() -> bool:
        off = _marker_offset(page)
        return off is not None and abs(off[0]) < 3 and abs(off[1]) < 3
    wait_until(centred, 5, f"the case marker in the map's middle (offset {_marker_offset(page)})")


def test_the_case_map_draws_its_marker_on_first_render(browser: Browser, center: RunningCenter,
                                                       mqtt_broker) -> None:
    page, errors = new_page(browser, 390, 844, center=center, person_id=WORKER)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    card = new_ticket_card(page, mqtt_broker.port)
    card.locator(".card-camera").click()
    expect(page.locator("#ticket-detail .detail-sheet")).to_be_visible()
    _drawn_in_the_middle(page)
    # Not a grey box: the district's own roads and buildings (the offline base) lie under it.
    expect(page.locator(MAP)).to_have_attribute("data-base", "layers")
    expect(page.locator(f"{MAP} path.base-road").first).to_be_attached()
    expect(page.locator(f"{MAP} path.base-building").first).to_be_attached()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(MAP).screenshot(path=str(ARTIFACTS / "phone-case-map-390x844.png"))
    assert errors == []
