"""The wall's open-tickets panel in Chromium at 1920×1080: the cases that need someone (overdue,
returned) come first, and the panel shows as many rows as it has room for."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.browser import new_page
from tests.conftest import RunningCenter

pytestmark = pytest.mark.browser

# a point in mg-011 (the demo district's first micro-grid)
PLACE = {"lon": "120.1520", "lat": "30.2715"}


def _patrol(center: RunningCenter, note: str) -> int:
    r = center.client("w-0111").post("/api/v1/reports", data={
        "event_type": "0506", "note": note, **PLACE})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _rows_in_view(page) -> list[str]:
    """Ids of the ticket rows wholly inside the panel's visible box (what the wall shows)."""
    return page.evaluate("""() => {
      const body = document.querySelector('.panel-tickets .panel-body').getBoundingClientRect();
      return [...document.querySelectorAll('#ticket-rows tr[data-ticket-id]')]
        .filter((tr) => {
          const r = tr.getBoundingClientRect();
          return r.height > 0 && r.top >= body.top - 0.5 && r.bottom <= body.bottom + 0.5;
        })
        .map((tr) => tr.dataset.ticketId);
    }""")


def test_overdue_and_returned_first_and_rows_fill_the_panel(browser: Browser,
                                                            center: RunningCenter) -> None:
    overdue = _patrol(center, "oldest, and past its deadline")
    returned = _patrol(center, "dispatched, then sent back by the worker")
    fresh = [_patrol(center, f"fresh case {i}") for i in range(8)]
    w = center.client("w-0111")
    r = w.post(f"/api/v1/tickets/{returned}/actions",
               json={"action": "return", "note": "not my micro-grid"})
    assert r.status_code == 200 and r.json()["state"] == "registered", r.text
    # The accept deadline of the first case passed (a test cannot wait the real 30 minutes).
    with psycopg.connect(center.settings.db.dsn, autocommit=True) as conn:
        conn.execute("UPDATE tickets SET stage_due_at = now() - interval '5 minutes'"
                     " WHERE id = %s", (overdue,))
    assert next(x for x in w.get("/api/v1/tickets?open=true").json()
                if x["id"] == overdue)["overdue"] is True

    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    rows = page.locator("#ticket-rows tr[data-ticket-id]")
    expect(rows).to_have_count(2 + len(fresh), timeout=10_000)
    order = [int(x) for x in rows.evaluate_all("rs => rs.map((r) => r.dataset.ticketId)")]
    assert order[:2] == [overdue, returned], order
    expect(page.locator("#kpi-overdue")).to_have_attribute("data-value", "1")
    shown = _rows_in_view(page)
    print(f"rows visible at 1920x1080: {len(shown)}")
    assert len(shown) > 3, f"only {len(shown)} rows visible: {shown}"
    assert shown[:2] == [str(overdue), str(returned)]
    no_scroll = page.evaluate(
        "() => document.documentElement.scrollHeight <= window.innerHeight")
    assert no_scroll
    assert errors == []
