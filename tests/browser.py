"""A Chromium for page tests (Debian's, driven by Playwright) and a page that records errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    expect,
    sync_playwright,
)

from tests.mqtt_helpers import Publisher, make_alert, wait_until

CHROMIUM = Path("/usr/lib/chromium/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (make test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def log_in(context: BrowserContext | Page, center: Any, person_id: str) -> None:
    """Log the pages of a context in as a person: their bearer token (from the real login API)
    is in localStorage before any page script runs, as after the login form."""
    token = json.dumps(center.token(person_id))
    person = json.dumps(person_id)
    context.add_init_script(f"localStorage.setItem('gridwatch.token', {token});"
                            f" localStorage.setItem('gridwatch.login.person', {person});")


def _with_url(message: ConsoleMessage) -> str:
    """A console error with the address it is about: Chromium's "Failed to load resource"
    names only the status, and a failure in CI must say which request it was."""
    url = message.location.get("url", "")
    return f"{message.text} ({url})" if url else message.text


def new_page(browser: Browser, width: int, height: int, *, center: Any = None,
             person_id: str | None = None) -> tuple[Page, list[str]]:
    """A page in its own context (own storage and service workers) and its console errors;
    logged in as ``person_id`` of ``center`` when given."""
    context = browser.new_context(viewport={"width": width, "height": height})
    if center is not None and person_id is not None:
        log_in(context, center, person_id)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(_with_url(m)) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def new_ticket_card(page: Page, broker_port: int) -> Locator:
    """Publish an alert at the demo place (cam-vn-01, worker w-0111) to the broker on
    ``broker_port`` and return its ticket's card once the phone page shows it."""
    pub = Publisher(broker_port)
    pub.alert(make_alert())
    pub.close()
    card = page.locator(".ticket-card[data-ticket-id]").first
    expect(card).to_be_visible(timeout=5_000)
    return card


def expect_image_loaded(img: Locator, timeout: float = 5.0) -> None:
    """Wait until an ``<img>`` has loaded a picture (not a broken or missing one). Polled from
    here: ``page.wait_for_function`` evaluates a string, which the pages' CSP forbids."""
    expect(img).to_be_visible(timeout=timeout * 1000)
    wait_until(lambda: img.evaluate("(el) => el.complete && el.naturalWidth > 0"), timeout,
               "the picture to load")
