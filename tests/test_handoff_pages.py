"""Hand-off and urging in a real Chromium against the real center: the leader hands a case to a
department from the leader view, the department's staff find it in their own queue (the leader
view filtered to their department), handle it, and it comes back to the leader to verify; an
urge makes the worker's phone loud (a message that stays, a long vibration) and is in the
ledger."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import new_page, new_ticket_card
from tests.conftest import RunningCenter

pytestmark = pytest.mark.browser

# Records the vibration patterns a page asks for (a browser API, not the page's code).
RECORD_VIBRATION = ("window.vibrations = [];"
                    " navigator.vibrate = (p) => { window.vibrations.push(p); return true; };")




def _leader_page(browser: Browser, center: RunningCenter, person: str,
                 ticket_id: int | None = None) -> tuple[Page, list[str]]:
    page, errors = new_page(browser, 1600, 1000, center=center, person_id=person)
    page.goto(f"{center.url}/leader" + (f"?ticket={ticket_id}" if ticket_id else ""))
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    return page, errors


def _click(page: Page, action: str) -> None:
    page.locator(f'#ticket-detail button[data-action="{action}"]').click()


def test_a_hand_off_from_the_leader_view_reaches_the_department_queue_and_comes_back(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    tid = ticket["id"]
    leader, leader_errors = _leader_page(browser, center, "l-011", tid)
    detail = leader.locator("#ticket-detail")
    expect(detail).to_have_attribute("data-ticket-id", str(tid))
    # The assignee can be called from the case.
    expect(detail.get_by_test_id("assignee-tel")).to_have_attribute("href", "tel:13800000111")
    picker = detail.get_by_test_id("handoff-to")
    expect(picker).to_have_value("d-urban")  # the department handling 0506, preselected
    picker.select_option("d-market")
    _click(leader, "hand_off")
    expect(detail.locator(".facts")).to_contain_text("市场监管所")
    assert center.client("op-01").get(f"/api/v1/tickets/{tid}").json()["department_id"] \
        == "d-market"

    # Market supervision's staff: their queue (on by default) holds the case.
    staff, staff_errors = _leader_page(browser, center, "d-market-01")
    queue = staff.get_by_test_id("department-queue")
    expect(queue).to_be_visible()
    expect(queue).to_be_checked()
    row = staff.locator(f'#ticket-rows tr[data-ticket-id="{tid}"]')
    expect(row).to_be_visible()
    expect(staff.locator("#ticket-rows tr")).to_have_count(1)
    row.click()
    expect(staff.locator("#ticket-detail")).to_have_attribute("data-ticket-id", str(tid))
    _click(staff, "accept")
    expect(staff.locator("#ticket-detail")).to_have_attribute("data-state", "accepted")
    _click(staff, "resolve")
    expect(staff.locator("#ticket-detail")).to_have_attribute("data-state", "handled")
    # The department does not verify its own work.
    expect(staff.locator('#ticket-detail button[data-action="verify"]')).to_have_count(0)

    # Back on the leader's screen (live): handled, to verify.
    expect(detail).to_have_attribute("data-state", "handled", timeout=10_000)
    _click(leader, "verify")
    expect(detail).to_have_attribute("data-state", "verified")
    timeline = leader.get_by_test_id("timeline")
    for action in ("hand_off", "accept", "resolve", "verify"):
        expect(timeline.locator(f'li[data-action="{action}"]')).to_have_count(1)
    expect(timeline.locator('li[data-action="hand_off"]')).to_contain_text("移交部门")
    assert leader_errors == [] and staff_errors == []


def test_other_department_staff_do_not_see_the_case_in_their_queue(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    ticket = center.dispatched_case(mqtt_broker.port)
    r = center.client("op-01").post(f"/api/v1/tickets/{ticket['id']}/actions",
                                    json={"action": "hand_off", "department_id": "d-market"})
    assert r.status_code == 200, r.text
    page, errors = _leader_page(browser, center, "d-urban-01")
    expect(page.get_by_test_id("department-queue")).to_be_checked()
    # Witness that the list has loaded: its count is shown, and it is empty.
    expect(page.locator("#list-count")).to_have_text("0")
    expect(page.locator("#list-empty")).to_be_visible()
    # Without the queue filter urban management sees its event types' cases, this one too.
    page.get_by_test_id("department-queue").uncheck()
    expect(page.locator(f'#ticket-rows tr[data-ticket-id="{ticket["id"]}"]')).to_be_visible()
    assert errors == []


def test_an_urge_makes_the_phone_loud_and_is_in_the_ledger(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    page, errors = new_page(browser, 390, 844, center=center, person_id="w-0111")
    page.context.add_init_script(RECORD_VIBRATION)
    page.goto(f"{center.url}/phone?worker_id=w-0111")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    card = new_ticket_card(page, mqtt_broker.port)
    tid = int(card.get_attribute("data-ticket-id") or 0)
    card.locator(".card-age").first.click()  # a touch: browsers vibrate only after one
    r = center.client("op-01").post(f"/api/v1/tickets/{tid}/actions",
                                    json={"action": "urge", "note": "居民再次投诉"})
    assert r.status_code == 200, r.text

    message = page.get_by_test_id("urge-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text(f"工单 #{tid}")
    expect(message).to_contain_text("被催办")
    expect(message).to_contain_text("居民再次投诉")  # who urged and why, from the ledger
    expect(page.locator(f'.ticket-card[data-ticket-id="{tid}"]')).to_have_class(
        re.compile(r"\bis-urged\b"))
    assert page.evaluate("() => document.body.dataset.lastUrged") == str(tid)
    # The urge's long pattern (a new case buzzes [180, 80, 180]).
    assert [400, 150, 400, 150, 600] in page.evaluate("() => window.vibrations")
    # It stays until the worker dismisses it.
    message.locator(".banner-close").click()
    expect(message).to_have_count(0)
    events = center.client("op-01").get(f"/api/v1/tickets/{tid}").json()["events"]
    assert [(e["action"], e["actor_id"], e["note"]) for e in events if e["action"] == "urge"] \
        == [("urge", "op-01", "居民再次投诉")]
    assert errors == []
