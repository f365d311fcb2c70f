"""Indicators and grid rankings (docs/indicators.md), as JSON or as a CSV file for Excel."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from center.api.deps import Actor, Center, CenterDep, ImageActor
from center.api.presence import PresenceDep
from center.services import indicators, verdicts
from center.services.auth import Principal
from center.services.indicators import COLUMNS, IndicatorRow, Level, Period, Window
from center.services.presence import NotAllowed
from center.store.db import Pool
from center.store.indicators import alerts_per_day, cases_per_hour
from center.store.verdicts import per_camera_day

router = APIRouter(prefix="/api/v1", tags=["indicators"])


def _read_pool(request: Request) -> Pool:
    """The pool these reads run on: the read replica's (``GRIDWATCH_DB__READ_DSN``) when one is
    set, else the main one (center/app.py). Nothing here writes, so a replica a little behind
    only makes the figures a little late (docs/scaling.md, "A read-only DSN")."""
    pool: Pool = request.app.state.read_pool
    return pool


ReadPool = Annotated[Pool, Depends(_read_pool)]

_WHEN = ("a date (YYYY-MM-DD, midnight in the district's time zone) or an ISO 8601 date-time;"
         " without an offset it is read in the district's time zone")


#: District-wide figures: operators and admins, and engineers (who read everything).
DISTRICT_READERS = ("operator", "admin", "engineer")
LEADER_LEVELS = ("grid", "micro_grid", "worker")


def _district_reader(actor: Principal, what: str) -> None:
    if actor.role not in DISTRICT_READERS:
        raise HTTPException(403, f"{what} needs role {' or '.join(DISTRICT_READERS)};"
                                 f" {actor.id} is {actor.role}")


def _leader_rows(center: CenterDep, actor: Principal, level: str,
                 rows: list[IndicatorRow]) -> list[IndicatorRow]:
    """A leader's indicators: only the rows of their own area."""
    d = center.ctx.district
    if level == "worker":
        return [r for r in rows if r.key and r.key in d.people
                and actor.leads_area(d, d.people[r.key].micro_grid or "")]
    return [r for r in rows if r.key and actor.leads_area(d, r.key)]


def _parse_when(name: str, text: str, tz: ZoneInfo) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tz)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"`{name}`={text!r} is not {_WHEN}") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...], filename: str) -> Response:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
    # A BOM, so that Excel reads the Chinese names as UTF-8.
    return Response(buf.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _filename(kind: str, window: Window) -> str:
    last = window.end.astimezone(window.tz).date()
    first = window.start.astimezone(window.tz).date()
    if window.end.astimezone(window.tz).timetz() == time(0, tzinfo=window.tz):
        last = date.fromordinal(last.toordinal() - 1)
    return f"{kind}_{first.isoformat()}_{last.isoformat()}.csv"


Fmt = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
PeriodQ = Annotated[Period | None, Query(
    description="day, week (Monday first), month or quarter; default month")]
DateQ = Annotated[str | None, Query(
    alias="date", description="any day inside the period (YYYY-MM-DD); default today")]
FromQ = Annotated[str | None, Query(alias="from", description=f"window start: {_WHEN}")]
ToQ = Annotated[str | None, Query(alias="to", description=f"window end, exclusive: {_WHEN}")]


def _both_or_neither(start: str | None, end: str | None) -> None:
    if (start is None) != (end is None):
        raise HTTPException(422, "give both `from` and `to` (to is exclusive), or neither")


class WindowQuery:
    """The window parameters of the indicators, the grid ranking and the false alarms:
    ``period`` (+ ``date``) for one calendar period, or ``from``/``to``. One declaration (a
    dependency), so the three routes take the same names and answer the same errors. Read
    only when the route asks (``window``), after its role check: a reader without the right
    gets 403 whatever the window."""

    def __init__(self, period: PeriodQ = None, on: DateQ = None, start: FromQ = None,
                 end: ToQ = None) -> None:
        self.period = period
        self.on = on
        self.start = start
        self.end = end

    def window(self, center: Center, *, series: bool) -> Window:
        """The window the parameters name; with ``series``, ``period`` and ``from``/``to``
        together mean "that range, bucket by period"."""
        tz = ZoneInfo(center.ctx.district.timezone)
        _both_or_neither(self.start, self.end)
        if self.start is not None and self.end is not None:
            if self.on is not None:
                raise HTTPException(422, "`date` picks a period; it cannot be combined with"
                                         " from/to")
            if self.period is not None and not series:
                raise HTTPException(422, "a ranking covers one window: give `period` (and"
                                         " `date`) or `from`/`to`")
            window = Window(_parse_when("from", self.start, tz), _parse_when("to", self.end, tz),
                            tz, self.period)
        else:
            day = center.ctx.clock.now().astimezone(tz).date()
            if self.on is not None:
                try:
                    day = date.fromisoformat(self.on)
                except ValueError:
                    raise HTTPException(422, f"`date`={self.on!r} is not a date (YYYY-MM-DD)"
                                        ) from None
            window = indicators.period_window(self.period or "month", day, tz)
        indicators.check_window(window)
        return window


WindowQ = Annotated[WindowQuery, Depends()]


@router.get("/indicators",
            responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}})
async def get_indicators(
    center: CenterDep,
    reads: ReadPool,
    actor: ImageActor,  # a CSV download link is a signed URL
    when: WindowQ,
    level: Level = "district",
    format: Fmt = "json",  # noqa: A002 - the public query parameter's name
) -> Any:
    """Indicators per ``level`` for one calendar period (``period`` + ``date``), for an explicit
    window (``from``/``to``), or for a window cut into periods (``period`` + ``from``/``to``).
    Definitions: docs/indicators.md. Leaders get the rows of their own area (levels grid,
    micro_grid, worker); operators, admins and engineers every level."""
    leader = actor.role in ("grid_leader", "micro_grid_leader")
    if leader and level not in LEADER_LEVELS:
        raise HTTPException(403, f"leaders read indicators of their own area (level"
                                 f" {', '.join(LEADER_LEVELS)}), not level {level!r}")
    if not leader:
        _district_reader(actor, "indicators")
    window = when.window(center, series=True)
    async with reads.connection() as conn:
        rows = await indicators.compute(conn, center.ctx, level=level, window=window)
    if leader:
        rows = _leader_rows(center, actor, level, rows)
    data = [r.as_dict() for r in rows]
    if format == "csv":
        return _csv(data, COLUMNS, _filename(f"indicators_{level}", window))
    return {"level": level, "period": window.period, "from": window.start.isoformat(),
            "to": window.end.isoformat(), "timezone": window.tz.key,
            "as_of": center.ctx.clock.now().isoformat(), "rows": data}


@router.get("/rankings/grids",
            responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}})
async def grid_ranking(
    center: CenterDep,
    reads: ReadPool,
    actor: ImageActor,  # a CSV download link is a signed URL
    when: WindowQ,
    format: Fmt = "json",  # noqa: A002 - the public query parameter's name
) -> Any:
    """Every grid ranked by closure rate, then on-time closure rate, then cases due; grids
    with nothing due last; ties share a rank. Operators, admins, engineers and leaders (the
    ranking is published to the grids it compares)."""
    if actor.role not in ("grid_leader", "micro_grid_leader"):
        _district_reader(actor, "the grid ranking")
    window = when.window(center, series=False)
    one = Window(window.start, window.end, window.tz)
    async with reads.connection() as conn:
        ranked = await indicators.grid_ranking(conn, center.ctx, one)
    data = [r.as_dict() for r in ranked]
    if format == "csv":
        return _csv(data, ("rank", *COLUMNS), _filename("grid_ranking", one))
    return {"period": when.period if when.start is None else None, "from": one.start.isoformat(),
            "to": one.end.isoformat(), "timezone": one.tz.key,
            "as_of": center.ctx.clock.now().isoformat(),
            "rule": "closure rate desc, then on-time closure rate desc, then cases due desc;"
                    " nothing due ranks last; equal on all three share a rank",
            "grids": data}


def _area_of(center: Center, actor: Principal) -> tuple[dict[str, str | None],
                                                       frozenset[str] | None]:
    """Whose figures: a leader's own area (grid or micro-grid, as the micro-grids it holds),
    else the district for the district readers; anyone else 403."""
    d = center.ctx.district
    p = actor.person
    if actor.role in ("grid_leader", "micro_grid_leader"):
        key = p.grid if actor.role == "grid_leader" else p.micro_grid
        area = d.areas.get(key or "")
        return ({"level": "grid" if actor.role == "grid_leader" else "micro_grid", "key": key,
                 "name": area.name if area else key},
                frozenset(actor.micro_grids(d) or ()))
    _district_reader(actor, "district-wide figures")
    return {"level": "district", "key": d.id, "name": d.name}, None


@router.get("/indicators/headline", responses={401: {}, 403: {}})
async def headline(center: CenterDep, reads: ReadPool, actor: Actor) -> dict[str, Any]:
    """The KPI tiles' figures, each named by what it counts (docs/indicators.md, "Headline"):
    ``today`` (cases registered today; due so far today, and of those closed: the closure
    rate of cases due today), ``now`` (open and overdue cases at this moment), and
    ``trends``: this week and this month so far against the same stretch of the previous
    week and month. A leader gets their area's; operators, admins and engineers the
    district's."""
    scope, micro_grids = _area_of(center, actor)
    tz = ZoneInfo(center.ctx.district.timezone)
    async with reads.connection() as conn:
        head = await indicators.headline(conn, center.ctx, tz, micro_grids)
    return {"scope": scope, "timezone": tz.key, **head.as_dict()}


@router.get("/indicators/hotspots", responses={401: {}, 403: {}, 422: {}})
async def hotspots(center: CenterDep, reads: ReadPool, actor: Actor,
                   when: WindowQ) -> dict[str, Any]:
    """Cases per place over one window (``period`` + ``date``, or ``from``/``to``; default
    this month): per camera and per 0.001° square of hand reports, with coordinates (WGS-84),
    and per micro-grid; voided cases are not counted. The wall draws ``places`` as its heat
    layer. A leader gets their area's; operators, admins and engineers the district's."""
    scope, micro_grids = _area_of(center, actor)
    window = when.window(center, series=False)
    one = Window(window.start, window.end, window.tz)
    async with reads.connection() as conn:
        places, areas = await indicators.hotspots(conn, center.ctx, one, micro_grids)
    return {"scope": scope, "from": one.start.isoformat(), "to": one.end.isoformat(),
            "timezone": one.tz.key, "as_of": center.ctx.clock.now().isoformat(),
            "cases": sum(a.cases for a in areas),
            "places": [asdict(p) for p in places], "micro_grids": [asdict(a) for a in areas]}


@router.get("/indicators/alerts-daily", responses={401: {}, 403: {}})
async def alerts_daily(center: CenterDep, reads: ReadPool, actor: Actor, start: FromQ = None,
                       end: ToQ = None) -> list[dict[str, Any]]:
    """Camera alerts started per UTC day, camera and event type (a TimescaleDB continuous
    aggregate where that extension is loaded, else a plain view). Default: the last 30 days."""
    _district_reader(actor, "district-wide alert counts")
    tz = ZoneInfo(center.ctx.district.timezone)
    _both_or_neither(start, end)
    if start is None or end is None:
        now = center.ctx.clock.now()
        lo, hi = datetime.fromtimestamp(now.timestamp() - 30 * 86400, now.tzinfo), now
    else:
        lo, hi = _parse_when("from", start, tz), _parse_when("to", end, tz)
        if hi <= lo:
            raise HTTPException(422, "`to` must be after `from`")
    async with reads.connection() as conn:
        days = await alerts_per_day(conn, lo, hi)
    return [{"day": d.day.isoformat(), "camera_id": d.camera_id, "event_type": d.event_type,
             "alerts": d.alerts, "messages": d.messages} for d in days]


@router.get("/indicators/cases-hourly", responses={401: {}, 403: {}})
async def cases_hourly(
    center: CenterDep,
    reads: ReadPool,
    actor: Actor,
    hours: Annotated[int, Query(ge=1, le=168, description="how many hours back")] = 24,
) -> dict[str, Any]:
    """Cases registered per hour and event type over the last ``hours`` hours, the current
    hour included: one dense series per event type (zeros included), for the wall's chart."""
    _district_reader(actor, "district-wide case counts")
    tz = ZoneInfo(center.ctx.district.timezone)
    now = center.ctx.clock.now().astimezone(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    async with reads.connection() as conn:
        counts = await cases_per_hour(conn, start, end)
    slots = [start + timedelta(hours=i) for i in range(hours)]
    index = {slot: i for i, slot in enumerate(slots)}
    series: dict[str, list[int]] = {}
    for c in counts:
        i = index.get(c.hour.astimezone(UTC))
        if i is not None:
            series.setdefault(c.event_type, [0] * hours)[i] += c.cases
    return {"from": start.isoformat(), "to": end.isoformat(), "timezone": tz.key,
            "hours": [s.astimezone(tz).isoformat() for s in slots],
            "series": [{"event_type": code, "event_name": center.views.event_name(code),
                        "counts": values, "total": sum(values)}
                       for code, values in sorted(series.items())]}


#: The false-alarm CSV's columns: one row per local day, camera, zone and event type.
FALSE_ALARM_COLUMNS: tuple[str, ...] = (
    "day", "camera_id", "camera_name", "zone_id", "event_type", "judged", "confirmed",
    "false_alarms", "false_alarm_share", *(f"reason_{r}" for r in verdicts.REASONS))


@router.get("/indicators/false-alarms",
            responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}})
async def false_alarms(
    center: CenterDep,
    reads: ReadPool,
    actor: ImageActor,  # a CSV download link is a signed URL
    when: WindowQ,
    format: Fmt = "json",  # noqa: A002 - the public query parameter's name
) -> Any:
    """Verdicts on camera alerts per day (of the alert, district time zone), camera and zone:
    how many were confirmed and how many were false alarms, and why (docs/indicators.md, "False
    alarms"). Leaders get their area's cameras; operators, admins and engineers all."""
    leader = actor.role in ("grid_leader", "micro_grid_leader")
    if not leader:
        _district_reader(actor, "false-alarm counts")
    window = when.window(center, series=False)
    async with reads.connection() as conn:
        days = await per_camera_day(conn, window.start, window.end, window.tz.key)
    d = center.ctx.district
    if leader:
        days = [x for x in days if actor.leads_area(d, d.micro_grid_of(x.camera_id) or "")]
    rows = []
    for x in days:
        judged = x.confirmed + x.false_alarms
        cam = d.cameras.get(x.camera_id)
        rows.append({"day": x.day, "camera_id": x.camera_id,
                     "camera_name": cam.name if cam else None, "zone_id": x.zone_id,
                     "event_type": x.event_type, "judged": judged, "confirmed": x.confirmed,
                     "false_alarms": x.false_alarms,
                     "false_alarm_share": round(x.false_alarms / judged, 4) if judged else None,
                     **{f"reason_{r}": x.reasons.get(r, 0) for r in verdicts.REASONS}})
    if format == "csv":
        return _csv(rows, FALSE_ALARM_COLUMNS, _filename("false_alarms", window))
    per_camera: dict[str, int] = {}
    for x in days:
        per_camera[x.camera_id] = per_camera.get(x.camera_id, 0) + x.false_alarms
    return {"from": window.start.isoformat(), "to": window.end.isoformat(),
            "timezone": window.tz.key, "false_alarms": sum(per_camera.values()),
            "per_camera": per_camera, "rows": rows}


@router.get("/indicators/presence",
            responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}})
async def presence_figures(
    center: CenterDep,
    reads: ReadPool,
    presence: PresenceDep,
    actor: ImageActor,  # a CSV download link is a signed URL
    when: WindowQ,
    format: Fmt = "json",  # noqa: A002 - the public query parameter's name
) -> Any:
    """On-duty minutes and patrol kilometres per local day and worker (docs/indicators.md,
    "Presence"). Who sees whom as for positions (docs/presence.md): operators and admins
    everyone, leaders their area's workers, a worker their own days."""
    try:
        seen = presence.visible(actor)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    window = when.window(center, series=False)
    async with reads.connection() as conn:
        days = await indicators.presence_days(
            conn, center.ctx, window, max_accuracy_m=presence.settings.max_accuracy_m,
            max_speed_mps=presence.settings.max_speed_mps)
    rows = [asdict(d) | {"day": d.day.isoformat()} for d in days
            if seen is None or d.person_id in seen]
    if format == "csv":
        return _csv(rows, indicators.PRESENCE_COLUMNS, _filename("presence", window))
    return {"from": window.start.isoformat(), "to": window.end.isoformat(),
            "timezone": window.tz.key, "rows": rows}
