"""The canary's promotion gate: a candidate model that runs on a canary set of cameras is
promoted only when those cameras' false alarms per camera-day since the switch are no worse
than the same cameras' over as long a time before it (models/README.md, "The model loop").

The same cameras before and after, not canary against the rest: cameras differ far more from
each other (street, angle, traffic) than one camera from itself over two weeks. The rates come
from operators' verdicts (``center.store.verdicts.per_camera_day``), so the gate is only as
good as the judging: it refuses to decide before ``min_days`` have passed or while the canary
has no judged alert at all. Recall is not gated here: ``gridwatch eval`` gates it on the
labelled set before a candidate reaches a canary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from center.store.db import Connection
from center.store.verdicts import per_camera_day


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


async def _window(conn: Connection, groups: Sequence[tuple[datetime, Sequence[str]]],
                  now: datetime, after: bool) -> Window:
    """The cameras' verdicts after their switch (``after``) or over as long a time before it,
    each group of cameras with its own switch time, summed."""
    confirmed = false_alarms = 0
    days = 0.0
    starts, ends = [], []
    for switched_at, cameras in groups:
        length = now - switched_at
        start, end = (switched_at, now) if after else (switched_at - length, switched_at)
        rows = [r for r in await per_camera_day(conn, start, end, "UTC")
                if r.camera_id in cameras]
        confirmed += sum(r.confirmed for r in rows)
        false_alarms += sum(r.false_alarms for r in rows)
        days += len(cameras) * length / timedelta(days=1)
        starts.append(start)
        ends.append(end)
    return Window(min(starts), max(ends), confirmed, false_alarms, days)


async def decide(conn: Connection, cameras: Sequence[str], switched_at: datetime,
                 now: datetime, *, min_days: float = 7.0) -> Decision:
    """Promote or hold the candidate that went live on ``cameras`` at ``switched_at``."""
    return await decide_groups(conn, [(switched_at, cameras)], now, min_days=min_days)


async def decide_groups(conn: Connection,
                        groups: Sequence[tuple[datetime, Sequence[str]]], now: datetime, *,
                        min_days: float = 7.0) -> Decision:
    """``decide`` for cameras that switched at different times (a rollout's canary edges, each
    from when it confirmed the model): each camera is compared with itself over as long a time
    before its own switch, and the shortest time on the candidate decides ``min_days``."""
    if not groups or not all(cameras for _, cameras in groups):
        raise ValueError("name at least one canary camera")
    if any(switched_at >= now for switched_at, _ in groups):
        raise ValueError("the switch must lie in the past")
    length = now - max(switched_at for switched_at, _ in groups)
    before = await _window(conn, groups, now, after=False)
    after = await _window(conn, groups, now, after=True)
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
