"""The operations ledger (``ops_ledger``): who changed the district's running setup, when.

One writer for every kind of entry (a district import, posts, emergency switches and
broadcasts, logouts and password changes), so the rows all read alike and a new column is
added in one place. Ticket actions have their own ledger, ``ticket_events``
(center/services/tickets.py)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection


async def record(conn: AsyncConnection, *, at: datetime, actor_id: str, action: str,
                 scope: str, note: str = "") -> None:
    """Append one entry, in the caller's transaction (it lands with the change it records)."""
    await conn.execute(
        "INSERT INTO ops_ledger (at, actor_id, action, scope, note) VALUES (%s, %s, %s, %s, %s)",
        (at, actor_id, action, scope, note))
