"""The wall's KPI tiles in Chromium say what they count, fit their tiles, and the hotspot layer
draws, on the tickets of test_kpi_api's scenario (hand-moved clock, Wednesday 2026-11-25
12:00 Shanghai: both cases due today closed, four open now, one of them overdue).

Overflow is measured, not looked at: every text line of a tile has scrollWidth <= clientWidth
(a nowrap line cut with an ellipsis reads as fitting by eye and fails here), and no tile's
content is taller than the tile."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from psycopg_pool import AsyncConnectionPool

from center.domain.context import Context
from center.platform.clock import ManualClock
from tests.browser import browser, new_page  # noqa: F401 - the fixture
from tests.test_kpi_api import at, build
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"

# zh, en: what each tile's label must say it counts.
LABELS = {
    "kpi-closure-rate": ("今日到期", "due today"),
    "kpi-on-time-rate": ("今日到期", "due today"),
    "kpi-open-tickets": ("当前未结", "Open now"),
    "kpi-overdue": ("当前超期", "Overdue now"),
    "kpi-cases-today": ("今日新立", "opened today"),
}


@pytest.fixture
def center_clock() -> ManualClock:
    return ManualClock(at(10, 10, 9, 0))


@pytest.fixture
def seeded(center) -> Any:
    """The center with the scenario's tickets, seeded through the ticket service in a thread
    of its own (sync Playwright keeps an event loop running in the test's thread)."""
    ctx: Context = center.app.state.center.ctx

    async def seed() -> None:
        pool = AsyncConnectionPool(center.settings.db.dsn, min_size=1, max_size=2, open=False)
        await pool.open(wait=True)
        try:
            await build(pool, ctx)
        finally:
            await pool.close()

    with ThreadPoolExecutor(1) as one:
        one.submit(asyncio.run, seed()).result(timeout=120)
    return center


def overflowing(page: Page) -> list[str]:
    """The KPI lines wider than their box and the tiles whose content is taller than them."""
    return page.locator(".kpis .kpi").evaluate_all("""tiles => tiles.flatMap(tile => {
        const bad = [];
        if (tile.scrollHeight > tile.clientHeight)
            bad.push(`${tile.id}: ${tile.scrollHeight} > ${tile.clientHeight} tall`);
        for (const el of tile.querySelectorAll('.kpi-label, .kpi-value, .kpi-sub, .kpi-trend'))
            if (el.scrollWidth > el.clientWidth)
                bad.push(`${tile.id} ${el.className}: ${el.scrollWidth} > ${el.clientWidth}`
                         + ` "${el.textContent}"`);
        return bad;
    })""")


@pytest.mark.parametrize(("lang", "width", "height"), [
    ("zh", 1920, 1080), ("en", 1920, 1080), ("en", 1280, 720), ("en", 3840, 2160)])
def test_wall_kpis_say_what_they_count_and_fit(browser: Browser, seeded,  # noqa: F811
                                               lang: str, width: int, height: int) -> None:
    center = seeded
    page, errors = new_page(browser, width, height, center=center, person_id="op-01")
    page.goto(center.url + "/wall" + ("?lang=en" if lang == "en" else ""))
    i = 0 if lang == "zh" else 1
    for tile, words in LABELS.items():
        expect(page.locator(f"#{tile} .kpi-label")).to_contain_text(words[i])
    # Every case due so far today is closed (100 %), and the tile says it is 2 of 2 due...
    expect(page.locator("#kpi-closure-rate [data-kpi-value]")).to_have_text("100.0%")
    sub = page.locator("#kpi-closure-rate .kpi-sub")
    expect(sub).to_have_text("到期2件 · 已结2件" if lang == "zh" else "2 of 2 due closed")
    # ...while four cases are open now, one of them overdue.
    expect(page.locator("#kpi-open-tickets [data-kpi-value]")).to_have_text("4")
    expect(page.locator("#kpi-overdue [data-kpi-value]")).to_have_text("1")
    expect(page.locator("#kpi-cases-today [data-kpi-value]")).to_have_text("6")
    # Week over week: 7 cases against 2 (+250 %); on time 100 % against 50 % (+50.0 points);
    # month over month: closure 6/7 against 2/2 (-14.3 points).
    wow, mom = ("周环比", "月环比") if lang == "zh" else ("WoW", "MoM")
    pp = "点" if lang == "zh" else "pp"
    expect(page.locator("#kpi-cases-today .kpi-trend")).to_have_text(
        f"{wow} ▲250% · {mom} ▲450%")
    expect(page.locator("#kpi-on-time-rate .kpi-trend [data-testid=trend-week]")).to_have_text(
        f"{wow} ▲50.0{pp}")
    expect(page.locator("#kpi-closure-rate .kpi-trend [data-testid=trend-month]")).to_have_text(
        f"{mom} ▼14.3{pp}")
    assert overflowing(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"wall-kpis-{lang}-{width}x{height}.png"),
                    animations="disabled")
    # The hotspots: this month's ten non-void cases at three places, drawn on the map.
    layer = page.locator("#map [data-testid=hotspot-layer]")
    expect(layer).to_have_attribute("data-cases", "10")
    assert int(layer.get_attribute("data-points") or 0) >= 2
    expect(page.locator("[data-testid=hotspot-total]")).to_have_text(
        "10件" if lang == "zh" else "10 cases")
    page.locator("[data-testid=hotspot-toggle]").click()
    expect(layer).to_have_count(0)
    page.locator("[data-testid=hotspot-toggle]").click()
    expect(layer).to_have_attribute("data-cases", "10")
    assert errors == []
    page.context.close()


def test_leader_view_shows_the_headline_of_their_area(browser: Browser, seeded,  # noqa: F811
                                                      ) -> None:
    center = seeded
    page, errors = new_page(browser, 1280, 800, center=center, person_id="l-g01")
    page.goto(center.url + "/leader?lang=en")
    page.locator('.tab[data-tab="indicators"]').click()
    expect(page.locator("[data-testid=headline-open]")).to_have_text("Open cases now 4")
    expect(page.locator("[data-testid=headline-overdue]")).to_have_text("Overdue cases now 1")
    row = page.locator('[data-testid=headline-table] tr[data-figure="closure_rate"] td')
    # Today, this week, same days last week, change, this month, same days last month, change.
    expect(row).to_have_text(["100.0%", "100.0%", "100.0%", "±0.0pp", "85.7%", "100.0%",
                              "−14.3pp"])
    registered = page.locator('[data-testid=headline-table] tr[data-figure="registered"] td')
    expect(registered).to_have_text(["6", "7", "2", "+5 (+250%)", "11", "2", "+9 (+450%)"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leader-headline-1280x800.png"))
    assert errors == []
    page.context.close()
