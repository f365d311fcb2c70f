"""Daily partitions of the time-series tables (alerts, worker positions) on plain PostgreSQL:
made a few days ahead and dropped whole once older than their retention, by the two SQL
functions of migration 0027 that take the table as a parameter, so both tables follow one rule.

On TimescaleDB these tables are hypertables that make their own chunks: ``ensure_daily`` returns
0 there, and ``drop_daily`` drops the old chunks (``drop_chunks``, migration 0032), so retention
(``retention.sweep``, ``presence.sweep``) is the center's hourly job on both engines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from center.store.db import Connection

#: The tables partitioned by day when TimescaleDB is not loaded (migrations 0001 and 0023).
TimeSeries = Literal["alerts", "worker_positions"]

#: Yesterday's partition (a late message) to a week ahead (an hourly job that stopped for a
#: while still finds its days made).
DAYS_BACK = 1
DAYS_AHEAD = 7


async def ensure_daily(conn: Connection, table: TimeSeries, days_back: int = DAYS_BACK,
                       days_ahead: int = DAYS_AHEAD) -> int:
    """The daily partitions from ``days_back`` days ago to ``days_ahead`` days ahead that are
    missing; returns how many were made (0 on TimescaleDB)."""
    cur = await conn.execute("SELECT gridwatch_ensure_daily_partitions(%s, %s, %s)",
                             (table, days_back, days_ahead))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def drop_daily(conn: Connection, table: TimeSeries, older_than: datetime) -> int:
    """Drop the partitions that end at or before ``older_than`` and delete the DEFAULT
    partition's older rows (on TimescaleDB: the chunks that end by then); returns how many
    partitions or chunks were dropped."""
    cur = await conn.execute("SELECT gridwatch_drop_daily_partitions(%s, %s)",
                             (table, older_than))
    row = await cur.fetchone()
    return int(row[0]) if row else 0

