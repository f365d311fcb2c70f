"""The daily partitions of alerts and worker positions go through one pair of SQL functions
(migration 0027) that takes the table as a parameter: a database that ran the per-table copies
(0001, 0005, 0023) upgrades with its rows and partitions kept, and both tables then get and lose
partitions by the same rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from center.store import partitions
from center.store.migrate import migrate
from center.store.partitions import TimeSeries

TABLES: tuple[TimeSeries, ...] = ("alerts", "worker_positions")
OLD_FUNCTIONS = ("gridwatch_ensure_partitions", "gridwatch_drop_alert_partitions",
                 "gridwatch_ensure_position_partitions", "gridwatch_drop_position_partitions")
LONG_AGO = datetime(2020, 1, 1, 12, tzinfo=UTC)  # no partition: in the DEFAULT one


@pytest.fixture
def db_at_0026(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh database migrated up to 0026, the schema before the generic functions."""
    name = f"t_up_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=name)
    try:
        migrate(dsn, commit=True, up_to=26)
        yield dsn
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _add_row(conn: psycopg.AsyncConnection, table: TimeSeries, at: datetime) -> None:
    if table == "alerts":
        await conn.execute(
            "INSERT INTO alerts (alert_id, seq, kind, edge_id, camera_id, zone_id, event_type,"
            " label, score, bbox, started_at, observed_at) VALUES (%s, 0, 'new', 'e', 'c', 'z',"
            " '0506', 'two_wheeler', 0.5, '{0,0,1,1}', %s, %s)", (uuid.uuid4(), at, at))
    else:
        await conn.execute("INSERT INTO worker_positions (person_id, at, lon, lat)"
                           " VALUES ('w-0121', %s, 120.15, 30.27)", (at,))


async def _times(conn: psycopg.AsyncConnection, table: TimeSeries) -> list[datetime]:
    key = "observed_at" if table == "alerts" else "at"
    cur = await conn.execute(f"SELECT {key} FROM {table} ORDER BY 1")
    return [r[0] for r in await cur.fetchall()]


async def _partitions(conn: psycopg.AsyncConnection, table: TimeSeries) -> dict[str, bool]:
    """Each daily partition's name, and whether its bounds are [that day, the next) in the
    session's time zone: the rule of the per-table copies, now the generic function's."""
    cur = await conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
        "   = format('FOR VALUES FROM (%%L) TO (%%L)', d::timestamptz, (d + 1)::timestamptz)"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
        " LATERAL to_date(right(c.relname, 8), 'YYYYMMDD') AS d"
        " WHERE i.inhparent = %s::regclass AND c.relname <> %s",
        (table, f"{table}_default"))
    return dict(await cur.fetchall())


async def _day(conn: psycopg.AsyncConnection, offset: int) -> tuple[str, datetime]:
    """The YYYYMMDD of today + ``offset`` days and noon of that day, by the database's clock."""
    cur = await conn.execute("SELECT to_char(current_date + %s, 'YYYYMMDD'),"
                             " (current_date + %s)::timestamptz + interval '12 hours'",
                             (offset, offset))
    row = await cur.fetchone()
    assert row is not None
    return row[0], row[1]


async def test_upgrade_keeps_rows_and_both_tables_use_the_generic_functions(
        db_at_0026: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_at_0026, autocommit=True) as conn:
        # Before: the per-table copies made yesterday's to tomorrow's partitions of each table.
        await conn.execute("SELECT gridwatch_ensure_partitions(1, 1)")
        await conn.execute("SELECT gridwatch_ensure_position_partitions(1, 1)")
        (_, yesterday_noon), (_, today_noon) = await _day(conn, -1), await _day(conn, 0)
        for table in TABLES:
            for at in (LONG_AGO, yesterday_noon, today_noon):
                await _add_row(conn, table, at)

    migrate(db_at_0026, commit=True)

    async with await psycopg.AsyncConnection.connect(db_at_0026, autocommit=True) as conn:
        cur = await conn.execute("SELECT proname FROM pg_proc WHERE proname = ANY(%s)",
                                 (list(OLD_FUNCTIONS),))
        assert await cur.fetchall() == []
        days = [(await _day(conn, offset))[0] for offset in range(-2, 3)]
        for table in TABLES:
            assert await _times(conn, table) == [LONG_AGO, yesterday_noon, today_noon]
            # The generic path adds the two missing days at either end, named and bounded as
            # the copies named and bounded theirs.
            assert await partitions.ensure_daily(conn, table, 2, 2) == 2
            assert await partitions.ensure_daily(conn, table, 2, 2) == 0
            assert await _partitions(conn, table) == {f"{table}_{d}": True for d in days}
            # Dropping before today: the two partitions that end by then and the DEFAULT
            # partition's old row; today's row and partitions stay.
            cutoff = today_noon - timedelta(hours=12)
            assert await partitions.drop_daily(conn, table, cutoff) == 2
            assert await _times(conn, table) == [today_noon]
            assert set(await _partitions(conn, table)) == {f"{table}_{d}" for d in days[2:]}


async def test_a_day_already_in_the_default_partition_gets_none(db_dsn: str) -> None:
    """As before 0027: a day whose rows sit in the DEFAULT partition is left there (creating
    its partition would fail), and the other days are still made."""
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        (ahead, ahead_noon), (today, _) = await _day(conn, 3), await _day(conn, 0)
        for table in TABLES:
            await _add_row(conn, table, ahead_noon)
            assert await partitions.ensure_daily(conn, table, 0, 3) == 3
            made = set(await _partitions(conn, table))
            assert f"{table}_{today}" in made and f"{table}_{ahead}" not in made
            assert await _times(conn, table) == [ahead_noon]


async def test_an_unknown_table_is_an_error_not_a_silent_zero(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        for call in ("SELECT gridwatch_ensure_daily_partitions('alert', 1, 1)",
                     "SELECT gridwatch_drop_daily_partitions('alert', now())"):
            with pytest.raises(psycopg.errors.UndefinedTable):
                await conn.execute(call)
