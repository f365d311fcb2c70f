"""The canary's promotion gate: a candidate model that runs on a canary set of cameras is
promoted only when those cameras' false alarms per camera-day since the switch are no worse
than the same cameras' over as long a time before it (models/README.md, "The model loop").

The same cameras before and after, not canary against the rest: cameras differ far more from
each other (street, angle, traffic) than one camera from itself over two weeks. The rates come
from operators' verdicts (``center.verdicts.per_camera_day``), so the gate is only as good as
the judging: it refuses to decide before ``min_days`` have passed or while the canary has no
judged alert at all. Recall is not gated here: ``gridwatch eval`` gates it on the labelled
set before a candidate reaches a canary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from center.verdicts import per_camera_day


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    confirmed: int
    false_alarms: int
    camera_days: float

    @property
    def false_alarms_per_camera_day(self) -> float:
        return self.false_alarms / self.camera_days


@dataclass(frozen=True)
class Decision:
    before: Window
    after: Window
    promote: bool
    why: str


async def _window(conn: AsyncConnection, cameras: Sequence[str], start: datetime,
                  end: datetime) -> Window:
    rows = [r for r in await per_camera_day(conn, start, end, "UTC") if r.camera_id in cameras]
    days = len(cameras) * (end - start) / timedelta(days=1)
    return Window(start, end, sum(r.confirmed for r in rows), sum(r.false_alarms for r in rows),
                  days)


async def decide(conn: AsyncConnection, cameras: Sequence[str], switched_at: datetime,
                 now: datetime, *, min_days: float = 7.0) -> Decision:
    """Promote or hold the candidate that went live on ``cameras`` at ``switched_at``."""
    if not cameras:
        raise ValueError("name at least one canary camera")
    if switched_at >= now:
        raise ValueError("the switch must lie in the past")
    length = now - switched_at
    before = await _window(conn, cameras, switched_at - length, switched_at)
    after = await _window(conn, cameras, switched_at, now)
    if length < timedelta(days=min_days):
        return Decision(before, after, False, f"hold: only {length} since the switch, "
                        f"{min_days:g} days needed")
    if not after.confirmed + after.false_alarms:
        return Decision(before, after, False, "hold: no judged alert of the canary cameras "
                        "since the switch")
    worse = after.false_alarms_per_camera_day > before.false_alarms_per_camera_day
    return Decision(before, after, not worse,
                    "hold: more false alarms per camera-day than before the switch" if worse
                    else "promote: false alarms per camera-day no worse than before the switch")
