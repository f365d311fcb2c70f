"""Deadline and escalation timers, kept in the database so a restart loses none.

A timer is a row with a due time. The scheduler claims due rows with ``FOR UPDATE SKIP
LOCKED`` and marks them fired in the same transaction as the escalation they cause, so a crash
either leaves the timer due (it fires after the restart) or fired with its effect committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import class_row

from center.store.db import Connection


@dataclass(frozen=True)
class Timer:
    id: int
    ticket_id: int
    kind: str
    level: int
    due_at: datetime


async def schedule(conn: Connection, ticket_id: int, kind: str, due_at: datetime | None,
                   level: int = 0) -> None:
    if due_at is None:
        return
    await conn.execute(
        "INSERT INTO ticket_timers (ticket_id, kind, level, due_at) VALUES (%s, %s, %s, %s)",
        (ticket_id, kind, level, due_at))


async def cancel(conn: Connection, ticket_id: int, kinds: Iterable[str] | None,
                 at: datetime) -> None:
    """Cancel a ticket's pending timers of ``kinds`` (all when None)."""
    if kinds is None:
        await conn.execute(
            "UPDATE ticket_timers SET cancelled_at = %s WHERE ticket_id = %s"
            " AND fired_at IS NULL AND cancelled_at IS NULL", (at, ticket_id))
        return
    await conn.execute(
        "UPDATE ticket_timers SET cancelled_at = %s WHERE ticket_id = %s AND kind = ANY(%s)"
        " AND fired_at IS NULL AND cancelled_at IS NULL", (at, ticket_id, list(kinds)))


async def postpone(conn: Connection, ticket_id: int, by: timedelta) -> None:
    """An approved extension moves every pending deadline of the ticket."""
    await conn.execute(
        "UPDATE ticket_timers SET due_at = due_at + %s WHERE ticket_id = %s"
        " AND kind IN ('accept', 'handle', 'overall') AND fired_at IS NULL"
        " AND cancelled_at IS NULL", (by, ticket_id))


async def claim_due(conn: Connection, now: datetime, limit: int = 100) -> list[Timer]:
    """Due timers, locked for this transaction and marked fired (inside a transaction)."""
    cur = conn.cursor(row_factory=class_row(Timer))
    await cur.execute(
        "UPDATE ticket_timers SET fired_at = %s WHERE id IN ("
        " SELECT id FROM ticket_timers WHERE due_at <= %s AND fired_at IS NULL"
        " AND cancelled_at IS NULL ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING id, ticket_id, kind, level, due_at", (now, now, limit))
    return sorted(await cur.fetchall(), key=lambda t: (t.due_at, t.id))


async def pending(conn: Connection, ticket_id: int) -> list[Timer]:
    cur = conn.cursor(row_factory=class_row(Timer))
    await cur.execute(
        "SELECT id, ticket_id, kind, level, due_at FROM ticket_timers WHERE ticket_id = %s"
        " AND fired_at IS NULL AND cancelled_at IS NULL ORDER BY due_at, id", (ticket_id,))
    return await cur.fetchall()
