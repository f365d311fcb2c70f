"""How long alerts, evidence pictures, kept full frames and dead letters are kept: partitions
or chunks are dropped whole.

On TimescaleDB a retention policy drops old chunks of the alerts hypertable; on plain
PostgreSQL the daily partitions older than the cut-off are dropped. Tickets and their ledger
are never deleted here: they are the record. Idempotency keys (``alert_keys``) are kept only
as long as the ingest would still take a message of that age (``MAX_ALERT_AGE`` and a day):
an older copy is refused for its time before its key is looked at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from center.store import partitions
from wire.protocol import MAX_ALERT_AGE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swept:
    partitions_dropped: int
    snapshots_deleted: int
    dead_letters_deleted: int = 0
    alert_keys_deleted: int = 0
    frames_deleted: int = 0


async def has_timescale(conn: AsyncConnection) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'alerts')"
        if await _extension_loaded(conn) else "SELECT false")
    row = await cur.fetchone()
    return bool(row and row[0])


async def _extension_loaded(conn: AsyncConnection) -> bool:
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension"
                             " WHERE extname = 'timescaledb')")
    row = await cur.fetchone()
    return bool(row and row[0])


async def sweep(conn: AsyncConnection, now: datetime, *, alert_days: int | None,
                snapshot_days: int | None, dead_letter_days: int | None = None,
                frame_days: int | None = None) -> Swept:
    """Apply the retention settings once (None keeps forever)."""
    dropped = 0
    if alert_days is not None:
        cutoff = now - timedelta(days=alert_days)
        if await has_timescale(conn):
            await conn.execute(
                "SELECT add_retention_policy('alerts', %s::interval, if_not_exists => true)",
                (timedelta(days=alert_days),))
        else:
            dropped = await partitions.drop_daily(conn, "alerts", cutoff)
    deleted = 0
    if snapshot_days is not None:
        cur = await conn.execute("DELETE FROM alert_snapshots WHERE stored_at < %s",
                                 (now - timedelta(days=snapshot_days),))
        deleted = cur.rowcount
    frames = 0
    if frame_days is not None:
        cur = await conn.execute("DELETE FROM alert_frames WHERE stored_at < %s",
                                 (now - timedelta(days=frame_days),))
        frames = cur.rowcount
    dead = 0
    if dead_letter_days is not None:
        cur = await conn.execute("DELETE FROM dead_letters WHERE received_at < %s",
                                 (now - timedelta(days=dead_letter_days),))
        dead = cur.rowcount
    cur = await conn.execute("DELETE FROM alert_keys WHERE observed_at < %s",
                             (now - MAX_ALERT_AGE - timedelta(days=1),))
    keys = cur.rowcount
    if dropped or deleted or dead or frames:
        log.info("retention: dropped %d alert partitions, %d snapshots, %d full frames, "
                 "%d dead letters", dropped, deleted, frames, dead)
    return Swept(dropped, deleted, dead, keys, frames)
