"""Simulated alerts (issue 15): the demo's synthetic alerts draw random boxes on real frames, so
they say so. The wire's ``Alert.simulated`` is strict (only JSON true/false), stored with the
alert, carried to the ticket it opens, shown by the API and badged 模拟 / SIMULATED on the wall
(alert card, ticket row, detail panel) and on the phone card. A real edge never sets it."""

from __future__ import annotations

import hashlib
import json

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from center.store.alerts import content_digest
from simulators.alerts import AlertStorm, SimCamera
from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until
from tests.test_wall_detail import wall_page
from wire.protocol import Alert, alert_topic, parse_alert


def _simulated(**kw: object) -> Alert:
    return make_alert(**kw).model_copy(update={"simulated": True})


def _with_simulated(value: object) -> bytes:
    data = json.loads(make_alert().model_dump_json())
    data["simulated"] = value
    return json.dumps(data).encode()


def _count(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchone()[0]


# --- the wire --------------------------------------------------------------------------------

def test_simulated_is_optional_and_false_by_default() -> None:
    real = make_alert()
    assert real.simulated is False
    assert parse_alert(_with_simulated(True)).simulated is True
    assert parse_alert(_with_simulated(False)).simulated is False


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, [True]])
def test_simulated_takes_only_a_json_boolean(value: object) -> None:
    with pytest.raises(ValueError, match="simulated"):
        parse_alert(_with_simulated(value))


def test_a_real_edges_content_digest_does_not_change() -> None:
    """Redeliveries across the upgrade are not conflicts: ``simulated: false`` (the default)
    leaves the digest as it was before the field existed; true changes it."""
    real = make_alert()
    as_before = real.model_dump_json(exclude={"snapshot_jpeg", "frame", "simulated"})
    assert "simulated" not in as_before
    assert content_digest(real) == hashlib.sha256(as_before.encode()).digest()
    assert content_digest(real) != content_digest(real.model_copy(update={"simulated": True}))


def test_the_alert_storm_marks_every_alert_simulated() -> None:
    storm = AlertStorm([SimCamera("cam-vn-01", "edge-demo")], "127.0.0.1", 1, seed=3)
    out = [storm._next_valid() for _ in range(20)]
    assert out and all(json.loads(o.payload)["simulated"] is True for o in out)


# --- the center ------------------------------------------------------------------------------

def test_simulated_alert_and_its_ticket_are_flagged_in_the_api(center: RunningCenter,
                                                                mqtt_broker) -> None:
    pub = Publisher(mqtt_broker.port)
    sim = _simulated(zone_id="sim-zone")
    real = make_alert()
    pub.alert(sim)
    pub.alert(real)
    pub.send(alert_topic("edge-demo", "cam-vn-01"), _with_simulated("yes"))
    pub.close()
    dsn = center.settings.db.dsn
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM alerts") == 2, what="2 alerts")
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM dead_letters") == 1, what="dead letter")
    with psycopg.connect(dsn) as conn:
        reason = conn.execute("SELECT reason FROM dead_letters").fetchone()[0]
    assert "simulated" in reason

    op = center.client("op-01")
    alerts = {a["alert_id"]: a for a in op.get("/api/v1/alerts").json()}
    assert alerts[str(sim.alert_id)]["simulated"] is True
    assert alerts[str(real.alert_id)]["simulated"] is False
    tickets = wait_until(lambda: {t["zone_id"]: t for t in
                                  op.get("/api/v1/tickets?open=true").json()}
                         if len(op.get("/api/v1/tickets?open=true").json()) == 2 else None,
                         what="2 tickets")
    assert tickets["sim-zone"]["simulated"] is True
    assert tickets["pavement-east"]["simulated"] is False
    one = op.get(f"/api/v1/tickets/{tickets['sim-zone']['id']}").json()
    assert one["simulated"] is True


# --- the screens -----------------------------------------------------------------------------

@pytest.mark.browser
def test_wall_and_phone_badge_simulated_alerts_only(browser: Browser, center: RunningCenter,
                                                     mqtt_broker) -> None:
    sim = _simulated(zone_id="sim-zone")
    real = make_alert()
    pub = Publisher(mqtt_broker.port)
    pub.alert(sim)
    pub.alert(real)
    pub.close()
    op = center.client("op-01")
    wait_until(lambda: len(op.get("/api/v1/tickets?open=true").json()) == 2, what="2 tickets")
    tickets = {t["zone_id"]: t["id"] for t in op.get("/api/v1/tickets?open=true").json()}

    for lang, word in (("zh", "模拟"), ("en", "SIMULATED")):
        page, errors = wall_page(browser, center, f"/wall?lang={lang}")
        sim_card = page.locator(f'#alert-feed [data-alert-id="{sim.alert_id}"]')
        real_card = page.locator(f'#alert-feed [data-alert-id="{real.alert_id}"]')
        expect(sim_card.get_by_test_id("simulated-badge")).to_have_text(word, timeout=10_000)
        expect(real_card).to_be_visible()
        expect(real_card.get_by_test_id("simulated-badge")).to_have_count(0)
        sim_row = page.locator(f'#ticket-rows tr[data-ticket-id="{tickets["sim-zone"]}"]')
        real_row = page.locator(f'#ticket-rows tr[data-ticket-id="{tickets["pavement-east"]}"]')
        expect(sim_row.get_by_test_id("simulated-badge")).to_have_text(word)
        expect(real_row).to_be_visible()
        expect(real_row.get_by_test_id("simulated-badge")).to_have_count(0)

        sim_card.click()
        dialog = page.locator("dialog[open]")
        expect(dialog.locator("#detail-title").get_by_test_id("simulated-badge")).to_have_text(word)
        expect(dialog.locator(".detail-case-head").get_by_test_id("simulated-badge")
               ).to_have_text(word, timeout=10_000)
        dialog.get_by_test_id("detail-close").click()
        real_card.click()
        expect(dialog.get_by_test_id("detail-state")).to_be_visible(timeout=10_000)
        expect(page.locator("dialog[open]").get_by_test_id("simulated-badge")).to_have_count(0)
        assert errors == []
        page.context.close()

    phone, errors = new_page(browser, 390, 844, center=center, person_id="w-0111")
    phone.goto(center.url + "/phone")
    sim_card = phone.locator(f'.ticket-card[data-ticket-id="{tickets["sim-zone"]}"]')
    real_card = phone.locator(f'.ticket-card[data-ticket-id="{tickets["pavement-east"]}"]')
    expect(sim_card.get_by_test_id("simulated-badge")).to_have_text("模拟", timeout=10_000)
    expect(real_card).to_be_visible()
    expect(real_card.get_by_test_id("simulated-badge")).to_have_count(0)
    assert errors == []
