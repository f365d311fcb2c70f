"""Event names never break inside a word (issue 15): CJK text may wrap between any two
characters, so "非机动车乱停放" used to come out as "非机动车乱停" / "放" on an alert card. Measured
in Chromium, per word (a Chinese name is one word; an English name wraps only at its spaces and
after its hyphens, as English typesetting does: "Open-" / "air" in a narrow column):
the word's text ranges all lie on one line. On the wall at 1920×1080, 3840×1080 and 3840×2160
and in the leader view at 390×844, in Chinese and English, with a case of every event type."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert
from tests.test_responsive_wall import EVENT_TYPES
from tests.waiting import wait_until
from wire.paths import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
NAMES = yaml.safe_load((REPO / "center/defaults/event_types.yaml").read_text(encoding="utf-8"))
WALL = ".alert-name, #ticket-rows td.type"
LEADER = "#ticket-rows td, #ticket-detail h2"


def _a_simulated_case_of_every_type(center: RunningCenter, mqtt_port: int) -> None:
    """As the demo's synthetic alerts: each card also carries the 模拟 / SIMULATED badge."""
    pub = Publisher(mqtt_port)
    for code in EVENT_TYPES:
        pub.alert(make_alert(event_type=code).model_copy(update={"simulated": True}))
    pub.close()

    def all_types() -> bool:
        found = center.client("op-01").get("/api/v1/tickets?open=true").json()
        return {x["event_type"] for x in found} >= set(EVENT_TYPES)

    wait_until(all_types, 20, "a ticket of every event type")


def _broken_words(page: Page, selector: str, lang: str) -> list[str]:
    """Each word of an event name shown in `selector` that spans two lines."""
    words = sorted({w for code in EVENT_TYPES for w in re.split(r"[\s-]+", NAMES[code][lang])
                    if w}, key=len, reverse=True)
    return page.evaluate("""([selector, words]) => {
        const broken = [];
        for (const el of document.querySelectorAll(selector)) {
            if (!el.getClientRects().length) continue;  // not shown
            const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let node = walk.nextNode(); node; node = walk.nextNode()) {
                for (const word of words) {
                    const at = node.data.indexOf(word);
                    if (at < 0) continue;
                    const range = document.createRange();
                    range.setStart(node, at);
                    range.setEnd(node, at + word.length);
                    const tops = new Set([...range.getClientRects()]
                        .filter((r) => r.width > 0).map((r) => Math.round(r.top)));
                    if (tops.size > 1) broken.push(`${word} in ${el.tagName}.${el.className}`);
                    break;  // longest word first: its parts are not looked for again
                }
            }
        }
        return broken;
    }""", [selector, words])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_event_names_break_only_between_words(browser: Browser, center: RunningCenter,
                                              mqtt_broker, lang: str) -> None:
    _a_simulated_case_of_every_type(center, mqtt_broker.port)
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in [(1920, 1080), (3840, 1080), (3840, 2160)]:
        page, errors = new_page(browser, width, height, center=center, person_id="op-01")
        page.goto(f"{center.url}/wall?lang={lang}&mode=map")
        expect(page.locator("#alert-feed .alert-name")).to_have_count(len(EVENT_TYPES),
                                                                      timeout=10_000)
        expect(page.locator("#ticket-rows tr[data-ticket-id]")).to_have_count(len(EVENT_TYPES))
        assert _broken_words(page, WALL, lang) == [], f"wall {width}x{height}"
        page.locator("#alert-feed").screenshot(
            path=str(ARTIFACTS / f"wall-alert-names-{lang}-{width}x{height}.png"))
        assert errors == []
        page.context.close()

    page, errors = new_page(browser, 390, 844, center=center, person_id="l-011")
    page.goto(f"{center.url}/leader?lang={lang}")
    rows = page.locator("#ticket-rows tr[data-ticket-id]")
    expect(rows.first).to_be_visible(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / f"leader-names-{lang}-390x844.png"))
    assert _broken_words(page, LEADER, lang) == [], "leader list 390x844"
    rows.first.click()
    expect(page.locator("#ticket-detail h2")).to_be_visible()
    assert _broken_words(page, LEADER, lang) == [], "leader case 390x844"
    assert errors == []
