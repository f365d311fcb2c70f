"""Duty periods and worker positions (migration 0023, docs/presence.md).

The rule that a position is stored only while its person is on duty is kept here, in one
statement order inside the caller's transaction: the open duty period is locked ``FOR SHARE``
before the position is written, so a check-out (which updates that row) waits for the position
or the position sees the check-out; no position of an off-duty person is ever committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg.rows import class_row

from center.store import partitions
from center.store.db import Connection


@dataclass(frozen=True)
class DutyPeriod:
    person_id: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class Position:
    person_id: str
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None


async def open_period(conn: Connection, person_id: str, *, for_share: bool = False
                      ) -> DutyPeriod | None:
    """The person's open duty period (None: off duty); ``for_share`` locks it against a
    concurrent check-out until the transaction ends."""
    cur = conn.cursor(row_factory=class_row(DutyPeriod))
    await cur.execute(
        "SELECT person_id, started_at, ended_at FROM duty_periods"
        " WHERE person_id = %s AND ended_at IS NULL" + (" FOR SHARE" if for_share else ""),
        (person_id,))
    return await cur.fetchone()


async def last_period(conn: Connection, person_id: str) -> DutyPeriod | None:
    """The person's latest duty period, open or closed (None: never checked in)."""
    cur = conn.cursor(row_factory=class_row(DutyPeriod))
    await cur.execute(
        "SELECT person_id, started_at, ended_at FROM duty_periods WHERE person_id = %s"
        " ORDER BY started_at DESC LIMIT 1", (person_id,))
    return await cur.fetchone()


async def check_in(conn: Connection, person_id: str, at: datetime) -> DutyPeriod:
    """Open a duty period, or return the one already open (checking in twice is one period)."""
    cur = conn.cursor(row_factory=class_row(DutyPeriod))
    await cur.execute(
        "INSERT INTO duty_periods (person_id, started_at) VALUES (%s, %s)"
        " ON CONFLICT (person_id) WHERE ended_at IS NULL DO NOTHING"
        " RETURNING person_id, started_at, ended_at", (person_id, at))
    made = await cur.fetchone()
    if made is not None:
        return made
    current = await open_period(conn, person_id)
    assert current is not None  # the conflict was with it
    return current


async def check_out(conn: Connection, person_id: str, at: datetime) -> DutyPeriod | None:
    """Close the open duty period (None: there was none)."""
    cur = conn.cursor(row_factory=class_row(DutyPeriod))
    await cur.execute(
        "UPDATE duty_periods SET ended_at = greatest(started_at, %s)"
        " WHERE person_id = %s AND ended_at IS NULL"
        " RETURNING person_id, started_at, ended_at", (at, person_id))
    return await cur.fetchone()


async def on_duty(conn: Connection, person_ids: list[str]) -> dict[str, datetime]:
    """Who of ``person_ids`` is on duty now, and since when."""
    cur = await conn.execute(
        "SELECT person_id, started_at FROM duty_periods"
        " WHERE ended_at IS NULL AND person_id = ANY(%s)", (person_ids,))
    return {r[0]: r[1] for r in await cur.fetchall()}


async def store_position(conn: Connection, p: Position, min_interval: timedelta) -> bool:
    """Store a position of an on-duty person unless their last stored one is less than
    ``min_interval`` older (thinning: a phone sending ten a second is stored once per
    interval). True when stored. The caller has locked the open duty period (``open_period``
    with ``for_share``). The upsert on the last position decides atomically, so two requests
    racing for the same interval store one position."""
    cur = await conn.execute(
        "INSERT INTO worker_last_positions AS l (person_id, at, lon, lat, accuracy_m)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (person_id) DO UPDATE SET at = EXCLUDED.at, lon = EXCLUDED.lon,"
        " lat = EXCLUDED.lat, accuracy_m = EXCLUDED.accuracy_m"
        " WHERE l.at <= EXCLUDED.at - %s::interval RETURNING 1",
        (p.person_id, p.at, p.lon, p.lat, p.accuracy_m, min_interval))
    if await cur.fetchone() is None:
        return False
    await conn.execute(
        "INSERT INTO worker_positions (person_id, at, lon, lat, accuracy_m)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (p.person_id, p.at, p.lon, p.lat, p.accuracy_m))
    return True


async def last_positions(conn: Connection, person_ids: list[str] | None) -> list[Position]:
    """The last stored position of each person (of ``person_ids``; None: everyone)."""
    cur = conn.cursor(row_factory=class_row(Position))
    if person_ids is None:
        await cur.execute("SELECT person_id, at, lon, lat, accuracy_m FROM worker_last_positions")
    else:
        await cur.execute(
            "SELECT person_id, at, lon, lat, accuracy_m FROM worker_last_positions"
            " WHERE person_id = ANY(%s)", (person_ids,))
    return await cur.fetchall()


async def track(conn: Connection, person_id: str, start: datetime, end: datetime
                ) -> list[Position]:
    """A person's positions in [start, end), oldest first."""
    cur = conn.cursor(row_factory=class_row(Position))
    await cur.execute(
        "SELECT person_id, at, lon, lat, accuracy_m FROM worker_positions"
        " WHERE person_id = %s AND at >= %s AND at < %s ORDER BY at", (person_id, start, end))
    return await cur.fetchall()


@dataclass(frozen=True)
class PatrolDay:
    day: date
    person_id: str
    metres: float
    fixes: int


async def patrol_per_day(conn: Connection, start: datetime, end: datetime, tz: str, *,
                         max_accuracy_m: float, max_speed_mps: float,
                         person_ids: list[str] | None = None) -> list[PatrolDay]:
    """Patrol distance per local day and person over [start, end): great-circle metres
    (haversine, the same formula as ``center.domain.patrol.haversine_m``) between consecutive
    fixes of the day, leaving out fixes less accurate than ``max_accuracy_m`` and steps faster
    than ``max_speed_mps`` (a fix that jumps away and back loses both of its steps, so a jump
    never adds distance; a real walk between them is undercounted by one step). In SQL so that
    a month of fixes never travels to Python; ``fixes`` counts the accurate ones."""
    cur = conn.cursor(row_factory=class_row(PatrolDay))
    await cur.execute(
        "WITH fixes AS ("
        "  SELECT person_id, at, lon, lat, (at AT TIME ZONE %(tz)s)::date AS day"
        "  FROM worker_positions WHERE at >= %(start)s AND at < %(end)s"
        "  AND (accuracy_m IS NULL OR accuracy_m <= %(acc)s)"
        "  AND (%(ids)s::text[] IS NULL OR person_id = ANY(%(ids)s::text[]))"
        "), steps AS ("
        "  SELECT person_id, day,"
        "   2 * 6371008.8 * asin(least(1, sqrt("
        "     power(sin(radians(lat - lag(lat) OVER w) / 2), 2)"
        "     + cos(radians(lag(lat) OVER w)) * cos(radians(lat))"
        "       * power(sin(radians(lon - lag(lon) OVER w) / 2), 2)))) AS metres,"
        "   extract(epoch FROM at - lag(at) OVER w) AS seconds"
        "  FROM fixes WINDOW w AS (PARTITION BY person_id, day ORDER BY at)"
        ") SELECT day, person_id, coalesce(sum(metres) FILTER (WHERE seconds > 0"
        "   AND metres / seconds <= %(speed)s), 0)::float8 AS metres, count(*)::int AS fixes"
        " FROM steps GROUP BY day, person_id ORDER BY day, person_id",
        {"tz": tz, "start": start, "end": end, "acc": max_accuracy_m, "speed": max_speed_mps,
         "ids": person_ids})
    return await cur.fetchall()


async def periods_between(conn: Connection, start: datetime, end: datetime
                          ) -> list[DutyPeriod]:
    """Duty periods overlapping [start, end) (open ones included)."""
    cur = conn.cursor(row_factory=class_row(DutyPeriod))
    await cur.execute(
        "SELECT person_id, started_at, ended_at FROM duty_periods"
        " WHERE started_at < %s AND (ended_at IS NULL OR ended_at > %s)"
        " ORDER BY person_id, started_at", (end, start))
    return await cur.fetchall()


async def ensure_partitions(conn: Connection) -> int:
    """The coming days' position partitions (0 on TimescaleDB)."""
    return await partitions.ensure_daily(conn, "worker_positions")


async def sweep(conn: Connection, now: datetime, days: int) -> int:
    """Drop positions older than ``days``: whole daily partitions on plain PostgreSQL, whole
    chunks on TimescaleDB (returns how many). The last-position rows go with them, so the wall
    never shows a position the series no longer holds."""
    cutoff = now - timedelta(days=days)
    dropped = await partitions.drop_daily(conn, "worker_positions", cutoff)
    await conn.execute("DELETE FROM worker_last_positions WHERE at < %s", (cutoff,))
    return dropped


async def open_case_counts(conn: Connection, person_ids: list[str], open_states: list[str]
                           ) -> dict[str, int]:
    """How many open cases each person holds (a busy worker is not the one to send)."""
    cur = await conn.execute(
        "SELECT assignee_id, count(*) FROM tickets WHERE assignee_id = ANY(%s)"
        " AND state = ANY(%s) GROUP BY assignee_id", (person_ids, open_states))
    return {r[0]: int(r[1]) for r in await cur.fetchall()}
