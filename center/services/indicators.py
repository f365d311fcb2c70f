"""Indicators: closure rate, on-time closure rate, rework rate, times and satisfaction, per
district, grid, micro-grid, worker, department or event type and per period, and the grid
ranking. Definitions are in docs/indicators.md; this module is their one implementation.

Every figure is computed from ``tickets`` and the ``ticket_events`` ledger in one plain-SQL
query (no TimescaleDB needed). Each ticket contributes *facts* (registered at, settled at,
completed at, each handling, each rework, each rating...), and a fact counts in the period its
time falls in, as of ``now`` (a deadline still in the future is not due yet). Periods are
calendar days, ISO weeks (Monday first), months and quarters in the district's time zone.

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

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from center.domain.context import Context
from center.domain.ticket_states import REWORK_ACTIONS

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


# --- the query --------------------------------------------------------------------------------

_KEYS: dict[str, str] = {
    "district": "%(district)s::text",
    "grid": "t.grid_id",
    "micro_grid": "t.micro_grid_id",
    "worker": "t.assignee_id",
    "department": "d.department_id",
    "event_type": "t.event_type",
}

_SQL = """
WITH tk AS (
    SELECT t.id, {key} AS key, t.opened_at, t.due_at, t.state, t.closed_at, t.satisfaction,
           CASE WHEN t.state <> 'void' THEN t.verified_at END AS done_at
    FROM tickets t {join}
    WHERE t.opened_at < %(end)s AND (t.closed_at IS NULL OR t.closed_at >= %(start)s)
),
ev AS (
    SELECT e.ticket_id, e.action, e.at FROM ticket_events e
    WHERE e.ticket_id IN (SELECT id FROM tk)
      AND (e.action IN ('dispatch', 'accept', 'rate') OR e.action = ANY(%(handled)s)
           OR e.action = ANY(%(rework)s))
),
firsts AS (
    SELECT ticket_id, min(at) FILTER (WHERE action = 'dispatch') AS dispatched,
           min(at) FILTER (WHERE action = 'accept') AS accepted
    FROM ev GROUP BY ticket_id
),
settled AS (
    SELECT key, done_at, due_at,
           CASE WHEN done_at IS NOT NULL AND (due_at IS NULL OR done_at <= due_at)
                THEN done_at ELSE due_at END AS settle_at
    FROM tk WHERE state <> 'void'
),
facts (key, at, metric, value) AS (
    SELECT key, opened_at, 'registered', NULL::double precision FROM tk
    UNION ALL
    SELECT key, closed_at, 'voided', NULL FROM tk WHERE state = 'void'
    UNION ALL
    SELECT s.key, s.settle_at, v.metric, NULL FROM settled s
    CROSS JOIN LATERAL (VALUES
        ('due', true),
        ('closed', s.done_at IS NOT NULL),
        ('on_time', s.done_at IS NOT NULL AND (s.due_at IS NULL OR s.done_at <= s.due_at))
    ) AS v (metric, counts)
    WHERE v.counts
    UNION ALL
    SELECT key, done_at, 'completed', extract(epoch FROM done_at - opened_at)::float8 / 60
    FROM tk WHERE done_at IS NOT NULL
    UNION ALL
    SELECT tk.key, f.dispatched, 'dispatched',
           extract(epoch FROM f.dispatched - tk.opened_at)::float8 / 60
    FROM tk JOIN firsts f ON f.ticket_id = tk.id WHERE f.dispatched IS NOT NULL
    UNION ALL
    SELECT tk.key, f.accepted, 'accepted',
           extract(epoch FROM f.accepted - tk.opened_at)::float8 / 60
    FROM tk JOIN firsts f ON f.ticket_id = tk.id WHERE f.accepted IS NOT NULL
    UNION ALL
    SELECT tk.key, ev.at,
           CASE WHEN ev.action = ANY(%(rework)s) THEN 'rework' ELSE 'handled' END, NULL
    FROM tk JOIN ev ON ev.ticket_id = tk.id
    WHERE ev.action = ANY(%(handled)s) OR ev.action = ANY(%(rework)s)
    UNION ALL
    SELECT tk.key, ev.at, 'rated', tk.satisfaction::float8
    FROM tk JOIN ev ON ev.ticket_id = tk.id
    WHERE ev.action = 'rate' AND tk.satisfaction IS NOT NULL
)
SELECT {bucket} AS bucket, key,
       count(*) FILTER (WHERE metric = 'registered') AS registered,
       count(*) FILTER (WHERE metric = 'due') AS due,
       count(*) FILTER (WHERE metric = 'closed') AS closed,
       count(*) FILTER (WHERE metric = 'on_time') AS on_time,
       count(*) FILTER (WHERE metric = 'completed') AS closed_in_period,
       count(*) FILTER (WHERE metric = 'voided') AS voided,
       count(*) FILTER (WHERE metric = 'handled') AS handled,
       count(*) FILTER (WHERE metric = 'rework') AS rework,
       avg(value) FILTER (WHERE metric = 'dispatched') AS dispatch_min,
       avg(value) FILTER (WHERE metric = 'accepted') AS accept_min,
       avg(value) FILTER (WHERE metric = 'completed') AS close_min,
       count(*) FILTER (WHERE metric = 'rated') AS rated,
       avg(value) FILTER (WHERE metric = 'rated') AS satisfaction
FROM facts
WHERE at >= %(start)s AND at < %(end)s AND at <= %(now)s
GROUP BY 1, 2
ORDER BY 1, 2 NULLS LAST
"""


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


async def compute(conn: AsyncConnection, ctx: Context, *, level: Level,
                  window: Window) -> list[IndicatorRow]:
    """Indicator rows for every group with any activity in the window, bucket by bucket."""
    if level not in _KEYS:
        raise IndicatorError(f"unknown level {level!r} (use {', '.join(LEVELS)})")
    check_window(window)
    join = ""
    dept_ids: list[str] = []
    dept_types: list[str] = []
    if level == "department":
        for dept in ctx.district.departments.values():
            if dept.active:
                for code in dept.event_types:
                    dept_ids.append(dept.id)
                    dept_types.append(code)
        join = ("LEFT JOIN unnest(%(dept_ids)s::text[], %(dept_types)s::text[])"
                " AS d (department_id, event_type) ON d.event_type = t.event_type")
    bucket = ("date_trunc(%(unit)s, at, %(tz)s)" if window.period is not None
              else "%(start)s::timestamptz")
    params = {"district": ctx.district.id, "start": window.start, "end": window.end,
              "now": ctx.clock.now(), "unit": window.period, "tz": window.tz.key,
              "handled": sorted(HANDLED_ACTIONS), "rework": sorted(REWORK_ACTIONS),
              "dept_ids": dept_ids, "dept_types": dept_types}
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SQL.format(key=_KEYS[level], join=join, bucket=bucket), params)
    out = []
    for r in await cur.fetchall():
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


async def grid_ranking(conn: AsyncConnection, ctx: Context, window: Window) -> list[GridRank]:
    """Every active grid of the district ranked over one window (grids without cases too)."""
    if window.period is not None:
        raise IndicatorError("a ranking covers one window: give a period or from/to, not both")
    rows = {r.key: r for r in await compute(conn, ctx, level="grid", window=window)}
    empty = IndicatorRow(window.start, window.end, "grid", None, None, 0, 0, 0, 0, None, None,
                         0, 0, 0, 0, None, None, None, None, 0, None)
    grids = [a for a in ctx.district.areas.values() if a.level == "grid" and a.active]
    return rank_grids(rows.get(a.id) or replace(empty, key=a.id, name=a.name) for a in grids)


# --- camera discoveries (alerts_daily: a continuous aggregate on TimescaleDB, else a view) ---

@dataclass(frozen=True)
class AlertDay:
    day: datetime
    camera_id: str
    event_type: str
    alerts: int
    messages: int


async def alerts_daily(conn: AsyncConnection, start: datetime, end: datetime) -> list[AlertDay]:
    """Camera alerts started per UTC day, camera and event type (``alerts_daily``)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT day, camera_id, event_type, alerts, messages FROM alerts_daily"
        " WHERE day >= %s AND day < %s ORDER BY day, camera_id, event_type", (start, end))
    return [AlertDay(**r) for r in await cur.fetchall()]


# --- cases per hour (the wall screen's "last 24 h" chart) ------------------------------------

@dataclass(frozen=True)
class HourCount:
    hour: datetime  # start of the hour (UTC)
    event_type: str
    cases: int


async def cases_hourly(conn: AsyncConnection, start: datetime, end: datetime) -> list[HourCount]:
    """Cases registered per hour and event type in [start, end), every source counted."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT date_trunc('hour', opened_at, 'UTC') AS hour, event_type, count(*) AS cases"
        " FROM tickets WHERE opened_at >= %s AND opened_at < %s"
        " GROUP BY 1, 2 ORDER BY 1, 2", (start, end))
    return [HourCount(**r) for r in await cur.fetchall()]
