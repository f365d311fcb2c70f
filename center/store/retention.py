"""How long alerts, evidence pictures, kept full frames and dead letters are kept: partitions
or chunks are dropped whole.

The alerts older than the cut-off go by this hourly job on both engines: whole daily partitions
on plain PostgreSQL, whole chunks (``drop_chunks``) on TimescaleDB, through the one SQL function
of ``partitions.drop_daily`` (migration 0032). No TimescaleDB retention policy: a policy keeps
the interval it was added with, so a changed setting would not apply, and its own clock is not
the center's. Tickets and their ledger are never deleted here: they are the record.
Idempotency keys (``alert_keys``) are kept only as long as the ingest would still take a
message of that age (``MAX_ALERT_AGE`` and a day): an older copy is refused for its time
before its key is looked at.
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


async def sweep(conn: AsyncConnection, now: datetime, *, alert_days: int | None,
                snapshot_days: int | None, dead_letter_days: int | None = None,
                frame_days: int | None = None) -> Swept:
    """Apply the retention settings once (None keeps forever)."""
    dropped = 0
    if alert_days is not None:
        dropped = await partitions.drop_daily(conn, "alerts", now - timedelta(days=alert_days))
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
        log.info("retention: dropped %d alert partitions or chunks, %d snapshots,"
                 " %d full frames, %d dead letters", dropped, deleted, frames, dead)
    return Swept(dropped, deleted, dead, keys, frames)
