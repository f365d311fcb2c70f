"""The account control of the logged-in pages (dashboard/static/account.js) in a real browser
against the real center: changing the password on the phone keeps that phone logged in (new
token, websocket back online, its offline queue re-tokened) while the old token dies; logging
out everywhere sends another device to the login form; logging out on this device only forgets
this device's token."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests import plain_http
from tests.browser import new_ticket_card
from tests.conftest import RunningCenter, password_for
from tests.mqtt_helpers import wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"
WORKER = "w-0111"
NEW_PASSWORD = "a-new-password-for-w-0111"

pytestmark = pytest.mark.browser


def _login(center: RunningCenter, person_id: str, password: str | None = None) -> httpx.Response:
    return plain_http.post(center.url + "/api/v1/auth/login",
                           json={"person_id": person_id,
                            "password": password or password_for(person_id)})


def _me(center: RunningCenter, token: str) -> int:
    return plain_http.get(center.url + "/api/v1/auth/me",
                          headers={"Authorization": f"Bearer {token}"}).status_code


def _device(browser: Browser, width: int, height: int, token: str,
            person_id: str) -> tuple[Page, list[str], list[str]]:
    """A page in its own context (a device) logged in with ``token``, its console errors and
    what its websockets sent (the token goes in the first message, never in the URL). Unlike
    ``tests.browser.log_in`` the token goes in only once per tab, so a reload after logging out
    does not log the page in again."""
    context: BrowserContext = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(
        "if (!sessionStorage.getItem('test.logged-in')) {"
        f" localStorage.setItem('gridwatch.token', {json.dumps(token)});"
        f" localStorage.setItem('gridwatch.login.person', {json.dumps(person_id)});"
        " sessionStorage.setItem('test.logged-in', '1'); }")
    page = context.new_page()
    errors: list[str] = []
    sockets: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sockets.append(str(frame))))
    return page, errors, sockets


def _unexpected(errors: list[str], *allowed: int) -> list[str]:
    """Console errors other than the browser's note on an expected refusal (401, 403 ...)."""
    codes = "|".join(str(c) for c in allowed)
    pattern = re.compile(
        rf"Failed to load resource: the server responded with a status of ({codes})")
    return [e for e in errors if not pattern.search(e)]


def _online(page: Page) -> None:
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)


def _no_page_scroll(page: Page) -> None:
    sizes = page.evaluate("""() => ({sw: document.documentElement.scrollWidth,
        sh: document.documentElement.scrollHeight, w: innerWidth, h: innerHeight})""")
    assert sizes["sw"] <= sizes["w"] and sizes["sh"] <= sizes["h"], sizes


def _outbox_tokens(page: Page) -> list[str]:
    return page.evaluate("""async () => (await (await import('/static/phone-outbox.js'))
        .pending()).map((e) => e.token)""")


def test_changing_the_password_on_the_phone_keeps_it_logged_in(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    old = center.token(WORKER)
    page, errors, sockets = _device(browser, 375, 812, old, WORKER)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    _online(page)
    button = page.locator("#account-button")
    expect(button).to_have_attribute("data-person-id", WORKER)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".phone-top").screenshot(path=str(ARTIFACTS / "phone-header-375.png"))

    # A queued action, taken under the old token, that must still go out afterwards. The test
    # holds the outbox's lock so that nothing sends it before the password has changed.
    ticket_id = new_ticket_card(page, mqtt_broker.port).get_attribute("data-ticket-id")
    page.evaluate("""() => new Promise((held) => navigator.locks.request('gridwatch-outbox',
        () => new Promise((release) => { window.__releaseOutbox = release; held(); })))""")
    page.evaluate("""async (id) => (await import('/static/phone-outbox.js')).enqueue({
        ticket_id: Number(id), worker_id: 'w-0111', token: localStorage.getItem('gridwatch.token'),
        body: {action: 'accept'}})""", ticket_id)
    assert _outbox_tokens(page) == [old]

    button.click()
    panel = page.locator("#account-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".account-who")).to_contain_text(WORKER)
    expect(panel.locator(".account-who")).to_contain_text("网格员")
    page.locator("#account-password").click()
    form = page.locator("#account-password-form")
    expect(form).to_be_visible()
    error = page.locator("#account-error")

    # Checked here first: too short, not repeated the same (no request is made).
    page.locator("#account-current").fill(password_for(WORKER))
    page.locator("#account-new").fill("short")
    page.locator("#account-repeat").fill("short")
    page.locator("#account-password-submit").click()
    expect(error).to_have_text("新密码至少需要8个字符")
    page.locator("#account-new").fill(NEW_PASSWORD)
    page.locator("#account-repeat").fill(NEW_PASSWORD + "x")
    page.locator("#account-password-submit").click()
    expect(error).to_have_text("两次输入的新密码不一致")
    # The center says the current password is wrong (403): a clear message, nothing changes.
    page.locator("#account-current").fill("not my password")
    page.locator("#account-repeat").fill(NEW_PASSWORD)
    page.locator("#account-password-submit").click()
    expect(error).to_have_text("当前密码不正确")
    assert page.evaluate("localStorage.getItem('gridwatch.token')") == old
    page.screenshot(path=str(ARTIFACTS / "phone-account-375x812.png"))

    page.locator("#account-current").fill(password_for(WORKER))
    page.locator("#account-password-submit").click()
    expect(page.locator("#account-ok")).to_contain_text("密码已修改")
    expect(form).to_be_hidden()
    new = page.evaluate("localStorage.getItem('gridwatch.token')")
    assert new and new != old

    # The server closed the old socket (4401); the page reconnected with the new token and
    # never showed the login form.
    for _ in range(100):  # the page's events arrive while Playwright waits, not in time.sleep
        if any(new in url for url in sockets):
            break
        page.wait_for_timeout(100)
    assert any(new in url for url in sockets), sockets
    _online(page)
    assert page.locator("#login").count() == 0
    # The queued action now carries the new token and goes out once the outbox may send.
    assert _outbox_tokens(page) == [new]
    page.evaluate("window.__releaseOutbox()")
    page.evaluate("window.gridwatchPhone.flushOutbox()")
    wait_until(lambda: center.client("op-01").get(f"/api/v1/tickets/{ticket_id}")
               .json()["state"] == "accepted", 10, "the queued accept")
    expect(page.locator("#pending-badge")).to_be_hidden(timeout=5_000)

    page.locator("#account-close").click()
    expect(panel).to_be_hidden()
    assert _me(center, old) == 401  # the old token died with the old password
    assert _me(center, new) == 200
    assert _login(center, WORKER, NEW_PASSWORD).status_code == 200
    # This phone's next start still works (the stored token is the new one).
    page.reload()
    _online(page)
    assert page.locator("#login").count() == 0
    # The wrong current password's 403 is the only error the console saw.
    assert _unexpected(errors, 403) == []


def test_logging_out_everywhere_sends_other_devices_to_the_login_form(
        browser: Browser, center: RunningCenter) -> None:
    first = _login(center, "op-01").json()["access_token"]
    second = _login(center, "op-01").json()["access_token"]
    wall, wall_errors, _ = _device(browser, 1920, 1080, first, "op-01")
    desk, desk_errors, _ = _device(browser, 1600, 1000, second, "op-01")
    wall.goto(center.url + "/wall")
    desk.goto(center.url + "/leader")
    _online(wall)
    _online(desk)
    # The wall: the icon only (its operator picker shows the name), and still no scrolling.
    wall_button = wall.locator("#account-button")
    expect(wall_button).to_be_visible()
    expect(wall_button).to_have_attribute("aria-label", re.compile("op-01|值班"))
    # The wall names who is on duty here (the emergency switch acts as them): no picker.
    expect(wall_button.locator(".account-name")).to_be_visible()
    expect(wall.locator("#operator")).to_have_count(0)
    _no_page_scroll(wall)
    ARTIFACTS.mkdir(exist_ok=True)
    wall.locator(".wall-header").screenshot(path=str(ARTIFACTS / "wall-header-1920.png"))
    wall.set_viewport_size({"width": 3840, "height": 2160})
    # The wall's 4K layout (everything twice the size) has been applied before it is judged.
    expect(wall.locator("html")).to_have_css("font-size", "32px")
    _no_page_scroll(wall)
    wall.locator(".wall-header").screenshot(path=str(ARTIFACTS / "wall-header-3840.png"))
    wall.set_viewport_size({"width": 1920, "height": 1080})
    expect(desk.locator("#account-button .account-name")).to_be_visible()
    desk.locator(".leader-header").screenshot(path=str(ARTIFACTS / "leader-header-1600.png"))

    wall_button.click()
    everywhere = wall.locator("#account-logout-all")
    expect(everywhere).to_be_visible()
    wall.screenshot(path=str(ARTIFACTS / "wall-account-1920x1080.png"))
    everywhere.click()  # arms
    expect(everywhere).to_have_attribute("data-armed", "true")
    everywhere.click()  # confirms
    expect(wall.locator("#login")).to_be_visible(timeout=5_000)
    expect(wall.locator(".login-error")).to_have_text("已在所有设备退出登录，请重新登录")
    # The other device: its websocket was closed (4401), it asks for the login again.
    expect(desk.locator("#login")).to_be_visible(timeout=5_000)
    expect(desk.locator(".login-error")).to_contain_text("登录已失效")
    assert _me(center, first) == 401 and _me(center, second) == 401

    # The password still works: logging in again on the desk brings it back.
    desk.locator("#login-password").fill(password_for("op-01"))
    desk.locator("#login-submit").click()
    expect(desk.locator("#login")).to_have_count(0)
    _online(desk)
    assert _unexpected(wall_errors, 401) == [] and _unexpected(desk_errors, 401) == []


def test_logging_out_on_this_device_only_forgets_its_token(
        browser: Browser, center: RunningCenter) -> None:
    token = _login(center, "eng-01").json()["access_token"]
    page, errors, _ = _device(browser, 1280, 900, token, "eng-01")
    page.goto(center.url + "/engineer?lang=en")
    button = page.locator("#account-button")
    expect(button.locator(".account-name")).to_be_visible()
    button.click()
    expect(page.locator("#account-panel .account-who")).to_contain_text("Engineer")
    expect(page.locator("#account-logout")).to_contain_text("Log out")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "engineer-account-1280x900.png"))
    # The keyboard stays in the open panel: Tab never reaches the page behind it.
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("""() => document.activeElement === document.body
            || !!document.activeElement.closest('#account-panel')"""), "Tab left the panel"
    # Escape closes the panel, and the page behind takes the keyboard again.
    page.keyboard.press("Escape")
    expect(page.locator("#account-panel")).to_be_hidden()
    assert page.evaluate("() => document.activeElement.id") == "account-button"
    button.click()
    page.locator("#account-logout").click()
    expect(page.locator("#login")).to_be_visible(timeout=5_000)
    expect(page.locator(".login-error")).to_have_text("Logged out")
    assert page.evaluate("localStorage.getItem('gridwatch.token')") is None
    assert _me(center, token) == 200  # only this device forgot it: nothing was revoked
    page.locator("#login-password").fill(password_for("eng-01"))
    page.locator("#login-submit").click()
    expect(page.locator("#login")).to_have_count(0)
    expect(page.locator("#account-button")).to_have_attribute("data-person-id", "eng-01")
    assert errors == []
