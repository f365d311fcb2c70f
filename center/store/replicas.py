"""What center replicas share through PostgreSQL (docs/scaling.md "Replicas"): the NOTIFY
channels the triggers of migration 0028 speak on, the setting that names a replica's
connections, the tickets a listener re-reads after it lost its connection, and the advisory
locks that keep a job to one replica at a time.

The rules (what a notification becomes, when to catch up) are
center/transport/replica_push.py's; here is only how they are written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from zlib import crc32

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import class_row

from center.store.db import Connection
from center.store.tickets import TICKET_COLUMNS, Ticket

#: Channels of migration 0028's triggers: a ticket inserted or updated (``{"r": replica,
#: "t": ticket id, "u": updated_at}``), and a phone notification row written (``{"r", "n":
#: notification id, "t": ticket id, "p": person id, "reason"}``).
TICKET_CHANNEL = "gridwatch_ticket_changes"
PHONE_CHANNEL = "gridwatch_phone_notifications"
#: The custom setting a replica's connections carry; the triggers notify only when it is set.
REPLICA_SETTING = "gridwatch.replica"


def replica_dsn(dsn: str, replica: str) -> str:
    """``dsn`` whose connections carry ``gridwatch.replica = replica`` (libpq ``options``,
    added to any the DSN already has), so every write of this replica notifies the others."""
    if not replica or any(c in replica for c in " \\'\""):
        raise ValueError(f"replica name {replica!r}: no spaces, quotes or backslashes")
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c {REPLICA_SETTING}={replica}".strip())


async def listen(conn: Connection) -> None:
    """Subscribe ``conn`` (autocommit) to both channels."""
    await conn.execute(f"LISTEN {TICKET_CHANNEL}")
    await conn.execute(f"LISTEN {PHONE_CHANNEL}")


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
