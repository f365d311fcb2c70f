"""GET /api/v1/vocabulary is the pages' one source for the center's ids and their names.

The center here runs on a deployment's own event-type table (a local code, and a 0599 worded
differently from the default file), so the route and the page are seen to follow the file the
center loaded, not a copy anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from playwright.sync_api import Browser, expect

from center.api.vocabulary import NAMES_FILE, load_names
from center.domain.event_types import load_event_types
from center.domain.ticket_states import OPEN, STATES, TERMINAL
from center.services import verdicts
from tests import plain_http
from tests.browser import new_page
from wire.paths import DEFAULTS_DIR
from wire.protocol import CameraState
from wire.vocabulary import OUR_CLASSES, RULE_CLASSES, RULE_DEFAULT_CLASSES, RULE_TYPES

LOCAL_CODE = "0580"
LOCAL_NAME = {"zh": "占道洗车", "en": "Car washing on the pavement"}
OTHER_0599 = {"zh": "其他街面秩序问题", "en": "Any other street-order problem"}


@pytest.fixture
def event_types_file(tmp_path: Path) -> Path:
    table = yaml.safe_load((DEFAULTS_DIR / "event_types.yaml").read_text(encoding="utf-8"))
    table["0599"] = OTHER_0599
    table[LOCAL_CODE] = LOCAL_NAME
    path = tmp_path / "event_types.yaml"
    path.write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def center_settings(event_types_file: Path) -> dict[str, Any]:
    return {"event_types": event_types_file}


def test_vocabulary_is_the_centers_own_data(center: Any, event_types_file: Path) -> None:
    r = plain_http.get(center.url + "/api/v1/vocabulary")  # public: residents' pages need it too
    assert r.status_code == 200, r.text
    got = r.json()

    table = load_event_types(event_types_file)
    assert got["event_types"] == [{"code": c, "zh": e.zh, "en": e.en} for c, e in table.items()]
    assert {"code": LOCAL_CODE, **LOCAL_NAME} in got["event_types"]
    assert {"code": "0599", **OTHER_0599} in got["event_types"]

    assert [s["id"] for s in got["states"]] == list(STATES)
    assert {s["id"] for s in got["states"] if s["open"]} == set(OPEN)
    assert {s["id"] for s in got["states"] if s["terminal"]} == set(TERMINAL)
    assert {s["id"] for s in got["camera_states"]} == {*get_args(CameraState), "unknown"}
    assert [(x["id"], x["classes"], x["default_classes"]) for x in got["rule_types"]] == [
        (r, list(RULE_CLASSES[r]), list(RULE_DEFAULT_CLASSES[r])) for r in RULE_TYPES]
    assert {c["id"] for c in got["classes"]} == set(OUR_CLASSES)
    assert [r["id"] for r in got["verdict_reasons"]] == list(verdicts.REASONS)
    for kind in ("states", "sources", "camera_states", "rule_types", "classes",
                 "verdict_reasons"):
        for item in got[kind]:
            assert item["zh"] and item["en"], (kind, item)


def test_a_names_file_that_misses_an_id_is_refused(tmp_path: Path) -> None:
    names = yaml.safe_load(NAMES_FILE.read_text(encoding="utf-8"))
    del names["states"]["handled"]
    names["classes"]["bicycle"] = {"zh": "自行车", "en": "bicycle"}
    bad = tmp_path / "names.yaml"
    bad.write_text(yaml.safe_dump(names, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"names do not match the center's ids") as caught:
        load_names(bad)
    assert "states: missing ['handled']" in str(caught.value)
    assert "classes: missing [], unknown ['bicycle']" in str(caught.value)


def test_the_pages_name_event_types_from_the_center(center: Any, browser: Browser) -> None:
    """The residents' form lists the deployment's table (its local code too) in zh and en."""
    for lang in ("zh", "en"):
        page, errors = new_page(browser, 1280, 900)
        page.goto(f"{center.url}/report{'?lang=en' if lang == 'en' else ''}")
        option = page.locator(f'select[name="event_type"] option[value="{LOCAL_CODE}"]')
        expect(option).to_have_text(f"{LOCAL_CODE} {LOCAL_NAME[lang]}")
        expect(page.locator('select[name="event_type"] option[value="0599"]')).to_have_text(
            f"0599 {OTHER_0599[lang]}")
        assert errors == []
        page.context.close()


def test_a_page_fetches_the_vocabulary_once(center: Any, browser: Browser) -> None:
    """The leader view's modules all name ids (list, case view, verdicts, the phone's map), yet
    the page asks the center once: vocabulary.js is evaluated once per page load."""
    page, errors = new_page(browser, 1440, 900, center=center, person_id="op-01")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/vocabulary" in r.url else None)
    page.goto(f"{center.url}/leader")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(page.locator("#f-type option")).to_have_count(1 + len(load_event_types(
        center.settings.event_types)))
    assert len(asked) == 1, asked
    assert errors == []
    page.context.close()
