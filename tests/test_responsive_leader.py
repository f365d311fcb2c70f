"""The leader view on a phone (390×844): a micro-grid leader in the street picks a case from the
list, sees it with its actions, acts, sees the act in the case's ledger and goes back, and
nothing on the way is wider than the screen or too small for a thumb."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import browser, new_page  # noqa: F401 - the fixture
from tests.conftest import RunningCenter
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


def _accepted_ticket(center: RunningCenter, mqtt_port: int) -> dict[str, Any]:
    """A camera case at the demo place, dispatched to w-0111, who accepts it."""
    ticket = center.dispatched_case(mqtt_port)
    r = center.client("w-0111").post(f"/api/v1/tickets/{ticket['id']}/actions",
                                     json={"action": "accept"})
    r.raise_for_status()
    return ticket


def _fits_the_screen(page: Page) -> None:
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(el => el.offsetParent !== null && el.getBoundingClientRect().right > innerWidth)
        .map(el => `${el.tagName}#${el.id}.${el.className}`).slice(0, 8)""")
    assert widths[0] <= widths[1], f"{widths[0]} px wide on a {widths[1]} px screen: {wide}"


def _small_buttons(page: Page) -> list[str]:
    """Visible buttons in the case view under 44 px tall (a thumb's size)."""
    return page.locator("#ticket-detail button, #detail-back").evaluate_all("""els => els
        .filter(el => el.offsetParent !== null)
        .map(el => [el.textContent.trim(), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 44).map(([t, h]) => `${t}: ${h} px`)""")


@pytest.mark.parametrize("lang", ["", "en"])
def test_a_leader_acts_on_a_case_from_a_phone(browser: Browser, center: RunningCenter,  # noqa: F811
                                              mqtt_broker, lang: str) -> None:
    ticket = _accepted_ticket(center, mqtt_broker.port)
    page, errors = new_page(browser, 390, 844, center=center, person_id="op-01")
    page.goto(f"{center.url}/leader{'?lang=' + lang if lang else ''}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    # The list first, alone on the screen.
    row = page.locator(f'#ticket-rows tr[data-ticket-id="{ticket["id"]}"]')
    expect(row).to_be_visible()
    expect(page.locator("#ticket-detail")).to_be_hidden()
    _fits_the_screen(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"leader-phone-list-{lang or 'zh'}-390x844.png"))
    # A tap shows the case and its actions instead of the list.
    row.click()
    detail = page.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-ticket-id", str(ticket["id"]))
    expect(detail).to_have_attribute("data-state", "accepted")
    expect(page.locator("#ticket-list")).to_be_hidden()
    ack = detail.locator('button[data-action="acknowledge"]')
    expect(ack).to_be_visible()
    _fits_the_screen(page)
    assert _small_buttons(page) == []
    page.screenshot(path=str(ARTIFACTS / f"leader-phone-case-{lang or 'zh'}-390x844.png"),
                    full_page=True)
    # Act: the ledger on the screen and in the center have it, by this leader.
    ack.click()
    expect(page.locator('#timeline li[data-action="acknowledge"]')).to_have_count(1)
    events = center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json()["events"]
    assert [e["actor_id"] for e in events if e["action"] == "acknowledge"] == ["op-01"]
    _fits_the_screen(page)
    # Back to the list.
    page.locator("#detail-back").click()
    expect(row).to_be_visible()
    expect(detail).to_be_hidden()
    # The figures fit too (their tables scroll inside their own box).
    for tab in ("indicators", "ranking"):
        page.locator(f'.tab[data-tab="{tab}"]').click()
        expect(page.locator(f'[data-panel="{tab}"]')).to_be_visible()
        _fits_the_screen(page)
    expect(page.locator("#error-banner")).to_be_hidden()
    assert errors == []
