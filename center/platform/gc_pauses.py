"""Keeping the garbage collector's full passes short in a running center.

CPython's oldest-generation collection walks every object that has survived long enough, and
holds the GIL (so the event loop) while it does: in a center that had just started, with its
district, views, psycopg, FastAPI and pydantic loaded, that is some 200,000 objects, and each
pass stopped the loop for 150-240 ms on the 2-core bench box at 1,000 alerts/s, a dozen times
in two minutes (docs/performance.md "Garbage collection pauses"): the tail of the alert -> phone
latency. Almost none of those objects ever becomes garbage, so once the center has started
they are moved out of the collector's sight (``gc.freeze``); the passes then walk only what
was made since. They stay collectable by reference counting, and at shutdown they are handed
back (``gc.unfreeze``), so a process that starts centers again and again (the tests) does not
keep the cycles of the old ones.
"""

from __future__ import annotations

import gc

#: Allocations between youngest-generation passes (CPython's default is 700). At 1,000
#: alerts/s a pass ran every millisecond or two and promoted whatever was in flight (a batch's
#: alerts, queued messages, pending sends) towards the oldest generation, whose passes it
#: then triggered every few seconds; ten thousand lets in-flight objects die young first.
YOUNG_THRESHOLD = 10_000
_DEFAULT_THRESHOLDS = gc.get_threshold()


def freeze_startup_heap() -> int:
    """Freeze what exists now; returns how many objects the collector no longer walks. (No
    collection first: the little cyclic garbage of starting up is kept until ``thaw``, and a
    start is not made slower by a full pass.) Young passes from now on every
    ``YOUNG_THRESHOLD`` allocations."""
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    gc.unfreeze()
    gc.set_threshold(*_DEFAULT_THRESHOLDS)
