"""Waiting in tests: on a condition with a deadline, never for a fixed time.

A fixed pause is too long on a quiet machine and too short on a busy one; a pause followed by
"nothing happened" passes untested when the system was merely slow. So a test waits for what
it needs (a row, a message, a counter) and fails with what it was waiting for. When a test must
show that something did NOT happen, it first waits for a positive witness that the system has
processed the input (a later message handled in order, a counter past it), then asserts the
absence. ``tests/test_test_hygiene.py`` keeps new fixed sleeps out of tests/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is looked at again: short against the deadlines tests use, long
#: enough not to load a shared 2-core machine (this is the one polling sleep of tests/).
POLL_S = 0.05


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition"
               ) -> T:
    """Call ``predicate`` until it returns something truthy, and return that; after
    ``timeout`` seconds raise an AssertionError naming ``what``. The predicate may raise to
    give up early (e.g. when the thread it waits on died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_S)

