"""The worker phone app in a real browser against the real center: the PWA pieces, the whole
accept -> arrived -> handled-with-photo flow, and the offline queue across a real stop and
restart of the center (same port, same database)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, ElementHandle, Page, expect

from center.platform.settings import CenterSettings, DatabaseSettings, HttpSettings, MqttSettings
from simulators.local_services import free_port
from tests import plain_http
from tests.browser import expect_image_loaded, new_page, new_ticket_card
from tests.conftest import RunningCenter, password_for, set_known_passwords
from tests.mqtt_helpers import Publisher, make_alert, tiny_jpeg
from tests.waiting import wait_until
from wire.paths import REPO

ARTIFACTS = REPO / "test-artifacts"
WORKER = "w-0111"

pytestmark = pytest.mark.browser


_TOKENS: dict[tuple[str, str], str] = {}


def _auth(url: str, person_id: str = "op-01") -> dict[str, str]:
    """Bearer header for a person (logged in once per center URL through the API)."""
    if (url, person_id) not in _TOKENS:
        r = plain_http.post(f"{url}/api/v1/auth/login",
                            json={"person_id": person_id, "password": password_for(person_id)})
        r.raise_for_status()
        _TOKENS[url, person_id] = r.json()["access_token"]
    return {"Authorization": f"Bearer {_TOKENS[url, person_id]}"}


def _ticket(url: str, ticket_id: str | int) -> dict[str, Any]:
    return plain_http.get(f"{url}/api/v1/tickets/{ticket_id}", headers=_auth(url)).json()


def _wait_state(url: str, ticket_id: str | int, state: str, timeout: float = 10) -> None:
    wait_until(lambda: _ticket(url, ticket_id)["state"] == state, timeout, f"state {state}")


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "handled.jpg"
    path.write_bytes(tiny_jpeg())
    return path


def _record_traffic(page: Page) -> list[str]:
    """What the page and its service worker said to the center, and the console: printed when
    the flow fails, because the failure has only ever shown up in full-suite runs."""
    lines: list[str] = []
    start = time.monotonic()

    def log(text: str) -> None:
        lines.append(f"{time.monotonic() - start:7.3f} {text}")

    def on_request(request: Any) -> None:
        if "/api/" in request.url and request.method != "GET":
            body = request.post_data if "actions" in request.url else ""
            log(f"-> {request.method} {request.url} {body or ''}")

    page.context.on("request", on_request)
    page.context.on("response", lambda r: log(f"<- {r.status} {r.request.method} {r.url}")
                    if "/api/" in r.url else None)
    page.context.on("requestfailed", lambda r: log(f"xx {r.method} {r.url} {r.failure}"))
    page.on("console", lambda m: log(f"console.{m.type}: {m.text}"))
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: log(f"ws: {str(f)[:300]}")))
    return lines


def _controlled(page: Page) -> None:
    """Wait until the service worker controls the page. Nothing in the DOM shows it, so it is
    polled from here: a string ``page.wait_for_function`` needs eval, which the CSP forbids."""
    wait_until(lambda: page.evaluate("() => Boolean(navigator.serviceWorker?.controller)"), 10,
               "the service worker to control the page")


def _detached(element: ElementHandle, timeout: float, what: str) -> None:
    """Wait until ``element`` has left the document (a redraw replaced it)."""
    wait_until(lambda: not element.evaluate("(el) => el.isConnected"), timeout, what)


def test_pwa_manifest_icons_and_service_worker(browser: Browser,
                                               center: RunningCenter) -> None:
    manifest = plain_http.get(center.url + "/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    data = manifest.json()
    assert data["start_url"] == "/phone" and data["display"] == "standalone"
    sizes = {i["sizes"] for i in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        r = plain_http.get(center.url + icon["src"])
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    sw = plain_http.get(center.url + "/sw.js")
    assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
    assert sw.headers["service-worker-allowed"] == "/"

    page, errors = new_page(browser, 375, 812)
    page.goto(center.url + "/phone")
    # Log in once with your id and password; the phone remembers the login (a bearer token).
    page.locator("#login-person").fill(WORKER)
    page.locator("#login-password").fill("wrong password")
    page.locator("#login-submit").click()
    expect(page.locator(".login-error")).not_to_be_empty()
    page.locator("#login-password").fill(password_for(WORKER))
    page.locator("#login-submit").click()
    expect(page.locator("#login")).to_have_count(0)
    expect(page.locator("#my-tickets")).to_be_visible()
    _controlled(page)
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == center.url + "/"
    page.goto(center.url + "/phone")
    expect(page.locator("#my-tickets")).to_be_visible()
    assert page.evaluate("() => localStorage.getItem('gridwatch.worker_id')") == WORKER
    assert page.locator("#login").count() == 0
    # the wrong password's 401 is the only error the console saw
    assert [e for e in errors if "401" not in e] == []


def test_phone_flow_accept_arrive_resolve_with_photo(browser: Browser,
                                                     center: RunningCenter, mqtt_broker,
                                                     tmp_path: Path) -> None:
    page, errors = new_page(browser, 375, 812, center=center, person_id=WORKER)
    trace = _record_traffic(page)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    card = new_ticket_card(page, mqtt_broker.port)
    ticket_id = card.get_attribute("data-ticket-id")
    # A new ticket announces itself: highlighted card, banner, the deadline counting down.
    expect(card).to_have_class(re.compile(r"\bis-new\b"))
    expect(page.locator("#notice-banner")).to_be_visible()
    assert page.evaluate("() => document.body.dataset.lastAnnounced") == ticket_id
    countdown = card.locator(".countdown")
    expect(countdown).to_be_visible()
    first = countdown.text_content()
    assert first
    expect(countdown).not_to_have_text(first, timeout=5_000)  # live

    card.locator(".card-camera").click()  # the card opens its detail sheet
    detail = page.locator("#ticket-detail .detail-sheet")
    expect(detail).to_be_visible()
    expect(page.locator('[data-testid="detail-coords"]')).to_contain_text(",")
    geo = page.locator('.nav-link[data-nav="geo"]').get_attribute("href")
    assert geo is not None and geo.startswith("geo:")
    assert "uri.amap.com" in (page.locator('.nav-link[data-nav="amap"]').get_attribute("href")
                              or "")
    assert "map.baidu.com" in (page.locator('.nav-link[data-nav="baidu"]').get_attribute("href")
                               or "")
    # Leaflet (npm, under /vendor) draws the map when installed; otherwise the text stays.
    leaflet = plain_http.get(center.url + "/vendor/leaflet/dist/leaflet-src.esm.js"
                             ).status_code == 200
    if leaflet:
        expect(page.locator('[data-testid="detail-map"]')).to_have_attribute("data-map", "leaflet")

    detail.locator('button[data-action="accept"]').click()
    _wait_state(center.url, ticket_id, "accepted")
    detail.locator('button[data-action="arrive"]').click()
    _wait_state(center.url, ticket_id, "handling")
    photo_input = page.locator('[data-testid="photo-input"]')
    assert photo_input.get_attribute("accept") == "image/*"
    assert photo_input.get_attribute("capture") == "environment"
    photo_input.set_input_files(str(_photo(tmp_path)))
    page.locator('[data-testid="resolve-note"]').fill("moved the bikes")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone-detail-375x812.png"))
    page.locator('.detail-resolve button[data-action="resolve"]').click()
    _wait_state(center.url, ticket_id, "handled")
    ticket = _ticket(center.url, ticket_id)
    resolve = [e for e in ticket["events"] if e["action"] == "resolve"]
    assert len(resolve) == 1 and resolve[0]["actor_id"] == WORKER
    assert resolve[0]["note"] == "moved the bikes"
    assert len(resolve[0]["attachments"]) == 1, "\n".join(trace)
    assert plain_http.get(center.url + resolve[0]["attachments"][0],
                          headers=_auth(center.url, WORKER)).content == tiny_jpeg()
    assert [e["action"] for e in ticket["events"]][-3:] == ["accept", "arrive", "resolve"]
    expect(page.locator("#pending-badge")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "phone-list-375x812.png"))
    assert errors == []


def test_a_photo_picked_while_a_live_update_redraws_the_sheet_is_kept(
        browser: Browser, center: RunningCenter, mqtt_broker, tmp_path: Path) -> None:
    """The camera or file picker hands its photo to the input it was opened from. Another alert
    at the place redraws the sheet meanwhile; the photo must still go out with the resolve."""
    page, errors = new_page(browser, 375, 812, center=center, person_id=WORKER)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    card = new_ticket_card(page, mqtt_broker.port)
    ticket_id = card.get_attribute("data-ticket-id")
    card.locator(".card-camera").click()
    sheet = page.locator("#ticket-detail .detail-sheet")
    expect(sheet).to_be_visible()
    before_accept = sheet.element_handle()
    sheet.locator('button[data-action="accept"]').click()
    _wait_state(center.url, ticket_id, "accepted")
    _detached(before_accept, 5, "the accept to redraw the sheet")
    expect(sheet).to_have_attribute("data-state", "accepted")
    expect(page.locator('[data-testid="photo-input"]')).to_be_attached()
    picker = page.locator('[data-testid="photo-input"]').element_handle()  # the picker opens
    old_sheet = sheet.element_handle()
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())  # a second alert at the same place: the ticket changes, redraws
    pub.close()
    wait_until(lambda: _ticket(center.url, ticket_id)["alert_count"] == 2, 10, "second alert")
    # The page has the second alert when its card counts it; the same render redrew the sheet.
    expect(card.locator(".card-facts dd").last).to_have_text("2", timeout=5_000)
    _detached(old_sheet, 5, "the second alert to redraw the sheet")
    assert picker.evaluate("(el) => el.isConnected"), "the redraw replaced the photo input"
    picker.set_input_files(str(_photo(tmp_path)))  # ... and the picker returns
    expect(page.locator(".detail-resolve .photo-preview")).to_have_count(1)
    page.locator('.detail-resolve button[data-action="resolve"]').click()
    _wait_state(center.url, ticket_id, "handled")
    resolve = [e for e in _ticket(center.url, ticket_id)["events"] if e["action"] == "resolve"]
    assert len(resolve) == 1 and len(resolve[0]["attachments"]) == 1
    assert errors == []


def test_a_shared_phone_keeps_each_workers_queue_to_their_own_login(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """Two workers share a phone. The one who logged out left an action queued under a login
    that no longer works (401): it waits for their next login, without holding back the
    logged-in worker's actions, and a fresh login re-signs only that worker's own entries."""
    page, errors = new_page(browser, 375, 812, center=center, person_id=WORKER)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    ticket_id = new_ticket_card(page, mqtt_broker.port).get_attribute("data-ticket-id")
    outbox = "await import('/static/phone-outbox.js')"
    page.evaluate(f"""async (id) => {{
        const o = {outbox};
        await o.enqueue({{ticket_id: Number(id), worker_id: 'w-0112', token: 'expired',
                          body: {{action: 'accept'}}}});
        // Queued by an older page, with the actor_id the center now refuses: still delivered.
        await o.enqueue({{ticket_id: Number(id), worker_id: '{WORKER}', token: 'old',
                          body: {{action: 'accept', actor_id: '{WORKER}'}}}});
        await o.retoken(localStorage.getItem('gridwatch.token'), '{WORKER}');
    }}""", ticket_id)
    tokens = page.evaluate(f"async () => ({outbox}).pending().then((es) => es.map((e) => e.token))")
    assert tokens[0] == "expired" and tokens[1] == center.token(WORKER)
    page.evaluate("window.gridwatchPhone.flushOutbox()")
    _wait_state(center.url, ticket_id, "accepted")
    left = page.evaluate(
        f"async () => ({outbox}).pending().then((es) => es.map((e) => e.worker_id))")
    assert left == ["w-0112"]
    assert [e for e in errors if "401" not in e] == []


class _Center:
    """A center on a fixed port that can be stopped and started again (same database)."""

    def __init__(self, settings: CenterSettings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.http.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from center.app import create_app

        app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.settings.http.port, log_level="warning",
            ws="websockets-sansio", lifespan="on", timeout_graceful_shutdown=2))
        server = self.server
        self.thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self.thread.start()
        thread = self.thread

        def started() -> bool:
            assert thread.is_alive(), "the center's thread died before it started"
            return server.started

        wait_until(started, 30, "center start")
        wait_until(lambda: plain_http.get(self.url + "/healthz").status_code == 200, 15, "healthz")
        set_known_passwords(self.settings.db.dsn)

    def token(self, person_id: str) -> str:
        return _auth(self.url, person_id)["Authorization"].removeprefix("Bearer ")

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive()


def test_actions_taken_while_the_center_is_stopped_arrive_after_it_restarts(
        browser: Browser, db_dsn: str, mqtt_broker, tmp_path: Path) -> None:
    settings = CenterSettings(
        db=DatabaseSettings(dsn=db_dsn, pool_min=1, pool_max=4),
        mqtt=MqttSettings(port=mqtt_broker.port, client_id=f"center-{uuid.uuid4().hex[:8]}"),
        http=HttpSettings(port=free_port()))
    center = _Center(settings)
    center.start()
    try:
        page, errors = new_page(browser, 375, 812, center=center, person_id=WORKER)
        page.goto(f"{center.url}/phone?worker_id={WORKER}")
        expect(page.locator("#ws-status")).to_have_attribute("data-state", "online",
                                                             timeout=10_000)
        _controlled(page)
        card = new_ticket_card(page, mqtt_broker.port)
        ticket_id = card.get_attribute("data-ticket-id")

        center.stop()
        expect(page.locator("#ws-status")).to_have_attribute("data-state", "offline",
                                                             timeout=10_000)
        badge = page.locator("#pending-badge")
        card.locator('button[data-action="accept"]').click()
        expect(badge).to_have_attribute("data-count", "1", timeout=5_000)
        expect(badge).to_be_visible()
        # The next step is offered at once, from the queued action.
        expect(card.locator('button[data-action="arrive"]')).to_be_visible()
        card.locator('button[data-action="arrive"]').click()
        expect(badge).to_have_attribute("data-count", "2")
        card.locator(".card-camera").click()
        page.locator('[data-testid="photo-input"]').set_input_files(str(_photo(tmp_path)))
        page.locator('.detail-resolve button[data-action="resolve"]').click()
        expect(badge).to_have_attribute("data-count", "3")
        expect(badge).to_contain_text("3")
        page.screenshot(path=str(ARTIFACTS / "phone-offline-375x812.png"))

        # Closing and starting the app again without the center: the shell comes from the
        # service worker, the list from this phone, the queue from IndexedDB.
        page.reload()
        expect(page.locator(f'.ticket-card[data-ticket-id="{ticket_id}"]')).to_be_visible()
        expect(badge).to_have_attribute("data-count", "3", timeout=5_000)
        assert _safe_state(center.url, ticket_id) is None  # nothing reached it

        center.start()
        expect(badge).to_be_hidden(timeout=40_000)
        _wait_state(center.url, ticket_id, "handled")
        ticket = _ticket(center.url, ticket_id)
        actions = [e["action"] for e in ticket["events"]]
        assert actions[-3:] == ["accept", "arrive", "resolve"]
        assert len(ticket["events"][-1]["attachments"]) == 1

        # Resending an action that already happened (its answer lost) is dropped on 409.
        result = page.evaluate("""async (id) => {
            const m = await import('/static/phone-outbox.js');
            await m.enqueue({ticket_id: Number(id), token: localStorage.getItem('gridwatch.token'),
                             body: {action: 'accept'}});
            const r = await m.flush();
            return {results: r.results, left: (await m.pending()).length};
        }""", ticket_id)
        assert result["left"] == 0 and result["results"][0]["status"] == 409
        assert [e["action"] for e in _ticket(center.url, ticket_id)["events"]] == actions
        assert [e for e in errors if "Failed to load resource" not in e
                and "ERR_CONNECTION_REFUSED" not in e and "WebSocket" not in e] == []
    finally:
        if center.thread is not None and center.thread.is_alive():
            center.stop()


def _safe_state(url: str, ticket_id: str | None) -> str | None:
    try:
        return plain_http.get(f"{url}/api/v1/tickets/{ticket_id}", timeout=1,
                              headers=_auth(url)).json()["state"]
    except httpx.HTTPError:
        return None


def _online_phone(browser: Browser, center: RunningCenter) -> tuple[Page, list[str]]:
    page, errors = new_page(browser, 375, 812, center=center, person_id=WORKER)
    page.goto(f"{center.url}/phone?worker_id={WORKER}")
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "online", timeout=10_000)
    return page, errors


def _act(center: RunningCenter, person: str, ticket_id: str | int, **body: Any) -> None:
    center.client(person).post(f"/api/v1/tickets/{ticket_id}/actions",
                               json=body).raise_for_status()


def test_a_reassigned_case_leaves_the_old_phone_and_says_to_whom(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """The operator gives w-0111's case to w-0112: w-0111's phone drops the card and says where
    it went; an accept queued there meanwhile is refused in words, not the API's English."""
    page, errors = _online_phone(browser, center)
    ticket_id = new_ticket_card(page, mqtt_broker.port).get_attribute("data-ticket-id")
    _act(center, "op-01", ticket_id, action="reassign", assignee_id="w-0112")
    expect(page.locator(f'.ticket-card[data-ticket-id="{ticket_id}"]')).to_have_count(0)
    gone = page.locator("#phone-messages .message-gone")
    expect(gone).to_have_count(1)
    expect(gone).to_contain_text(f"#{ticket_id}")
    expect(gone).to_contain_text("已改派给")
    expect(gone).to_contain_text("w-0112")
    # An accept this phone queued before the push reached it (the real outbox path).
    page.evaluate(f"""async (id) => {{
        const o = await import('/static/phone-outbox.js');
        await o.enqueue({{ticket_id: Number(id), worker_id: '{WORKER}',
                          token: localStorage.getItem('gridwatch.token'),
                          body: {{action: 'accept'}}}});
    }}""", ticket_id)
    page.evaluate("window.gridwatchPhone.flushOutbox()")
    refused = page.locator("#error-banner .error-item")
    expect(refused).to_have_count(1)
    expect(refused.locator(".error-text")).to_contain_text("此工单已不在您名下")
    expect(refused.locator(".error-text")).to_contain_text(f"#{ticket_id}")
    assert _ticket(center.url, ticket_id)["assignee_id"] == "w-0112"
    gone.locator(".banner-close").click()
    expect(page.locator("#phone-messages")).to_be_hidden()
    assert [e for e in errors if "403" not in e] == []


def test_a_residents_photo_words_and_contact_reach_the_phone(
        browser: Browser, center: RunningCenter) -> None:
    """A resident reports with a photo at w-0111's place: the card shows that photo (not
    无快照) and what they wrote; the detail sheet says where it came from and the contact."""
    page, errors = _online_phone(browser, center)
    cam = next(c for c in center.client("op-01").get("/api/v1/cameras").json()
               if c["id"] == "cam-vn-01")
    r = center.client().post("/api/v1/public/requests", data={
        "event_type": "0506", "lon": str(cam["lon"]), "lat": str(cam["lat"]),
        "description": "门口电动车堵住盲道", "contact": "13900000000"},
        files={"photo": ("p.jpg", tiny_jpeg(), "image/jpeg")})
    assert r.status_code == 201, r.text
    card = page.locator(".ticket-card[data-ticket-id]").first
    expect(card).to_be_visible(timeout=5_000)
    img = card.locator("img.card-img")
    expect(img).to_be_visible()
    expect_image_loaded(img)
    expect(card.locator(".snapshot-missing")).to_have_count(0)
    expect(card.locator(".card-camera")).to_contain_text("门口电动车堵住盲道")
    card.locator(".card-camera").click()
    sheet = page.locator("#ticket-detail .detail-sheet")
    expect(sheet).to_contain_text("居民上报")
    expect(sheet.locator(".detail-reporter")).to_contain_text("13900000000")
    assert errors == []


def test_a_case_sent_back_is_flagged_on_the_card_with_why(
        browser: Browser, center: RunningCenter, mqtt_broker) -> None:
    """Rework (the camera sees the violation again after the fix) and a case returned before
    are flagged on the card with the reason; neither looks like a fresh dispatch."""
    page, errors = _online_phone(browser, center)
    card = new_ticket_card(page, mqtt_broker.port)
    ticket_id = card.get_attribute("data-ticket-id")
    expect(card.locator('[data-testid="card-sent-back"]')).to_have_count(0)
    _act(center, WORKER, ticket_id, action="accept")
    _act(center, WORKER, ticket_id, action="resolve", note="moved the bikes")
    _wait_state(center.url, ticket_id, "handled")
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())  # a new violation at the handled place: the camera sends it back
    pub.close()
    _wait_state(center.url, ticket_id, "dispatched")
    card = page.locator(f'.ticket-card[data-ticket-id="{ticket_id}"]')
    flag = card.locator('[data-testid="card-sent-back"]')
    expect(flag).to_contain_text("返工")
    expect(flag).to_contain_text("摄像头再次发现违规")
    expect(card).to_have_class(re.compile(r"\bsent-back-rework\b"))
    expect(page.locator("#notice-banner")).to_contain_text(f"返工 #{ticket_id}")
    # Returned by the worker, dispatched back by the leader: flagged with the worker's reason.
    card.locator(".card-camera").click()
    page.locator('[data-testid="return-reason"]').fill("车主承诺自行挪走")
    page.locator('.detail-return button[data-action="return"]').click()
    expect(card).to_have_count(0)
    _wait_state(center.url, ticket_id, "registered")
    _act(center, "op-01", ticket_id, action="dispatch", assignee_id=WORKER)
    expect(card.locator('[data-testid="card-sent-back"]')).to_contain_text(
        "曾被退回：车主承诺自行挪走")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone-sent-back-375x812.png"))
    assert errors == []


def test_a_broadcast_is_shown_loudly_until_dismissed(browser: Browser,
                                                      center: RunningCenter) -> None:
    """An emergency task to every worker of the district (PUT /emergency with `broadcast`)."""
    page, errors = _online_phone(browser, center)
    r = center.client("op-01").put("/api/v1/emergency", json={
        "scope": "district", "active": True, "broadcast": "全体网格员到东门集合"})
    assert r.status_code == 200 and r.json()["notified"] > 0, r.text
    message = page.locator("#phone-messages .message-broadcast")
    expect(message).to_be_visible()
    expect(message).to_contain_text("紧急通知")
    expect(message).to_contain_text("全体网格员到东门集合")
    expect(message).to_contain_text("op-01")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone-broadcast-375x812.png"))
    message.locator(".banner-close").click()
    expect(page.locator("#phone-messages")).to_be_hidden()
    assert errors == []
