"""Issue 11: names and texts from the API are shown as text on every page, never parsed as HTML.

A camera, a grid, a ticket note and a resident's description and contact all hold an HTML
payload; the real center serves them to the real pages in Chromium (wall map tooltip and area
labels, leader timeline and case facts, phone cards, the residents' report map). Each must show
the payload's characters and create no element from it. (The Content-Security-Policy would also
stop its inline handler; the test does not lean on that: it checks that no element was made.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from wire.paths import DEFAULTS_DIR

PAYLOAD = "<img src=x onerror=window.__xss=1>"
CAMERA_NAME = "人民路商铺 Renmin Rd shops"


@pytest.fixture
def center_settings(tmp_path: Path) -> dict[str, Any]:
    """The demo district, with cam-vn-01 and grid g-02 named by an attacker."""
    source = DEFAULTS_DIR / "district"
    grids = json.loads((source / "grids.geojson").read_text(encoding="utf-8"))
    for feature in grids["features"]:
        if feature["properties"]["id"] == "g-02":
            feature["properties"]["name"] = PAYLOAD
    (tmp_path / "grids.geojson").write_text(json.dumps(grids), encoding="utf-8")
    text = (source / "district.yaml").read_text(encoding="utf-8")
    assert CAMERA_NAME in text
    # In YAML flow style the payload needs quotes (it holds no quote itself).
    (tmp_path / "district.yaml").write_text(text.replace(CAMERA_NAME, f'"{PAYLOAD}"'),
                                            encoding="utf-8")
    return {"district": tmp_path / "district.yaml"}


def _no_injection(page: Page) -> None:
    expect(page.locator('img[src="x"]')).to_have_count(0)
    assert page.evaluate("() => window.__xss") is None


def test_payloads_from_the_api_render_as_text(browser: Browser, center: RunningCenter,
                                              mqtt_broker) -> None:
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())  # cam-vn-01: a ticket for w-0111
    pub.close()
    camera_case = wait_until(lambda: next(iter(
        center.client("op-01").get("/api/v1/tickets?open=true").json()), None), what="ticket")
    assert camera_case["camera_name"] == PAYLOAD
    worker = center.client("w-0111")
    worker.post(f"/api/v1/tickets/{camera_case['id']}/actions",
                json={"action": "accept", "note": PAYLOAD}).raise_for_status()
    resident = center.client().post("/api/v1/public/requests", data={
        "event_type": "0506", "lon": "120.1521", "lat": "30.2716",
        "description": PAYLOAD, "contact": PAYLOAD})
    assert resident.status_code == 201, resident.text

    # The wall: the camera's tooltip on the map.
    wall, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    wall.goto(center.url + "/wall")
    expect(wall.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    marker = wall.locator('#map path.cam-marker[data-camera-id="cam-vn-01"]')
    expect(marker).to_have_count(1)
    marker.hover(force=True)
    tip = wall.locator(".leaflet-tooltip.cam-tip")
    expect(tip).to_contain_text(PAYLOAD)
    expect(wall.locator(".area-label-grid").filter(has_text=PAYLOAD)).to_have_count(1)
    _no_injection(wall)

    # The residents' report form: the grids' names on its map.
    report, _ = new_page(browser, 375, 812)  # its console has the favicon's 404
    refused: list[str] = []  # what its console cannot say: which URL failed
    report.on("response", lambda r: refused.append(r.url)
              if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    report.goto(center.url + "/report")
    areas = report.locator("#pick-map path.leaflet-interactive")
    expect(areas).to_have_count(2)
    for i in range(2):
        areas.nth(i).hover(force=True)
        if report.locator(".leaflet-tooltip.area-name").filter(has_text=PAYLOAD).count():
            break
    expect(report.locator(".leaflet-tooltip.area-name").filter(has_text=PAYLOAD)).to_have_count(1)
    _no_injection(report)
    assert refused == []

    # The leader view: the note in the timeline, the resident's description and contact.
    leader, leader_errors = new_page(browser, 1600, 1000, center=center, person_id="op-01")
    leader.goto(center.url + "/leader")
    expect(leader.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                          timeout=10_000)
    leader.locator(f'#ticket-rows tr[data-ticket-id="{camera_case["id"]}"]').click()
    expect(leader.locator("#timeline .tl-note")).to_contain_text([PAYLOAD])
    resident_case = next(x for x in center.client("op-01").get("/api/v1/tickets?open=true")
                         .json() if x["source"] == "resident")
    leader.locator(f'#ticket-rows tr[data-ticket-id="{resident_case["id"]}"]').click()
    detail = leader.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-ticket-id", str(resident_case["id"]))
    expect(detail.locator("dd").filter(has_text=PAYLOAD)).to_have_count(2)  # description, contact
    _no_injection(leader)

    # The phone: both cards (the camera's name, the resident's description).
    phone, phone_errors = new_page(browser, 375, 812, center=center, person_id="w-0111")
    phone.goto(center.url + "/phone?worker_id=w-0111")
    expect(phone.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                         timeout=10_000)
    cards = phone.locator(".ticket-card[data-ticket-id]")
    expect(cards).to_have_count(2)
    for i in range(2):
        expect(cards.nth(i)).to_contain_text(PAYLOAD)
    _no_injection(phone)
    assert errors == leader_errors == phone_errors == []
