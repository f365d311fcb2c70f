"""Chinese mode speaks Chinese: the wall, leader, phone and engineer pages, walked in Chromium
against the real center with a case that a camera found, a worker handled and the camera
verified, show no English word of the interface and no raw id where a name is known.

Names from the district (people, cameras, areas, departments) are data and may be bilingual
("人民路商铺 Renmin Rd shops"): they are taken out of each text before it is checked. Case
numbers (#12), event codes (0506), times and the "EN" language link are allowed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from center.domain import ticket_notes
from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

#: Words of the interface that must not show in Chinese mode (whole words, any case).
ENGLISH = re.compile(
    r"\b(online|offline|connecting|live|loading|error|failed|unknown|frozen|lagging|none|null|"
    r"undefined|nan|ticket|tickets|alert|alerts|camera|cameras|score|ended|registered|"
    r"dispatched|accepted|handling|handled|verified|evaluated|closed|void|overdue|open|worker|"
    r"leader|operator|engineer|admin|system|resident|patrol|public|edge|zone|zones|status|"
    r"state|save|cancel|delete|draw|frame|snapshot|clear|place|sees|level|notified|nobody|"
    r"rework|return|accept|resolve|arrive|verify|dispatch|reassign|escalate|acknowledge|"
    r"close|rate|attach|register|assignee|note|http)\b", re.IGNORECASE)
#: Raw ids: ``camera:cam-vn-01`` style actors and kebab-case ids (cam-vn-01, mg-011, w-0111,
#: pavement-east, edge-demo); the engineer page edits cameras and zones by id, so it may show them.
ACTOR = re.compile(r"\b[a-z]+:[\w.-]+")
KEBAB = re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)+\b")

VISIBLE_TEXT = """() => {
  const out = [];
  const seen = (el) => el && !el.closest('script,style,noscript,[hidden],.lang-switch')
    && el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (text && seen(el)) out.push([text, el.closest('[id]')?.id || el.tagName]);
  }
  for (const select of document.querySelectorAll('select')) {
    if (!seen(select)) continue;
    for (const option of select.options) out.push([option.text.trim(), select.id || 'select']);
  }
  for (const input of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (seen(input)) out.push([input.placeholder, input.id || input.tagName]);
  }
  return out;
}"""


def _data_names(center: RunningCenter) -> list[str]:
    """The names the district gives (longest first, so a name is removed before its parts)."""
    d = center.client("op-01").get("/api/v1/district").json()
    names = [d["name"]]
    names += [f["properties"]["name"] for f in d["areas"]["features"]]
    names += [c["name"] for c in d["cameras"]] + [x["name"] for x in d["departments"]]
    names += [p["name"] for p in center.client("op-01").get("/api/v1/people").json()]
    return sorted({n for n in names if n}, key=len, reverse=True)


def _offending(page: Page, names: list[str], *, ids_allowed: bool = False) -> list[str]:
    found = []
    for text, where in page.evaluate(VISIBLE_TEXT):
        rest = text
        for name in names:
            rest = rest.replace(name, " ")
        if ids_allowed:  # an id is not English words (edge-demo is no "edge")
            rest = KEBAB.sub(" ", rest)
        bad = ENGLISH.findall(rest) + ACTOR.findall(rest)
        if not ids_allowed:
            bad += KEBAB.findall(rest)
        if bad:
            found.append(f"{where}: {text!r} ({', '.join(bad)})")
    return found


def _handled_and_camera_verified(center: RunningCenter, broker_port: int) -> int:
    """A camera case on w-0111's micro-grid, handled by w-0111 and verified by the camera's
    ``end`` (its ledger then names ``camera:cam-vn-01``)."""
    pub = Publisher(broker_port)
    alert = make_alert()
    pub.alert(alert)
    w = center.client("w-0111")

    def opened() -> Any:
        return next((x for x in w.get("/api/v1/tickets?open=true").json()
                     if x["camera_id"] == "cam-vn-01"), None)

    tid = wait_until(opened, what="the camera's case")["id"]
    for action in ("accept", "arrive", "resolve"):
        r = w.post(f"/api/v1/tickets/{tid}/actions", json={"action": action, "note": "已清理"})
        assert r.status_code == 200, r.text
    pub.alert(make_alert("end", alert_id=alert.alert_id))
    wait_until(lambda: w.get(f"/api/v1/tickets/{tid}").json()["state"] == "verified",
               what="the camera to verify the case")
    pub.close()
    return tid


def test_chinese_mode_shows_no_english_and_no_raw_ids(browser: Browser, center: RunningCenter,
                                                     mqtt_broker) -> None:
    verified = _handled_and_camera_verified(center, mqtt_broker.port)
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert(camera_id="cam-bj-01", zone_id="crossing-north"))
    pub.close()
    r = center.client("w-0111").post("/api/v1/reports", data={
        "event_type": "0504", "lon": "120.1520", "lat": "30.2715", "note": "门口摆摊"})
    assert r.status_code == 201, r.text
    patrol = r.json()["id"]
    names = _data_names(center)
    problems: dict[str, list[str]] = {}

    wall, wall_errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    wall.goto(center.url + "/wall")
    expect(wall.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(wall.locator("#alert-feed .alert-item")).not_to_have_count(0, timeout=10_000)
    expect(wall.locator("#ticket-rows tr[data-ticket-id]")).not_to_have_count(0)
    problems["wall"] = _offending(wall, names)

    leader, _ = new_page(browser, 1600, 1000, center=center, person_id="op-01")
    leader.goto(center.url + f"/leader?ticket={verified}")
    expect(leader.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                           timeout=10_000)
    expect(leader.locator(".tl")).not_to_have_count(0, timeout=10_000)
    timeline = leader.locator("#timeline")
    expect(timeline).to_contain_text("自动派给 王芳（网格员 A岗）")
    expect(timeline).to_contain_text("摄像头 人民路商铺 Renmin Rd shops")
    expect(timeline).to_contain_text("摄像头确认现场已清理")
    problems["leader"] = _offending(leader, names)
    leader.goto(center.url + f"/leader?ticket={patrol}")  # open: the reassign picker shows
    expect(leader.locator("#reassign-to")).to_be_visible(timeout=10_000)
    problems["leader open case"] = _offending(leader, names)
    for tab, table in (("indicators", "#ind-table"), ("ranking", "#rank-table")):
        leader.click(f'button[data-tab="{tab}"]')
        expect(leader.locator(f'[data-panel="{tab}"]')).to_be_visible()
        expect(leader.locator(f"{table} tbody tr")).not_to_have_count(0, timeout=10_000)
        problems[f"leader {tab}"] = _offending(leader, names)

    phone, _ = new_page(browser, 390, 844, center=center, person_id="w-0111")
    phone.goto(center.url + "/phone?worker_id=w-0111")
    expect(phone.locator(".ticket-card[data-ticket-id]")).not_to_have_count(0, timeout=10_000)
    problems["phone"] = _offending(phone, names)

    engineer, _ = new_page(browser, 1600, 1000, center=center, person_id="eng-01")
    engineer.goto(center.url + "/engineer")
    engineer.wait_for_load_state("networkidle")
    problems["engineer"] = _offending(engineer, names, ids_allowed=True)

    report = "\n".join(f"{page}: {line}" for page, found in problems.items() for line in found)
    assert not report, "English or raw ids in Chinese mode:\n" + report
    assert wall_errors == []


def test_every_note_the_center_writes_has_words_in_both_languages() -> None:
    """Each ledger note the center writes reads back as a key that staff-words.js says in zh and en
    (a new note without words would show its English text on a Chinese page)."""
    n = ticket_notes
    written = [n.routed("w-0111", "worker", "A"), n.routed("l-011", "micro_grid_leader", None),
               n.CAMERA_AGAIN, n.CAMERA_CLEAR, n.CAMERA_CLEAR_EARLY,
               n.CAMERA_CLEAR_OTHER.format(ended="a", violation="b"),
               n.CLOSED_AFTER_RATING, n.CLOSED_UNRATED,
               n.escalated(1, n.STAGE_LIMIT.format(stage="accept"), ["l-011"]),
               n.escalated(1, n.STAGE_LIMIT.format(stage="handle"), []),
               n.escalated(1, n.STAGE_LIMIT.format(stage="overall"), []),
               n.escalated(2, n.UNACKNOWLEDGED, ["l-g01", "d-urban-01"])]
    common = (REPO / "dashboard" / "static" / "staff-words.js").read_text(encoding="utf-8")
    for note in written:
        said = ticket_notes.read(note)
        assert said is not None, note
        keys = [f"note.{said[0]}"]
        if said[0] == "escalated":
            keys.append(f"note.reason.{said[1]['reason']}")
        for key in keys:
            assert common.count(f'"{key}":') == 2, f"{key} needs a zh and an en entry"
    assert ticket_notes.read("单车已挪走") is None
