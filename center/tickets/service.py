"""Tickets in the database: open one per place, attach repeats, and move them through the loop.

Every change goes through ``apply()``: an UPDATE guarded by ``WHERE state = <expected>`` and a
ledger row, in the caller's transaction, so a concurrent change can never be lost or half-done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from center.district import District
from center.protocol import Alert
from center.tickets.states import IllegalTransition, is_open, next_state


@dataclass(frozen=True)
class Ticket:
    id: int
    camera_id: str
    zone_id: str
    event_type: str
    state: str
    micro_grid_id: str | None
    assignee_id: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    alert_count: int
    first_alert_id: UUID
    last_alert_id: UUID

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    ticket_id: int
    at: datetime
    actor_id: str
    action: str
    from_state: str | None
    to_state: str
    note: str
    alert_id: UUID | None


class TicketNotFound(LookupError):
    pass


_COLS = ("id, camera_id, zone_id, event_type, state, micro_grid_id, assignee_id, opened_at, "
         "updated_at, closed_at, alert_count, first_alert_id, last_alert_id")


async def _ledger(conn: AsyncConnection, ticket_id: int, actor_id: str, action: str,
                  from_state: str | None, to_state: str, note: str = "",
                  alert_id: UUID | None = None) -> None:
    await conn.execute(
        "INSERT INTO ticket_events (ticket_id, actor_id, action, from_state, to_state, note,"
        " alert_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (ticket_id, actor_id, action, from_state, to_state, note, alert_id),
    )


async def open_or_attach(conn: AsyncConnection, alert: Alert,
                         district: District) -> tuple[Ticket, bool]:
    """The open ticket for the alert's place, created and dispatched if there was none.

    Returns (ticket, created). Concurrent alerts for one place meet at the partial unique
    index: exactly one INSERT wins, the others attach to its ticket.
    """
    micro_grid = district.micro_grid_of(alert.camera_id)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO tickets (camera_id, zone_id, event_type, state, micro_grid_id,"
        " first_alert_id, last_alert_id) VALUES (%s, %s, %s, 'registered', %s, %s, %s)"
        " ON CONFLICT (camera_id, zone_id, event_type) WHERE is_open DO UPDATE SET"
        "  alert_count = tickets.alert_count + 1, last_alert_id = EXCLUDED.last_alert_id,"
        "  updated_at = now()"
        f" RETURNING {_COLS}, (xmax = 0) AS created",
        (alert.camera_id, alert.zone_id, alert.event_type, micro_grid,
         alert.alert_id, alert.alert_id),
    )
    row = await cur.fetchone()
    assert row is not None
    created = row.pop("created")
    ticket = Ticket(**row)
    if not created:
        return ticket, False
    await _ledger(conn, ticket.id, "camera:" + alert.camera_id, "register", None,
                  "registered", alert_id=alert.alert_id)
    owner = district.owner_of(micro_grid)
    if owner is None:
        # Nobody owns this place (camera outside every micro-grid): it waits on the wall
        # screen for an operator to dispatch it by hand.
        return ticket, True
    ticket = await apply(conn, ticket.id, "dispatch", actor_id="system", role="system",
                         note=f"routed to {owner.id} ({owner.role} {owner.post or ''})".strip(),
                         assignee_id=owner.id)
    return ticket, True


async def get(conn: AsyncConnection, ticket_id: int, *, for_update: bool = False) -> Ticket:
    cur = conn.cursor(row_factory=class_row(Ticket))
    lock = " FOR UPDATE" if for_update else ""
    await cur.execute(f"SELECT {_COLS} FROM tickets WHERE id = %s{lock}", (ticket_id,))
    ticket = await cur.fetchone()
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return ticket


async def apply(conn: AsyncConnection, ticket_id: int, action: str, *, actor_id: str,
                role: str, note: str = "", alert_id: UUID | None = None,
                assignee_id: str | None = None) -> Ticket:
    """Take ``action`` on a ticket, or raise IllegalTransition / TicketNotFound.

    Must run inside a transaction: the state update and its ledger row land together.
    """
    current = await get(conn, ticket_id, for_update=True)
    to_state = next_state(current.state, action, role)
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        "UPDATE tickets SET state = %s, is_open = %s, updated_at = now(),"
        " assignee_id = COALESCE(%s, assignee_id),"
        " closed_at = CASE WHEN %s THEN NULL ELSE now() END"
        f" WHERE id = %s AND state = %s RETURNING {_COLS}",
        (to_state, is_open(to_state), assignee_id, is_open(to_state), ticket_id, current.state),
    )
    updated = await cur.fetchone()
    if updated is None:  # cannot happen under FOR UPDATE; kept as the guard the design relies on
        raise IllegalTransition(f"ticket {ticket_id} changed state concurrently")
    await _ledger(conn, ticket_id, actor_id, action, current.state, to_state, note, alert_id)
    return updated


async def open_ticket_at(conn: AsyncConnection, camera_id: str, zone_id: str,
                         event_type: str) -> Ticket | None:
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        f"SELECT {_COLS} FROM tickets WHERE camera_id = %s AND zone_id = %s"
        " AND event_type = %s AND is_open",
        (camera_id, zone_id, event_type),
    )
    return await cur.fetchone()


async def camera_reports_clear(conn: AsyncConnection, alert: Alert) -> Ticket | None:
    """An ``end`` alert: the camera sees the place clear. A handled ticket there is verified
    and closed by the camera; any other open ticket just records it in its ledger."""
    ticket = await open_ticket_at(conn, alert.camera_id, alert.zone_id, alert.event_type)
    if ticket is None:
        return None
    actor = "camera:" + alert.camera_id
    if ticket.state == "handled":
        return await apply(conn, ticket.id, "verify", actor_id=actor, role="camera",
                           note="camera sees the place clear", alert_id=alert.alert_id)
    await _ledger(conn, ticket.id, actor, "camera_clear", ticket.state, ticket.state,
                  "camera sees the place clear before the case was handled", alert.alert_id)
    return ticket


async def list_tickets(conn: AsyncConnection, *, open_only: bool = False,
                       assignee_id: str | None = None, state: str | None = None,
                       limit: int = 100) -> list[Ticket]:
    where, args = ["TRUE"], []
    if open_only:
        where.append("is_open")
    if assignee_id is not None:
        where.append("assignee_id = %s")
        args.append(assignee_id)
    if state is not None:
        where.append("state = %s")
        args.append(state)
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        f"SELECT {_COLS} FROM tickets WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
        (*args, limit),
    )
    return await cur.fetchall()


async def ledger(conn: AsyncConnection, ticket_id: int) -> list[LedgerEntry]:
    cur = conn.cursor(row_factory=class_row(LedgerEntry))
    await cur.execute(
        "SELECT id, ticket_id, at, actor_id, action, from_state, to_state, note, alert_id"
        " FROM ticket_events WHERE ticket_id = %s ORDER BY id",
        (ticket_id,),
    )
    return await cur.fetchall()
