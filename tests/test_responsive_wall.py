"""The wall at 16:9 (1920×1080), a spliced 32:9 wall (3840×1080) and 4K (3840×2160), in Chinese
and English, with a case of every event type on it: no event name is cut (measured: an element's
scrollWidth over its clientWidth), the hourly chart's legend shows every type without paging,
the 32:9 wall gives its width to the map and the open tickets, and 4K doubles the type."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser import browser, new_page  # noqa: F401 - the fixture
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"
EVENT_TYPES = sorted(yaml.safe_load((REPO / "center/defaults/event_types.yaml").read_text()))
SIZES = [(1920, 1080), (3840, 1080), (3840, 2160)]

pytestmark = pytest.mark.browser


def _a_case_of_every_type(center: RunningCenter, mqtt_port: int) -> None:
    pub = Publisher(mqtt_port)
    for code in EVENT_TYPES:
        pub.alert(make_alert(event_type=code))
    pub.close()

    def all_types() -> bool:
        found = center.client("op-01").get("/api/v1/tickets?open=true").json()
        return {x["event_type"] for x in found} >= set(EVENT_TYPES)

    wait_until(all_types, 20, "a ticket of every event type")


def _cut_event_names(page: Page) -> list[str]:
    """Event-name elements whose text is wider than their box (cut, or hidden by ellipsis)."""
    return page.locator(".alert-name, #ticket-rows td.type, .chart-legend-item").evaluate_all(
        """els => els.filter(el => el.scrollWidth > el.clientWidth)
                     .map(el => `${el.className}: ${el.scrollWidth} > ${el.clientWidth}`
                                + ` "${el.textContent.trim()}"`)""")


def _legend_outside_its_panel(page: Page) -> list[str]:
    """Legend entries not wholly inside the chart's panel (a paging legend hides some)."""
    return page.locator(".chart-legend-item").evaluate_all("""els => {
        const box = document.querySelector('.panel-hourly .panel-body').getBoundingClientRect();
        return els.map(el => [el.textContent, el.getBoundingClientRect()])
                  .filter(([, r]) => r.width === 0 || r.top < box.top || r.bottom > box.bottom
                                     || r.left < box.left || r.right > box.right)
                  .map(([t]) => t);
    }""")


def _box(page: Page, selector: str) -> dict[str, Any]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_wall_shows_every_event_name_whole_at_every_size(
        browser: Browser, center: RunningCenter, mqtt_broker, lang: str) -> None:  # noqa: F811
    _a_case_of_every_type(center, mqtt_broker.port)
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in SIZES:
        page, errors = new_page(browser, width, height, center=center, person_id="op-01")
        page.goto(f"{center.url}/wall?lang={lang}&mode=map")
        expect(page.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                              timeout=10_000)
        expect(page.locator("#ticket-rows tr[data-ticket-id]")).to_have_count(len(EVENT_TYPES))
        expect(page.locator("#alert-feed .alert-name")).to_have_count(len(EVENT_TYPES))
        legend = page.locator("#hourly-legend .chart-legend-item")
        expect(legend).to_have_count(len(EVENT_TYPES))
        if lang == "en":
            expect(page.locator("#hourly-legend")).to_contain_text(
                "Non-motor vehicle parked illegally")
        page.screenshot(path=str(ARTIFACTS / f"wall-{lang}-{width}x{height}.png"))
        assert _cut_event_names(page) == [], f"{width}x{height}"
        assert _legend_outside_its_panel(page) == [], f"{width}x{height}"
        assert page.locator("#hourly-chart canvas").count() == 1  # the chart is drawn
        root = page.evaluate(
            "() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
        if (width, height) == (3840, 2160):
            assert root == 32  # twice the 1080p type: readable across the room
        else:
            assert root == 16
        if (width, height) == (3840, 1080):
            # The width goes to the map and a full-height column of open tickets.
            assert _box(page, ".panel-map")["width"] > 1200
            assert _box(page, ".panel-tickets")["height"] > 0.7 * _box(page, ".wall-main")["height"]
        assert errors == []
        page.context.close()
