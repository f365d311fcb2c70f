"""Each page opened with nobody logged in (a new screen or phone, a cleared browser): the login
form, and after it the whole page at once, with nothing asked of the center before the login.

Before, the wall's map asked for its base (``GET /api/v1/map``) and its on-duty workers' socket
connected as the page loaded: both were refused (a 401 in the console, a socket closed 4401),
the refusals queued a reload behind the login form, and the wall loaded twice after a login."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import new_page
from tests.conftest import RunningCenter, password_for

pytestmark = pytest.mark.browser

ONLINE = "#ws-status[data-state=online]"


@pytest.mark.parametrize(("path", "person", "ready"), [
    # the wall: its map's base (the demo district's GeoJSON layers), cameras and live socket
    ("/wall", "op-01", ["#map[data-base=layers]", "#map path.base-road",
                        "#map path.cam-marker", ONLINE]),
    ("/phone", "w-0111", [ONLINE]),
    ("/leader", "l-011", [ONLINE]),
    ("/engineer", "eng-01", ["#account-button .account-name"]),
])
def test_a_page_asks_nothing_before_its_login_and_loads_once(
        browser: Browser, center: RunningCenter, path: str, person: str,
        ready: list[str]) -> None:
    page, errors = new_page(browser, 1920, 1080)
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    url = f"{center.url}{path}?lang=en"
    page.goto(url)
    expect(page.locator("#login")).to_be_visible()
    page.locator("#login-person").fill(person)
    page.locator("#login-password").fill(password_for(person))
    page.locator("#login-submit").click()
    expect(page.locator("#login")).to_have_count(0)
    for selector in ready:
        expect(page.locator(selector).first).to_be_attached()
    assert loads == [url], f"{path} loaded again after the login"
    assert refused == [] and errors == []
