"""SQL for alert clips (migration 0021): what each stored clip is and where its video lies, and
the alert a clip belongs to (its camera and ticket, for scoping). Values always go as
parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from center.store.db import Connection


@dataclass(frozen=True)
class ClipRow:
    clip_id: UUID
    alert_id: UUID
    kind: str
    edge_id: str
    camera_id: str
    started_at: datetime
    ended_at: datetime
    codec: str
    content_type: str
    size: int
    sha256: str
    storage_key: str
    stored_at: datetime


@dataclass(frozen=True)
class AlertPlace:
    """Where an alert was seen and the ticket it went to (None: not attached to one)."""

    edge_id: str
    camera_id: str
    event_type: str
    ticket_id: int | None
    micro_grid_id: str | None
    assignee_id: str | None
    #: The department the case was handed off to (migration 0024), whose staff see it.
    department_id: str | None


_COLUMNS = ("clip_id, alert_id, kind, edge_id, camera_id, started_at, ended_at, codec,"
            " content_type, size, sha256, storage_key, stored_at")


async def insert(conn: Connection, row: ClipRow) -> bool:
    """Store a clip's row; False when that clip was stored already (a redelivery)."""
    cur = await conn.execute(
        f"INSERT INTO alert_clips ({_COLUMNS}) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (clip_id) DO NOTHING RETURNING clip_id",
        (row.clip_id, row.alert_id, row.kind, row.edge_id, row.camera_id, row.started_at,
         row.ended_at, row.codec, row.content_type, row.size, row.sha256, row.storage_key,
         row.stored_at))
    return await cur.fetchone() is not None


async def exists(conn: Connection, clip_id: UUID) -> bool:
    cur = await conn.execute("SELECT 1 FROM alert_clips WHERE clip_id = %s", (clip_id,))
    return await cur.fetchone() is not None


async def for_alert(conn: Connection, alert_id: UUID) -> list[ClipRow]:
    """An alert's clips, the violation's first."""
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM alert_clips WHERE alert_id = %s"
                          " ORDER BY kind DESC, started_at", (alert_id,))
        return await cur.fetchall()


async def get(conn: Connection, clip_id: UUID) -> ClipRow | None:
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM alert_clips WHERE clip_id = %s", (clip_id,))
        return await cur.fetchone()


async def alert_place(conn: Connection, alert_id: UUID) -> AlertPlace | None:
    """The alert's camera and its ticket (from its earliest stored message that has one)."""
    async with conn.cursor(row_factory=class_row(AlertPlace)) as cur:
        await cur.execute(
            "SELECT a.edge_id, a.camera_id, a.event_type, t.id AS ticket_id, t.micro_grid_id,"
            " t.assignee_id, t.department_id"
            " FROM alerts a LEFT JOIN tickets t ON t.id = a.ticket_id"
            " WHERE a.alert_id = %s ORDER BY (a.ticket_id IS NULL), a.seq LIMIT 1",
            (alert_id,))
        return await cur.fetchone()


async def stored_before(conn: Connection, cutoff: datetime,
                        limit: int = 1000) -> list[tuple[UUID, str]]:
    """Clips stored before ``cutoff`` (the oldest first), as (clip_id, storage_key): the
    caller deletes each video, then its row (``delete``), so a video the storage could not
    delete keeps its row and is tried again at the next sweep."""
    cur = await conn.execute(
        "SELECT clip_id, storage_key FROM alert_clips WHERE stored_at < %s"
        " ORDER BY stored_at LIMIT %s", (cutoff, limit))
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def delete(conn: Connection, clip_id: UUID) -> None:
    await conn.execute("DELETE FROM alert_clips WHERE clip_id = %s", (clip_id,))
