"""Tests wait on conditions, not for fixed times (tests/waiting.py says why).

A new ``time.sleep(`` / ``asyncio.sleep(`` / Playwright ``wait_for_timeout(`` in tests/ fails
here unless it joins ``ALLOWED`` with its reason: a load generator's pace, a fault's duration,
a slow peer the test simulates, the poll interval of a deadline loop. Waiting for something to
happen is ``tests.waiting.wait_until`` (or an event, a queue, an ``expect``); showing that
something did NOT happen needs a positive witness first (a later input processed, a counter
past it), never a pause.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent

FIXED_WAIT = re.compile(r"(?<![\w.])(?:time\.|asyncio\.)?sleep\(|\.wait_for_timeout\(")

#: (file under tests/, the line's code without its comment) -> why that one fixed wait is right.
ALLOWED: dict[tuple[str, str], str] = {
    ("waiting.py", "time.sleep(POLL_S)"):
        "wait_until's own poll interval: the one polling loop of tests/",
    ("mqtt_helpers.py", "time.sleep(delay)"):
        "paces a storm's publisher (Publisher.send_all) at its configured rate",
    ("test_ingest_durability.py",
     "time.sleep(max(0.0, PG_OUTAGE_S - (time.monotonic() - down_at)))"):
        "the PostgreSQL outage's length is the drill's input",
    ("test_notify.py", "time.sleep(1.0)"):
        "the HTTP receiver plays a slow webhook (paths /slow...)",
    ("test_presence.py", "time.sleep(max(0.0, start + (i + 1) * 0.1 - time.monotonic()))"):
        "paces a phone at 10 positions a second: the rate the thinning is tested against",
    ("test_push_storm.py", "time.sleep(READ_COST_S)"):
        "the wall client plays a screen that takes this long per message",
    ("test_push_storm.py", "time.sleep(ahead)"):
        "paces the storm's publisher at its configured rate",
    ("test_account.py", "page.wait_for_timeout(100)"):
        "poll interval of a deadline loop: Playwright delivers the page's websocket frames"
        " only while the test is inside a Playwright call",
}


def fixed_waits(pattern: re.Pattern[str] = FIXED_WAIT) -> Counter[tuple[str, str]]:
    """Every fixed wait (or other ``pattern``) in tests/, as (file, line without its comment)
    with how often."""
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == Path(__file__).name:  # this file names the patterns it looks for
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0].strip()
            if pattern.search(code):
                found[(path.relative_to(TESTS).as_posix(), code)] += 1
    return found


def test_no_new_fixed_sleeps_in_tests() -> None:
    """Each allowed entry is one site: a second identical line in that file is new."""
    new = sorted(f"tests/{file}: {code} ({n}x)" for (file, code), n in fixed_waits().items()
                 if (file, code) not in ALLOWED or n > 1)
    assert not new, ("fixed waits in tests (wait on a condition with tests.waiting.wait_until"
                     " or a positive witness, or add the site to ALLOWED with its reason):\n"
                     + "\n".join(new))


def test_every_allowed_fixed_wait_still_exists() -> None:
    """A fixed wait that was removed leaves the allow-list too, so it cannot come back."""
    gone = sorted(f"tests/{file}: {code}" for file, code in ALLOWED
                  if (file, code) not in fixed_waits())
    assert not gone, "remove these from ALLOWED:\n" + "\n".join(gone)


#: Playwright's ``wait_for_function`` takes a JavaScript string, which the pages' CSP
#: (``script-src 'self'``) refuses to evaluate: waits use locators, ``expect`` or wait_until.
STRING_WAIT = re.compile(r"\.wait_for_function\(")


def test_no_string_wait_for_function_in_tests() -> None:
    found = sorted(f"tests/{file}: {code}" for file, code in fixed_waits(STRING_WAIT))
    assert not found, "wait with a locator, expect or tests.waiting.wait_until:\n" + "\n".join(
        found)


def test_the_pattern_sees_every_spelling() -> None:
    for code in ("time.sleep(1)", "await asyncio.sleep(0.5)", "sleep(2)",
                 "page.wait_for_timeout(300)"):
        assert FIXED_WAIT.search(code), code
    for code in ("wait_until(lambda: x, 5)", "stop.wait(2)", "await self._sleep(1)",
                 "clock.sleep_until(t)"):
        assert not FIXED_WAIT.search(code), code
