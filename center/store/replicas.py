"""What center replicas share through PostgreSQL (docs/scaling.md "Replicas"): the NOTIFY
channels the triggers of migrations 0028, 0030 and 0033 speak on, the setting that names a
replica's connections, the rows a listener reads for what it heard (tickets, alerts, camera
statuses, broadcasts), and the advisory locks that keep a job to one replica at a time.

The rules (what a notification becomes, when to catch up) are
center/transport/replica_push.py's; here is only how they are written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID
from zlib import crc32

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import class_row, dict_row

from center.store.alerts import _ALERT_COLS as ALERT_COLUMNS
from center.store.alerts import AlertRow, CameraStatusRow
from center.store.db import Connection
from center.store.tickets import TICKET_COLUMNS, Ticket

#: Channels of migration 0028's triggers: a ticket inserted or updated (``{"r": replica,
#: "t": ticket id, "u": updated_at}``), and a phone notification row written (``{"r", "n":
#: notification id, "t": ticket id, "p": person id, "reason"}``).
TICKET_CHANNEL = "gridwatch_ticket_changes"
PHONE_CHANNEL = "gridwatch_phone_notifications"
#: Channel of migration 0030's triggers, the wall's other live events: ``{"r": replica, "k":
#: kind, ...}``, kind "alerts" (``"a": [[alert_id, seq, observed_at in µs since the epoch],
#: ...]``, up to 80), "camera" (``"c"``: camera id), "position"/"duty" (``"p"``:
#: person id), "emergency" (``"s"``: scope), "broadcast" (``"l"``: ops_ledger id); and of
#: migration 0033's: "verdicts" (``"v"``: the verdict ids of one recording, up to 300),
#: "clip" (``"i"``: clip id).
WALL_CHANNEL = "gridwatch_wall_events"
CHANNELS = (TICKET_CHANNEL, PHONE_CHANNEL, WALL_CHANNEL)
#: The custom setting a replica's connections carry; the triggers notify only when it is set.
REPLICA_SETTING = "gridwatch.replica"
#: Longest replica name: the payloads carry it, and a NOTIFY takes at most 8000 bytes
#: (migration 0030 leaves room for 200 characters beside 80 alert keys).
REPLICA_NAME_MAX = 200


def replica_dsn(dsn: str, replica: str) -> str:
    """``dsn`` whose connections carry ``gridwatch.replica = replica`` (libpq ``options``,
    added to any the DSN already has), so every write of this replica notifies the others."""
    if not replica or any(c in replica for c in " \\'\""):
        raise ValueError(f"replica name {replica!r}: no spaces, quotes or backslashes")
    if len(replica) > REPLICA_NAME_MAX:
        raise ValueError(f"replica name of {len(replica)} characters: at most"
                         f" {REPLICA_NAME_MAX} (the cross-replica notifications carry it)")
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c {REPLICA_SETTING}={replica}".strip())


async def listen(conn: Connection) -> None:
    """Subscribe ``conn`` (autocommit) to every channel."""
    for channel in CHANNELS:
        await conn.execute(f"LISTEN {channel}")


async def notified(conn: Connection, timeout_s: float) -> AsyncIterator[tuple[str, str]]:
    """(channel, payload) of each notification on ``conn``, in commit order, until
    ``timeout_s`` passes without one."""
    async for n in conn.notifies(timeout=timeout_s):
        yield n.channel, n.payload


async def changed_since(conn: Connection, since: datetime, limit: int) -> list[Ticket]:
    """The tickets updated after ``since``, the ``limit`` most recent, oldest first."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        f"SELECT * FROM (SELECT {TICKET_COLUMNS} FROM tickets WHERE updated_at > %s"
        " ORDER BY updated_at DESC LIMIT %s) recent ORDER BY updated_at", (since, limit))
    return await cur.fetchall()


#: First half of every gridwatch advisory lock key, so ours never meet another program's.
_LOCK_SPACE = 0x6777  # "gw"


def _lock_key(name: str) -> int:
    """A stable 32-bit key per job name (``pg_try_advisory_lock(int, int)``'s second half)."""
    return crc32(name.encode()) & 0x7FFFFFFF


async def singleton(conn: Connection, name: str) -> bool:
    """Take the advisory lock of job ``name`` for the rest of ``conn``'s transaction, if no
    other transaction holds it: True when this one runs the job, False when another replica
    is running it now. A transaction lock: released at commit or rollback, so a failed job
    never leaves it held on a pooled connection."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                             (_LOCK_SPACE, _lock_key(name)))
    row = await cur.fetchone()
    return bool(row and row[0])


async def tickets(conn: Connection, ticket_ids: Sequence[int]) -> list[Ticket]:
    """The tickets of these ids as they are now, oldest change first."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ANY(%s)"
                      " ORDER BY updated_at", (list(ticket_ids),))
    return await cur.fetchall()


async def alerts(conn: Connection, keys: Sequence[tuple[UUID, int, datetime]]
                 ) -> list[AlertRow]:
    """The stored alerts of these primary keys ``(alert_id, seq, observed_at)``, in the keys'
    order: found by index, and only in the partitions of the keys' days."""
    if not keys:
        return []
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts"
        " JOIN unnest(%b::uuid[], %b::integer[], %b::timestamptz[])"
        " WITH ORDINALITY AS k (alert_id, seq, observed_at, n) USING (alert_id, seq, observed_at)"
        " WHERE observed_at BETWEEN %s AND %s ORDER BY k.n",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
         min(k[2] for k in keys), max(k[2] for k in keys)))
    return await cur.fetchall()


async def camera_statuses(conn: Connection, camera_ids: Sequence[str]
                          ) -> list[CameraStatusRow]:
    """The stored status of these cameras (those that have one)."""
    cur = conn.cursor(row_factory=class_row(CameraStatusRow))
    await cur.execute("SELECT camera_id, edge_id, state, detail, updated_at FROM camera_status"
                      " WHERE camera_id = ANY(%s)", (list(camera_ids),))
    return await cur.fetchall()


async def broadcasts(conn: Connection, ledger_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The broadcasts among these operations ledger entries (id, at, actor_id, scope, note),
    in the order they were sent."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, at, actor_id, scope, note FROM ops_ledger"
                      " WHERE id = ANY(%s) AND action = 'broadcast' ORDER BY id",
                      (list(ledger_ids),))
    return await cur.fetchall()
