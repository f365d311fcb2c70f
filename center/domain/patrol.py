"""Distances on the ground: great-circle metres between WGS-84 points, and how far a patrol
went along a track of phone fixes (docs/presence.md, docs/indicators.md).

A phone's fixes wander: a fix with a poor accuracy circle, or one that implies a speed no
walker or e-bike reaches (a jump to a cell tower's position and back), would add kilometres
that nobody walked. Both are left out, and the distance is summed over the fixes that remain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

EARTH_RADIUS_M = 6_371_008.8


class Fix(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def lon(self) -> float: ...
    @property
    def lat(self) -> float: ...
    @property
    def accuracy_m(self) -> float | None: ...


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; good to well under a metre at town scale)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def patrol_m(fixes: Iterable[Fix], *, max_accuracy_m: float, max_speed_mps: float) -> float:
    """Metres along ``fixes`` (oldest first), leaving out inaccurate fixes and jumps: a step to
    a fix faster than ``max_speed_mps`` from the last counted one is skipped (the next good fix
    is measured from the last counted one again)."""
    total = 0.0
    last: Fix | None = None
    for fix in fixes:
        if fix.accuracy_m is not None and fix.accuracy_m > max_accuracy_m:
            continue
        if last is not None:
            step = haversine_m(last.lon, last.lat, fix.lon, fix.lat)
            seconds = (fix.at - last.at).total_seconds()
            if seconds <= 0 or step / seconds > max_speed_mps:
                continue
            total += step
        last = fix
    return total
