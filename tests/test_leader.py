"""The leader view in a real browser against the real center: dispatching a returned case, a
refused action that stays on screen in the page's language, and a resident's case with its
photo, words, contact and place."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import expect_image_loaded, new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, tiny_jpeg, wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser




def _act(center: RunningCenter, person: str, ticket_id: int, **body: Any) -> dict[str, Any]:
    r = center.client(person).post(f"/api/v1/tickets/{ticket_id}/actions",
                                   json=body)
    r.raise_for_status()
    return r.json()


def _leader(browser: Browser, center: RunningCenter, ticket_id: int,
            lang: str = "") -> tuple[Page, list[str]]:
    page, errors = new_page(browser, 1600, 1000, center=center, person_id="op-01")
    page.goto(f"{center.url}/leader?ticket={ticket_id}{'&lang=' + lang if lang else ''}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(page.locator("#ticket-detail")).to_have_attribute("data-ticket-id", str(ticket_id))
    return page, errors


def test_leader_dispatches_a_returned_case_to_the_on_duty_worker_or_another(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """A worker returns a case; the leader's 派遣 offers the on-duty post first and sends the
    one chosen (it used to send nobody: 409, and the case stayed unowned)."""
    ticket = center.dispatched_case(mqtt_broker.port)
    _act(center, "w-0111", ticket["id"], action="return", note="不属于本网格")
    page, errors = _leader(browser, center, ticket["id"])
    detail = page.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-state", "registered")
    # Why it came back is on the case.
    expect(detail.locator(".facts")).to_contain_text("不属于本网格")
    owner = center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json()["owner_id"]
    assert owner == "w-0111"  # the A post of mg-011, on duty
    picker = page.locator("#reassign-to")
    expect(picker).to_have_value(owner)
    picker.select_option("w-0112")
    detail.locator('button[data-action="dispatch"]').click()
    expect(detail).to_have_attribute("data-state", "dispatched")
    after = center.client("op-01").get(f"/api/v1/tickets/{ticket['id']}").json()
    assert after["assignee_id"] == "w-0112"
    assert [e["actor_id"] for e in after["events"] if e["action"] == "dispatch"][-1] == "op-01"
    expect(page.locator("#error-banner")).to_be_hidden()
    assert errors == []


@pytest.mark.parametrize(("lang", "words"), [("", "没有待批准的延期申请"),
                                             ("en", "No extension was requested")])
def test_a_refused_action_stays_on_screen_in_the_pages_language(
        browser: Browser, center: RunningCenter, mqtt_broker, lang: str, words: str) -> None:
    """The center refuses (409: nothing to approve); the banner says so in the page's language,
    keeps the API's words as a second line, and outlives the list reloads that follow (they
    used to wipe it at once) until it is dismissed."""
    ticket = center.dispatched_case(mqtt_broker.port)
    _act(center, "w-0111", ticket["id"], action="accept")
    page, errors = _leader(browser, center, ticket["id"], lang)
    detail = page.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-state", "accepted")
    detail.locator('button[data-action="approve_extension"]').click()
    item = page.locator("#error-banner .error-item")
    expect(item).to_have_count(1)
    expect(item.locator(".error-text")).to_contain_text(words)
    expect(item.locator(".error-text")).to_contain_text(f"#{ticket['id']}")
    expect(item.locator(".error-detail")).to_contain_text("no extension was requested")
    # Another case arrives: the list reloads (and the detail with it), the failure stays.
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert(zone_id="shopfront", event_type="0504"))
    pub.close()
    expect(page.locator("#ticket-rows tr[data-ticket-id]")).to_have_count(2)
    detail.locator('button[data-action="acknowledge"]').click()  # a later action that works
    expect(page.locator('#timeline li[data-action="acknowledge"]')).to_have_count(1)
    expect(item).to_be_visible()
    expect(item.locator(".error-text")).to_contain_text(words)
    item.locator(".error-dismiss").click()
    expect(page.locator("#error-banner")).to_be_hidden()
    assert [e for e in errors if "409" not in e] == []


def test_a_residents_case_shows_its_photo_words_contact_and_place(
        browser: Browser, center: RunningCenter) -> None:
    """A resident's report: the leader sees the photo (not 无快照), what they wrote, how to
    reach them, where it came from, and the place on a map."""
    cam = next(c for c in center.client("op-01").get("/api/v1/cameras").json()
               if c["id"] == "cam-vn-01")
    r = center.client().post("/api/v1/public/requests", data={
        "event_type": "0506", "lon": str(cam["lon"]), "lat": str(cam["lat"]),
        "description": "人行道上停满电动车", "contact": "13800000000"},
        files={"photo": ("p.jpg", tiny_jpeg(), "image/jpeg")})
    assert r.status_code == 201, r.text
    found = center.client("op-01").get("/api/v1/tickets?open=true").json()
    ticket = next(x for x in found if x["source"] == "resident")
    page, errors = _leader(browser, center, ticket["id"])
    detail = page.locator("#ticket-detail")
    snapshot = detail.locator("img.detail-snapshot")
    assert ticket["snapshot_url"].startswith(f"/api/v1/tickets/{ticket['id']}/attachments/")
    expect(snapshot).to_have_attribute("src", re.compile("^" + re.escape(ticket["snapshot_url"])))
    expect_image_loaded(snapshot)
    facts = detail.locator(".facts")
    for text in ("人行道上停满电动车", "13800000000", "居民上报", f"{cam['lat']:.6f}"):
        expect(facts).to_contain_text(text)
    expect(detail.locator('[data-testid="detail-photos"] img')).to_have_count(1)
    expect(detail.locator('#timeline li[data-action="register"] .tl-photos img')).to_have_count(1)
    leaflet = center.client().get("/vendor/leaflet/dist/leaflet-src.esm.js").status_code == 200
    if leaflet:
        box = detail.locator('[data-testid="detail-map"]')
        expect(box).to_have_attribute("data-map", "leaflet")
        # Drawn at the box's size (a map made while its box was hidden draws into 0×0).
        wait_until(lambda: box.evaluate("(el) => Number(el.querySelector('svg')"
                                        "?.getAttribute('width')) > 0"), 5, "the map drawn")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leader-resident-case-1600x1000.png"), full_page=True)
    assert errors == []


def test_the_wall_reports_a_refused_switch_in_words(browser: Browser,
                                                    center: RunningCenter) -> None:
    """The same failure banner on the wall: a micro-grid leader may not switch the district to
    emergency mode; the wall says so in Chinese (the API's English below) until dismissed."""
    page, errors = new_page(browser, 1920, 1080, center=center, person_id="l-011")
    page.goto(f"{center.url}/wall")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    switch = page.locator("#emergency-switch")
    switch.click()  # arm
    expect(switch).to_have_attribute("data-armed", "true")
    # The wall re-renders while armed (here: a grid's emergency switched by the operator; on a
    # fresh wall the district arriving does the same): the switch stays armed.
    assert center.client("op-01").put("/api/v1/emergency", json={
        "scope": "g-01", "active": True}).status_code == 200
    expect(page.locator("body")).to_have_attribute("data-emergency", "on")
    expect(switch).to_have_attribute("data-armed", "true")
    switch.click()  # confirm
    item = page.locator('#error-banner .error-item[data-key="action"]')
    expect(item.locator(".error-text")).to_contain_text("您没有执行此操作的权限")
    expect(item.locator(".error-detail")).to_contain_text("switching emergency mode needs role")
    expect(page.locator("#emergency-scope")).not_to_contain_text("全街道")  # still only g-01
    item.locator(".error-dismiss").click()
    expect(item).to_have_count(0)
    assert [e for e in errors if "403" not in e] == []
