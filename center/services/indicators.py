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

from shapely.geometry import shape

from center.domain.context import Context
from center.domain.ticket_states import REWORK_ACTIONS
from center.store import indicators, presence
from center.store.db import Connection

#: ``source``: where cases came from (camera, patrol, video_patrol, resident, open311), so a
#: video patrol's cases are counted and closed like, and apart from, the others.
Level = Literal["district", "grid", "micro_grid", "worker", "department", "event_type",
                "source"]
Period = Literal["day", "week", "month", "quarter"]
LEVELS: tuple[Level, ...] = ("district", "grid", "micro_grid", "worker", "department",
                             "event_type", "source")
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
    if level == "source":
        return key  # pages name sources from the vocabulary (GET /api/v1/vocabulary)
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


# --- headline figures: today, now, and period over period -------------------------------------

@dataclass(frozen=True)
class Figures:
    """The headline counts of one window, summed over the groups in scope (counts add up
    across groups, see docs/indicators.md), with their rates recomputed from the sums."""

    start: datetime
    end: datetime            # the window's end, or now when the window is still running
    registered: int
    due: int
    closed: int
    on_time: int
    closed_in_period: int
    voided: int

    @property
    def closure_rate(self) -> float | None:
        return _rate(self.closed, self.due)

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.on_time, self.due)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                **{k: getattr(self, k) for k in HEADLINE_COUNTS},
                "closure_rate": self.closure_rate, "on_time_rate": self.on_time_rate}


#: The counts a trend compares (the rates are compared too, in rate points).
HEADLINE_COUNTS = ("registered", "due", "closed", "on_time", "closed_in_period", "voided")
HEADLINE_RATES = ("closure_rate", "on_time_rate")
TREND_PERIODS: tuple[Period, ...] = ("week", "month")


@dataclass(frozen=True)
class Trend:
    """This period so far against the same stretch of the previous one (this week Monday
    00:00 to now against last week Monday 00:00 to the same time a week ago): comparing a
    part-week with a whole week would make every Monday look like a collapse."""

    period: Period
    current: Figures
    previous: Figures

    def as_dict(self) -> dict[str, Any]:
        cur, prev = self.current, self.previous
        change: dict[str, int | float | None] = {
            k: getattr(cur, k) - getattr(prev, k) for k in HEADLINE_COUNTS}
        ratio = {k: _rate(getattr(cur, k) - getattr(prev, k), getattr(prev, k))
                 for k in HEADLINE_COUNTS}
        for k in HEADLINE_RATES:
            a, b = getattr(cur, k), getattr(prev, k)
            change[k] = None if a is None or b is None else round(a - b, 4)
        return {"period": self.period, "current": cur.as_dict(), "previous": prev.as_dict(),
                "change": change, "change_ratio": ratio}


@dataclass(frozen=True)
class Headline:
    as_of: datetime
    today: Figures
    open_now: indicators.OpenNow
    trends: tuple[Trend, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "today": self.today.as_dict(),
                "now": {"open": self.open_now.open, "overdue": self.open_now.overdue},
                "trends": {t.period: t.as_dict() for t in self.trends}}


async def _figures(conn: Connection, ctx: Context, start: datetime, end: datetime,
                   tz: ZoneInfo, micro_grids: frozenset[str] | None) -> Figures:
    now = ctx.clock.now()
    shown_end = min(end, max(now, start)).astimezone(tz)
    if end <= start:
        return Figures(start.astimezone(tz), shown_end, 0, 0, 0, 0, 0, 0)
    level: Level = "district" if micro_grids is None else "micro_grid"
    rows = [r for r in await compute(conn, ctx, level=level, window=Window(start, end, tz))
            if micro_grids is None or r.key in micro_grids]
    return Figures(start.astimezone(tz), shown_end, *(sum(getattr(r, k) for r in rows)
                                       for k in HEADLINE_COUNTS))


async def headline(conn: Connection, ctx: Context, tz: ZoneInfo,
                   micro_grids: frozenset[str] | None = None) -> Headline:
    """What the wall's and the leader's KPI tiles show, each named by what it counts: today's
    figures (so far), the cases open and overdue now, and week-over-week and month-over-month
    trends. ``micro_grids`` scopes it to a leader's area (None: the district)."""
    now = ctx.clock.now()
    today = period_window("day", now.astimezone(tz).date(), tz)
    trends = []
    for period in TREND_PERIODS:
        cur = period_window(period, now.astimezone(tz).date(), tz)
        prev = period_window(period, (cur.start - timedelta(days=1)).date(), tz)
        prev_end = min(prev.start + (now - cur.start), cur.start)
        trends.append(Trend(period,
                            await _figures(conn, ctx, cur.start, cur.end, tz, micro_grids),
                            await _figures(conn, ctx, prev.start, prev_end, tz, micro_grids)))
    return Headline(now, await _figures(conn, ctx, today.start, today.end, tz, micro_grids),
                    await indicators.open_now(conn, now, sorted(micro_grids)
                                              if micro_grids is not None else None),
                    tuple(trends))


# --- hotspots -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hotspot:
    """Cases at one place over a window: a camera (at the camera), or hand reports (patrol,
    resident) in one 0.001° square (about 100 m, at the square's rounded corner)."""

    kind: Literal["camera", "report"]
    key: str                 # camera id, or "lon,lat" of the square
    name: str | None
    micro_grid_id: str | None
    lon: float
    lat: float
    cases: int               # non-void cases opened in the window
    open: int                # of those, still open now


@dataclass(frozen=True)
class AreaCount:
    """Cases per micro-grid (every source), at a point inside the micro-grid's polygon."""

    id: str | None
    name: str | None
    grid_id: str | None
    lon: float | None
    lat: float | None
    cases: int
    open: int


async def hotspots(conn: Connection, ctx: Context, window: Window,
                   micro_grids: frozenset[str] | None = None
                   ) -> tuple[list[Hotspot], list[AreaCount]]:
    """Cases per place and per micro-grid over the window, most cases first. A camera that
    has left the district file has no position and is left out of the places (its cases
    still count in its micro-grid)."""
    check_window(window)
    d = ctx.district
    rows = await indicators.cases_per_place(
        conn, window.start, window.end, sorted(micro_grids) if micro_grids is not None else None)
    places: dict[str, Hotspot] = {}
    areas: dict[str | None, list[int]] = {}
    for r in rows:
        total = areas.setdefault(r.micro_grid_id, [0, 0])
        total[0] += r.cases
        total[1] += r.open
        if r.camera_id is not None:
            cam = d.cameras.get(r.camera_id)
            if cam is None:
                continue
            spot = Hotspot("camera", cam.id, cam.name or cam.id, r.micro_grid_id, cam.lon,
                           cam.lat, r.cases, r.open)
        elif r.lon is not None and r.lat is not None:
            spot = Hotspot("report", f"{r.lon:.3f},{r.lat:.3f}", None, r.micro_grid_id, r.lon,
                           r.lat, r.cases, r.open)
        else:
            continue
        had = places.get(spot.key)
        places[spot.key] = spot if had is None else replace(
            had, cases=had.cases + spot.cases, open=had.open + spot.open)
    out = []
    for aid, (cases, open_) in areas.items():
        area = d.areas.get(aid or "")
        point = shape(area.geometry).representative_point() if area else None
        out.append(AreaCount(aid, area.name if area else None, area.parent if area else None,
                             point.x if point else None, point.y if point else None,
                             cases, open_))
    by_cases = sorted(places.values(), key=lambda s: (-s.cases, s.key))
    return by_cases, sorted(out, key=lambda a: (-a.cases, a.id or "~"))


#: The presence CSV's columns: one row per local day and worker (docs/indicators.md,
#: "Presence").
PRESENCE_COLUMNS: tuple[str, ...] = ("day", "person_id", "name", "micro_grid_id",
                                     "on_duty_min", "patrol_km", "fixes")


@dataclass(frozen=True)
class PresenceDay:
    """One worker's day: minutes on duty (duty periods clipped to the local day and to now)
    and patrol kilometres (``center.store.presence.patrol_per_day``)."""

    day: date
    person_id: str
    name: str | None
    micro_grid_id: str | None
    on_duty_min: float
    patrol_km: float
    fixes: int


async def presence_days(conn: Connection, ctx: Context, window: Window, *,
                        max_accuracy_m: float, max_speed_mps: float) -> list[PresenceDay]:
    """On-duty time and patrol distance per local day and person over the window, up to now."""
    tz = window.tz
    now = ctx.clock.now()
    end = min(window.end, now)
    seconds: dict[tuple[date, str], float] = {}
    for p in await presence.periods_between(conn, window.start, end):
        at, until = max(p.started_at, window.start), min(p.ended_at or now, end)
        while at < until:  # cut at each local midnight
            day = at.astimezone(tz).date()
            cut = min(until, _midnight(day + timedelta(days=1), tz))
            seconds[(day, p.person_id)] = (seconds.get((day, p.person_id), 0.0)
                                           + (cut - at).total_seconds())
            at = cut
    patrol = {(r.day, r.person_id): r for r in await presence.patrol_per_day(
        conn, window.start, end, tz.key, max_accuracy_m=max_accuracy_m,
        max_speed_mps=max_speed_mps)}
    people = ctx.district.people
    rows = []
    for day, person_id in sorted(set(seconds) | set(patrol)):
        person = people.get(person_id)
        walked = patrol.get((day, person_id))
        rows.append(PresenceDay(day, person_id, person.name if person else None,
                                person.micro_grid if person else None,
                                round(seconds.get((day, person_id), 0.0) / 60, 1),
                                round(walked.metres / 1000, 3) if walked else 0.0,
                                walked.fixes if walked else 0))
    return rows
