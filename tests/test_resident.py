"""The residents' pages in Chromium against the real center: the report form refuses a place
outside the district in the resident's language, lets them pick the place on a map when the
phone's location is off, and gives the case number; the case page shows what was done before it
asks for a rating."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import plain_http
from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import tiny_jpeg

pytestmark = pytest.mark.browser

OUTSIDE = {"event_type": "0506", "lon": "121.4737", "lat": "31.2304",  # Shanghai, not the demo
           "description": "bikes across the pavement"}
ASCII_WORDS = re.compile(r"[A-Za-z]{3,}")


def _case_count(center: RunningCenter) -> int:
    return len(center.client("op-01").get("/api/v1/tickets").json())


def test_a_place_outside_the_district_is_refused_with_a_reason_code(
        center: RunningCenter) -> None:
    before = _case_count(center)
    r = plain_http.post(center.url + "/api/v1/public/requests", data=OUTSIDE)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["code"] == "outside_district"
    patrol = center.client("w-0111").post("/api/v1/reports", data={
        "event_type": "0506", "lon": OUTSIDE["lon"], "lat": OUTSIDE["lat"]})
    assert patrol.status_code == 422 and patrol.json()["detail"]["code"] == "outside_district"
    assert _case_count(center) == before, "a refused report must leave no case behind"


def _refusals(page: Page) -> list[tuple[int, str]]:
    """The page's refused requests as (status, path), filled as they come (no favicon)."""
    seen: list[tuple[int, str]] = []
    page.on("response", lambda r: seen.append((r.status, httpx.URL(r.url).path))
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    return seen


def _script_errors(errors: list[str]) -> list[str]:
    """Console errors but the browser's own line for each refused request (checked apart)."""
    return [e for e in errors if not e.startswith("Failed to load resource")]


def _pick(page: Page, where: str) -> None:
    """Click the report form's map: inside the first grid, or in its empty corner."""
    if where == "inside":
        grid = page.locator("#pick-map path.leaflet-interactive").first
        box = grid.bounding_box()
        assert box is not None
        grid.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
    else:
        box = page.locator("#pick-map").bounding_box()
        assert box is not None
        page.locator("#pick-map").click(position={"x": box["width"] - 12,
                                                   "y": box["height"] - 12})


def test_report_form_picks_on_the_map_refuses_outside_and_gives_the_case_number(
        browser: Browser, center: RunningCenter) -> None:
    page, errors = new_page(browser, 390, 844)  # geolocation not granted: the map is the way
    refused = _refusals(page)
    page.goto(center.url + "/report")
    expect(page.locator("#pick-map path.leaflet-interactive")).to_have_count(2, timeout=10_000)
    page.fill("#description", "共享单车堵住了人行道")
    _pick(page, "outside")
    expect(page.locator("#lon")).not_to_have_value("")
    page.click("#submit")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("不在")
    expect(error).to_contain_text("辖区")
    assert not ASCII_WORDS.search(error.inner_text().replace("Demo sub-district", "")), \
        error.inner_text()
    assert _case_count(center) == 0

    _pick(page, "inside")
    expect(error).to_be_hidden()
    page.click("#submit")
    number = page.locator("#case-number")
    expect(number).to_have_text(re.compile(r"^#\d+$"))
    case_id = int(number.inner_text()[1:])
    ticket = center.client("op-01").get(f"/api/v1/tickets/{case_id}").json()
    assert ticket["source"] == "resident" and ticket["micro_grid_id"] == "mg-011"
    assert ticket["assignee_id"] == "w-0111"
    page.click("#follow")
    expect(page.locator("#case-number")).to_have_text(f"#{case_id}")
    assert refused == [(422, "/api/v1/public/requests")]
    assert _script_errors(errors) == []


def test_report_form_speaks_english_when_asked(browser: Browser, center: RunningCenter) -> None:
    page, errors = new_page(browser, 390, 844)
    page.goto(center.url + "/report?lang=en")
    expect(page.locator("#pick-map path.leaflet-interactive")).to_have_count(2, timeout=10_000)
    page.fill("#description", "bikes on the pavement")
    _pick(page, "outside")
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("outside")
    assert not re.search(r"[\u4e00-\u9fff]", page.locator("#error").inner_text()
                         .replace("示范街道", ""))
    assert _script_errors(errors) == []


def test_case_page_shows_progress_note_and_after_photo_before_the_rating(
        browser: Browser, center: RunningCenter) -> None:
    r = plain_http.post(center.url + "/api/v1/public/requests", data={
        "event_type": "0506", "lon": "120.1520", "lat": "30.2715",
        "description": "bikes block the shop door"})
    assert r.status_code == 201, r.text
    case = r.json()
    page, errors = new_page(browser, 390, 844)
    refused = _refusals(page)
    page.goto(center.url + case["url"])
    steps = page.locator("#steps li")
    expect(steps).to_have_count(2, timeout=10_000)  # received, assigned to a worker
    expect(steps.nth(1)).to_contain_text("已派给网格员")
    expect(page.locator("#rate")).to_be_hidden()
    expect(page.locator("#waiting")).to_be_visible()

    w = center.client("w-0111")
    tid = case["id"]
    photo = w.post(f"/api/v1/tickets/{tid}/attachments",
                   files={"photo": ("after.jpg", tiny_jpeg(), "image/jpeg")})
    assert photo.status_code == 201, photo.text
    for body in ({"action": "accept"}, {"action": "arrive"},
                 {"action": "resolve", "note": "单车已挪走，通道已畅通",
                  "attachment_ids": [photo.json()["id"]]}):
        assert w.post(f"/api/v1/tickets/{tid}/actions", json=body).status_code == 200
    page.reload()
    expect(page.locator("#note")).to_have_text("单车已挪走，通道已畅通")
    expect(page.locator("#after-photo")).to_be_visible()
    assert page.locator("#after-photo").evaluate("img => img.complete && img.naturalWidth") == 64
    expect(page.locator("#rate")).to_be_hidden()  # handled, not yet verified

    assert center.client("l-011").post(f"/api/v1/tickets/{tid}/actions",
                                       json={"action": "verify"}).status_code == 200
    page.reload()
    expect(page.locator("#rate")).to_be_visible()
    expect(steps.last).to_contain_text("已核查")
    texts = steps.all_inner_texts()
    assert not any(ASCII_WORDS.search(x) for x in texts), texts
    page.locator('.stars button[data-score="5"]').click()
    expect(page.locator("#thanks")).to_be_visible()
    expect(page.locator("#rate")).to_be_hidden()
    expect(page.locator("#state")).to_have_text("已办结")
    assert refused == []
    assert _script_errors(errors) == []
