"""Notification rows (``notifications``) and the outbound senders' attempts
(``notification_attempts``).

A ``ws`` row is one message to one person's phone, with its delivered/read receipts; any other
channel is one ticket change for one outbound notifier, ``pending`` until delivered or failed.
The rules (who gets what, when to retry) are in center/services/notify/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from center.store.db import Connection


@dataclass(frozen=True)
class Undelivered:
    """A phone notification not yet delivered."""

    id: int
    ticket_id: int
    reason: str


@dataclass(frozen=True)
class OutboundRow:
    """What a sender needs of an outbound notification."""

    notifier: str
    payload: dict[str, Any]
    attempts: int
    status: str


# --- phones (channel 'ws') ------------------------------------------------------------------

async def add_phones(conn: Connection, rows: Sequence[tuple[int, str, str, str]],
                     at: datetime) -> list[int]:
    """Messages for phones, one per ``(ticket_id, person_id, event, reason)``; their ids, in
    order. One pipelined ``executemany``, so a batch of changes costs about one round trip, not
    one per row: at 1,000 alerts/s, where nearly every alert changes a ticket whose assignee
    gets it, that was a thousand awaited round trips a second in the one writer task that
    stands between a change and the phones (issue 16)."""
    if not rows:
        return []
    ids = []
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notifications (ticket_id, channel, person_id, event, reason,"
            " created_at) VALUES (%s, 'ws', %s, %s, %s, %s) RETURNING id",
            [(ticket_id, person_id, event, reason, at)
             for ticket_id, person_id, event, reason in rows], returning=True)
        while True:
            row = await cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                break
    return ids


async def undelivered(conn: Connection, person_id: str, limit: int) -> list[Undelivered]:
    """The person's newest ``limit`` undelivered phone notifications, oldest first."""
    cur = conn.cursor(row_factory=class_row(Undelivered))
    await cur.execute(
        "SELECT id, ticket_id, reason FROM notifications"
        " WHERE channel = 'ws' AND person_id = %s AND delivered_at IS NULL"
        " ORDER BY id DESC LIMIT %s", (person_id, limit))
    return list(reversed(await cur.fetchall()))


async def mark_delivered(conn: Connection, person_id: str, ids: Sequence[int],
                         at: datetime) -> None:
    """Delivered receipts: only the person's own rows, each only once."""
    await mark_delivered_many(conn, [(i, person_id, at) for i in ids])


async def mark_delivered_many(conn: Connection,
                              receipts: Sequence[tuple[int, str, datetime]]) -> None:
    """``mark_delivered`` for many (notification id, person id, at) in one statement: a
    receipt per message pushed, one statement each, was the center's largest cost per alert
    at 1,000 alerts/s (docs/performance.md, "CPU per alert by stage")."""
    if not receipts:
        return
    await conn.execute(
        "UPDATE notifications n SET delivered_at = v.at, status = 'delivered'"
        " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v (id, person_id, at)"
        " WHERE n.id = v.id AND n.channel = 'ws' AND n.person_id = v.person_id"
        " AND n.delivered_at IS NULL",
        ([r[0] for r in receipts], [r[1] for r in receipts], [r[2] for r in receipts]))


async def mark_read(conn: Connection, person_id: str, at: datetime, *,
                    notification_id: int | None, ticket_id: int | None) -> None:
    """A read receipt names a notification, a ticket (everything about it so far), or both
    (everything about that ticket up to that notification). Only one's own rows."""
    where = ["channel = 'ws'", "person_id = %s", "read_at IS NULL"]
    args: list[object] = [person_id]
    if ticket_id is not None:
        where.append("ticket_id = %s")
        args.append(ticket_id)
        if notification_id is not None:
            where.append("id <= %s")
            args.append(notification_id)
    else:
        where.append("id = %s")
        args.append(notification_id)
    await conn.execute(
        "UPDATE notifications SET read_at = %s, delivered_at = coalesce(delivered_at, %s),"
        f" status = 'delivered' WHERE {' AND '.join(where)}", (at, at, *args))


# --- outbound notifiers ---------------------------------------------------------------------

async def add_outbound(conn: Connection, ticket_id: int, channel: str, notifier: str,
                       event: str, reason: str, payload: dict[str, Any], at: datetime) -> int:
    """A ``pending`` row for one notifier, due at once; its id."""
    cur = await conn.execute(
        "INSERT INTO notifications (ticket_id, channel, notifier, event,"
        " reason, payload, created_at, next_attempt_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (ticket_id, channel, notifier, event, reason, Jsonb(payload), at, at))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def pending_outbound(conn: Connection) -> list[tuple[int, datetime | None]]:
    """(id, next attempt time) of every outbound row still ``pending``, oldest first."""
    cur = await conn.execute(
        "SELECT id, next_attempt_at FROM notifications"
        " WHERE channel <> 'ws' AND status = 'pending' ORDER BY id")
    return [(int(nid), next_at) for nid, next_at in await cur.fetchall()]


async def outbound(conn: Connection, notification_id: int) -> OutboundRow | None:
    cur = conn.cursor(row_factory=class_row(OutboundRow))
    await cur.execute(
        "SELECT notifier, payload, attempts, status FROM notifications"
        " WHERE id = %s", (notification_id,))
    return await cur.fetchone()


async def record_attempt(conn: Connection, notification_id: int, notifier: str, attempt: int,
                         at: datetime, *, ok: bool, status_code: int | None, error: str,
                         response: str, duration_ms: int, status: str,
                         next_attempt_at: datetime | None) -> None:
    """One attempt's row, and the notification's new ``status`` (delivered at ``at`` when
    ``ok``); call inside a transaction so that both land or neither."""
    await conn.execute(
        "INSERT INTO notification_attempts (notification_id, notifier, attempt, at,"
        " ok, status_code, error, response, duration_ms)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (notification_id, notifier, attempt, at, ok, status_code, error, response,
         duration_ms))
    await conn.execute(
        "UPDATE notifications SET attempts = %s, status = %s, next_attempt_at = %s,"
        " delivered_at = %s WHERE id = %s",
        (attempt, status, next_attempt_at, at if ok else None, notification_id))
