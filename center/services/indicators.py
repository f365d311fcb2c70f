"""Indicators: closure rate, on-time closure rate, rework rate, times and satisfaction, per
district, grid, micro-grid, worker, department or event type and per period, and the grid
ranking. Definitions are in docs/indicators.md; this module is their one implementation.

Every figure is computed from ``tickets`` and the ``ticket_events`` ledger in one plain-SQL
query (no TimescaleDB needed; ``center.store.indicators``). Each ticket contributes *facts*
(registered at, settled at, completed at, each handling, each rework, each rating...), and a
fact counts in the period its time falls in, as of ``now`` (a deadline still in the future is
not due yet). Periods are calendar days, ISO weeks (Monday first), months and quarters in the
district's time zone.

Example::

    async with pool.connection() as conn:
        rows = await indicators.compute(conn, ctx, level="grid",
                                        window=period_window("month", date(2026, 11, 1), tz))
    rows[0].closure_rate  # 0.9372 for 911 closed out of 972 due
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from center.domain.context import Context
from center.domain.ticket_states import REWORK_ACTIONS
from center.store import indicators
from center.store.db import Connection

Level = Literal["district", "grid", "micro_grid", "worker", "department", "event_type"]
Period = Literal["day", "week", "month", "quarter"]
LEVELS: tuple[Level, ...] = ("district", "grid", "micro_grid", "worker", "department",
                             "event_type")
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter")
#: Ledger actions that are one handling attempt (the denominator of the rework rate).
HANDLED_ACTIONS = frozenset({"resolve"})
#: The most buckets one series query may return per group (a day-by-day year and then some).
MAX_BUCKETS = 400


class IndicatorError(ValueError):
    """Bad parameters (an empty window, too many buckets...); the message says which."""


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end); with ``period`` set, it is cut into that period's
    calendar buckets (a series), otherwise it is one bucket."""

    start: datetime
    end: datetime
    tz: ZoneInfo
    period: Period | None = None


@dataclass(frozen=True)
class IndicatorRow:
    period_start: datetime
    period_end: datetime
    level: str
    key: str | None          # None: tickets with no grid / micro-grid / assignee / department
    name: str | None
    registered: int          # tickets opened in the period (voided ones included)
    due: int                 # tickets due to close: settled in the period (see docs)
    closed: int              # of those, completed (verified) by now, on time or late
    on_time: int             # of those, completed by their deadline
    closure_rate: float | None       # closed / due
    on_time_rate: float | None       # on_time / due
    closed_in_period: int    # tickets completed in the period, whatever their deadline
    voided: int              # tickets voided in the period (false alarms, out of area)
    handled: int             # handling attempts ("resolve") in the period
    rework: int              # rework actions (verification failed) in the period
    rework_rate: float | None        # rework / handled
    dispatch_min: float | None       # mean minutes, registration -> first dispatch
    accept_min: float | None         # mean minutes, registration -> first acceptance
    close_min: float | None          # mean minutes, registration -> completion
    rated: int               # satisfaction ratings given in the period
    satisfaction: float | None       # mean rating (1-5)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["period_start"] = self.period_start.isoformat()
        d["period_end"] = self.period_end.isoformat()
        return d


@dataclass(frozen=True)
class GridRank:
    rank: int
    row: IndicatorRow

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, **self.row.as_dict()}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IndicatorRow))


# --- periods ----------------------------------------------------------------------------------

def _period_start(day: date, period: Period) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def _next_start(start: date, period: Period) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    months = 1 if period == "month" else 3
    y, m = divmod(start.month - 1 + months, 12)
    return start.replace(year=start.year + y, month=m + 1, day=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def period_window(period: Period, on: date, tz: ZoneInfo) -> Window:
    """The calendar day / ISO week / month / quarter holding ``on``, as one bucket."""
    start = _period_start(on, period)
    return Window(_midnight(start, tz), _midnight(_next_start(start, period), tz), tz)


def bucket_end(start: datetime, period: Period | None, window: Window) -> datetime:
    if period is None:
        return window.end
    local = start.astimezone(window.tz)
    nxt = _midnight(_next_start(_period_start(local.date(), period), period), window.tz)
    return min(nxt, window.end)


def check_window(window: Window) -> None:
    if window.end <= window.start:
        raise IndicatorError("`to` must be after `from`")
    if window.period is not None:
        span = (window.end - window.start).days
        per = {"day": 1, "week": 7, "month": 28, "quarter": 90}[window.period]
        if span // per + 1 > MAX_BUCKETS:
            raise IndicatorError(
                f"too many {window.period} buckets between `from` and `to` (at most "
                f"{MAX_BUCKETS}); use a longer period or a shorter range")


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def name_of(ctx: Context, level: str, key: str | None) -> str | None:
    d = ctx.district
    if key is None:
        return None
    if level == "district":
        return d.name
    if level in ("grid", "micro_grid"):
        area = d.areas.get(key)
        return area.name if area else key
    if level == "worker":
        person = d.people.get(key)
        return person.name if person else key
    if level == "department":
        dept = d.departments.get(key)
        return dept.name if dept else key
    et = ctx.event_types.get(key)
    return et.zh if et else key


async def compute(conn: Connection, ctx: Context, *, level: Level,
                  window: Window) -> list[IndicatorRow]:
    """Indicator rows for every group with any activity in the window, bucket by bucket."""
    if level not in LEVELS:
        raise IndicatorError(f"unknown level {level!r} (use {', '.join(LEVELS)})")
    check_window(window)
    departments: list[tuple[str, str]] = []
    if level == "department":
        departments = [(dept.id, code) for dept in ctx.district.departments.values()
                       if dept.active for code in dept.event_types]
    rows = await indicators.counts(
        conn, level=level, district_id=ctx.district.id, start=window.start, end=window.end,
        now=ctx.clock.now(), period=window.period, tz=window.tz.key,
        handled=sorted(HANDLED_ACTIONS), rework=sorted(REWORK_ACTIONS),
        departments=departments)
    out = []
    for r in rows:
        start = max(r["bucket"], window.start)
        out.append(IndicatorRow(
            period_start=start.astimezone(window.tz),
            period_end=bucket_end(r["bucket"], window.period, window),
            level=level, key=r["key"], name=name_of(ctx, level, r["key"]),
            registered=r["registered"], due=r["due"], closed=r["closed"], on_time=r["on_time"],
            closure_rate=_rate(r["closed"], r["due"]),
            on_time_rate=_rate(r["on_time"], r["due"]),
            closed_in_period=r["closed_in_period"], voided=r["voided"],
            handled=r["handled"], rework=r["rework"],
            rework_rate=_rate(r["rework"], r["handled"]),
            dispatch_min=_mean(r["dispatch_min"]), accept_min=_mean(r["accept_min"]),
            close_min=_mean(r["close_min"]), rated=r["rated"],
            satisfaction=_mean(r["satisfaction"], 2)))
    return out


# --- ranking ----------------------------------------------------------------------------------

def _rank_key(row: IndicatorRow) -> tuple[bool, float, float, int]:
    return (row.closure_rate is None, -(row.closure_rate or 0.0), -(row.on_time_rate or 0.0),
            -row.due)


def rank_grids(rows: Iterable[IndicatorRow]) -> list[GridRank]:
    """Grids best first: higher closure rate, then higher on-time closure rate, then more cases
    due (volume); grids with nothing due come last. Equal on all three share a rank (1, 2, 2,
    4), listed by grid id."""
    ordered = sorted(rows, key=lambda r: (_rank_key(r), r.key or ""))
    ranked: list[GridRank] = []
    for i, row in enumerate(ordered):
        if ranked and _rank_key(ranked[-1].row) == _rank_key(row):
            ranked.append(GridRank(ranked[-1].rank, row))
        else:
            ranked.append(GridRank(i + 1, row))
    return ranked


async def grid_ranking(conn: Connection, ctx: Context, window: Window) -> list[GridRank]:
    """Every active grid of the district ranked over one window (grids without cases too)."""
    if window.period is not None:
        raise IndicatorError("a ranking covers one window: give a period or from/to, not both")
    rows = {r.key: r for r in await compute(conn, ctx, level="grid", window=window)}
    empty = IndicatorRow(window.start, window.end, "grid", None, None, 0, 0, 0, 0, None, None,
                         0, 0, 0, 0, None, None, None, None, 0, None)
    grids = [a for a in ctx.district.areas.values() if a.level == "grid" and a.active]
    return rank_grids(rows.get(a.id) or replace(empty, key=a.id, name=a.name) for a in grids)
