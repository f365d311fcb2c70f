"""The wall map's label rule in Chromium (docs/map.md, issue 15): at 1920×1080 on the demo
district with open cases, no drawn label overlaps another or a marker; lower-priority names
(roads, then places) give way and come back zoomed in; the base's names hide zoomed out."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.test_wall_map_cases import PLACES, report_case
from tests.waiting import wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
LABELS = "#map .leaflet-tooltip.area-label, #map .leaflet-tooltip.base-label"
MARKERS = "#map .case-pin, #map path.cam-marker, #map .cam-cluster span, #map .worker-marker"


def _drawn(page: Page) -> dict[str, list[dict[str, float]]]:
    """Boxes of the labels drawn (not hidden by the rule) and of the markers, by kind."""
    return page.evaluate("""([labels, markers]) => {
        const box = (el) => { const r = el.getBoundingClientRect();
            return {l: r.left, t: r.top, r: r.right, b: r.bottom, name: el.textContent,
                    cls: el.className.baseVal ?? el.className}; };
        const shown = [...document.querySelectorAll(labels)]
            .filter((el) => getComputedStyle(el).visibility !== "hidden");
        return {labels: shown.map(box), markers: [...document.querySelectorAll(markers)].map(box),
                hidden: document.querySelectorAll(
                    '#map .leaflet-tooltip[data-hidden-by="overlap"]').length};
    }""", [LABELS, MARKERS])


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def _settled(page: Page) -> dict[str, list[dict[str, float]]]:
    """The boxes once two looks a moment apart agree (the rule runs on the next frame)."""
    last: list[dict[str, list[dict[str, float]]]] = []

    def same() -> bool:
        last.append(_drawn(page))
        return len(last) > 1 and last[-1] == last[-2]
    wait_until(same, 5, "the map's labels to settle")
    return last[-1]


def test_labels_never_overlap_and_give_way_by_priority(browser: Browser,
                                                       center: RunningCenter) -> None:
    for worker in PLACES:
        report_case(center, worker)
    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    expect(page.locator('#map [data-testid="case-marker"]')).to_have_count(4, timeout=10_000)
    expect(page.locator("#map .base-label-road").first).to_be_attached()
    at_fit = _settled(page)
    labels = at_fit["labels"]
    clashes = [(a["name"], b["name"]) for i, a in enumerate(labels) for b in labels[i + 1:]
               if _overlap(a, b)]
    assert clashes == [], clashes
    on_markers = [(a["name"], m["cls"]) for a in labels if "base-label" in a["cls"]
                  for m in at_fit["markers"] if _overlap(a, m)]
    assert on_markers == [], on_markers
    names = {a["name"] for a in labels}
    # Every grid and micro-grid name is drawn (they come first); the base gave way.
    assert sum("area-label" in a["cls"] for a in labels) == 6, names
    assert at_fit["hidden"] > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-map-labels-1920x1080.png"))

    # Zoomed in there is room: more of the base's names are drawn, still none on another.
    page.evaluate("() => { const m = window.gridwatchWall.map.map;"
                  " m.setZoom(m.getZoom() + 1.5, {animate: false}); }")
    zoomed = _settled(page)
    assert len([a for a in zoomed["labels"] if "base-label" in a["cls"]]) > len(
        [a for a in labels if "base-label" in a["cls"]]), (zoomed["labels"], labels)
    shown = zoomed["labels"]
    assert not [(a["name"], b["name"]) for i, a in enumerate(shown) for b in shown[i + 1:]
                if _overlap(a, b)]

    # Zoomed out past the district: no road or place names at all.
    page.evaluate("() => { const m = window.gridwatchWall.map.map;"
                  " m.setZoom(m.getZoom() - 3, {animate: false}); }")
    out = _settled(page)
    assert [a["name"] for a in out["labels"] if "base-label" in a["cls"]] == []
    assert errors == []
