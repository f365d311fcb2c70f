"""SQL for the indicators (docs/indicators.md): the one query that counts every figure from
``tickets`` and the ``ticket_events`` ledger, and the plain counts behind the wall's charts
(``alerts_daily``, cases per hour). ``center.services.indicators`` turns the counts into rates,
names and rankings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from psycopg.rows import class_row, dict_row

from center.store.db import Connection

# --- the indicators (center.services.indicators.compute) ------------------------------------

#: Each level's group key, as SQL over ``tickets t`` (and ``d``, the department join).
_KEYS: dict[str, str] = {
    "district": "%(district)s::text",
    "grid": "t.grid_id",
    "micro_grid": "t.micro_grid_id",
    "worker": "t.assignee_id",
    "department": "d.department_id",
    "event_type": "t.event_type",
    "source": "t.source",
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


async def counts(conn: Connection, *, level: str, district_id: str, start: datetime,
                 end: datetime, now: datetime, period: str | None, tz: str,
                 handled: Sequence[str], rework: Sequence[str],
                 departments: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per bucket and group (``level``'s key) with any activity in [start, end) up to
    ``now``: the bucket's start, the key and each count and mean (the columns of ``_SQL``).
    ``period`` cuts the window into date_trunc units in ``tz`` (None: one bucket);
    ``departments`` are the (department, event type) pairs of level "department"."""
    join = ""
    if level == "department":
        join = ("LEFT JOIN unnest(%(dept_ids)s::text[], %(dept_types)s::text[])"
                " AS d (department_id, event_type) ON d.event_type = t.event_type")
    bucket = ("date_trunc(%(unit)s, at, %(tz)s)" if period is not None
              else "%(start)s::timestamptz")
    params = {"district": district_id, "start": start, "end": end, "now": now, "unit": period,
              "tz": tz, "handled": list(handled), "rework": list(rework),
              "dept_ids": [d for d, _ in departments],
              "dept_types": [t for _, t in departments]}
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SQL.format(key=_KEYS[level], join=join, bucket=bucket), params)
    return await cur.fetchall()


# --- counts per day or hour in a window (alerts-daily, the wall's cases-hourly chart) -----

#: A count's row type (``AlertDay``, ``HourCount``).
Count = TypeVar("Count")


async def _counts_between(conn: Connection, row: type[Count], start: datetime, end: datetime,
                          sql: str) -> list[Count]:
    """``sql``'s rows for [start, end) (its two placeholders, in that order), each as a
    ``row`` whose fields are the query's columns: the one way the time-bucket counts are read."""
    cur = conn.cursor(row_factory=class_row(row))
    await cur.execute(sql, (start, end))
    return await cur.fetchall()


# --- camera discoveries (alerts_daily: a continuous aggregate on TimescaleDB, else a view) ---

@dataclass(frozen=True)
class AlertDay:
    day: datetime
    camera_id: str
    event_type: str
    alerts: int
    messages: int


async def alerts_per_day(conn: Connection, start: datetime, end: datetime) -> list[AlertDay]:
    """Camera alerts started per UTC day, camera and event type (``alerts_daily``)."""
    return await _counts_between(
        conn, AlertDay, start, end,
        "SELECT day, camera_id, event_type, alerts, messages FROM alerts_daily"
        " WHERE day >= %s AND day < %s ORDER BY day, camera_id, event_type")


# --- cases per hour (the wall screen's "last 24 h" chart) ------------------------------------

@dataclass(frozen=True)
class HourCount:
    hour: datetime  # start of the hour (UTC)
    event_type: str
    cases: int


async def cases_per_hour(conn: Connection, start: datetime, end: datetime) -> list[HourCount]:
    """Cases registered per hour and event type in [start, end), every source counted."""
    return await _counts_between(
        conn, HourCount, start, end,
        "SELECT date_trunc('hour', opened_at, 'UTC') AS hour, event_type, count(*) AS cases"
        " FROM tickets WHERE opened_at >= %s AND opened_at < %s GROUP BY 1, 2 ORDER BY 1, 2")


# --- now and where (the headline figures and the hotspots) ----------------------------------

@dataclass(frozen=True)
class OpenNow:
    open: int     # tickets still being worked (``is_open``: registered .. handled)
    overdue: int  # of those, past their stage or overall deadline


async def open_now(conn: Connection, now: datetime,
                   micro_grids: Sequence[str] | None) -> OpenNow:
    """Open and overdue tickets at ``now``, the same rule as ``GET /tickets?open=true`` and
    ``overdue=true``; ``micro_grids`` limits them to a leader's area (None: all)."""
    where = "is_open"
    args: list[object] = [now, now]
    if micro_grids is not None:
        where += " AND micro_grid_id = ANY(%s)"
        args.append(list(micro_grids))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT count(*) AS open,"
        " count(*) FILTER (WHERE stage_due_at < %s OR due_at < %s) AS overdue"
        f" FROM tickets WHERE {where}", args)
    row = await cur.fetchone()
    assert row is not None
    return OpenNow(**row)


@dataclass(frozen=True)
class PlaceCount:
    camera_id: str | None     # a camera's case; None: reported by hand at (lon, lat)
    micro_grid_id: str | None
    lon: float | None         # a hand report's position rounded to 0.001° (about 100 m)
    lat: float | None
    cases: int
    open: int


async def cases_per_place(conn: Connection, start: datetime, end: datetime,
                          micro_grids: Sequence[str] | None) -> list[PlaceCount]:
    """Non-void cases opened in [start, end) per camera, or per 0.001° square for cases
    reported by hand (a camera's case keeps the camera's position, so it is not rounded)."""
    where = "opened_at >= %s AND opened_at < %s AND state <> 'void'"
    args: list[object] = [start, end]
    if micro_grids is not None:
        where += " AND micro_grid_id = ANY(%s)"
        args.append(list(micro_grids))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT camera_id, micro_grid_id,"
        " CASE WHEN camera_id IS NULL THEN round(lon::numeric, 3)::float8 END AS lon,"
        " CASE WHEN camera_id IS NULL THEN round(lat::numeric, 3)::float8 END AS lat,"
        " count(*) AS cases, count(*) FILTER (WHERE is_open) AS open"
        f" FROM tickets WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 2", args)
    return [PlaceCount(**r) for r in await cur.fetchall()]
