"""Tickets, their ledger (``ticket_events``) and their photos (``attachments``) in the database.

Every statement about these tables is here; the rules that decide what to write are in
center/services/tickets.py, which holds the transaction. Who may see which tickets is written
once, here, as a ``Scope``: the SQL condition of every list, and the same rule for one row read
by id (center/services/auth.py ``Principal.scope`` builds it from the person).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from center.store.db import Connection


@dataclass(frozen=True)
class Ticket:
    id: int
    source: str
    camera_id: str | None
    zone_id: str | None
    event_type: str
    state: str
    micro_grid_id: str | None
    grid_id: str | None
    assignee_id: str | None
    lon: float | None
    lat: float | None
    description: str
    reporter: str | None
    priority: int
    emergency: bool
    opened_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    accepted_at: datetime | None
    handled_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    due_at: datetime | None
    stage_due_at: datetime | None
    escalation_level: int
    acknowledged_by: str | None
    rework_count: int
    extension_min: int | None
    satisfaction: int | None
    alert_count: int
    first_alert_id: UUID | None
    last_alert_id: UUID | None
    public_token: str
    #: The photo a hand-reported case was filed with (an attachment id).
    photo_id: int | None = None
    #: The last return or rework: {"action", "note", "actor_id", "at"} (migration 0016).
    sent_back: dict[str, Any] | None = None
    #: The line department whose queue the case is in, after a hand-off (migration 0024).
    department_id: str | None = None
    #: Opened by a simulated alert (the demo's synthetic ones; migration 0026).
    simulated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ticket_columns(table: str = "") -> str:
    """The Ticket row's columns, for a SELECT or RETURNING read with ``class_row(Ticket)``;
    qualified by ``table`` where a statement joins another that has the same names."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + name for name in Ticket.__dataclass_fields__)


#: Every query that reads Ticket rows names these columns (and only these).
TICKET_COLUMNS = ticket_columns()
#: Ticket columns written as JSON.
_JSON_COLUMNS = frozenset({"sent_back"})


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
    attachments: list[int]


class TicketNotFound(LookupError):
    pass


class OpenTicketExists(Exception):
    """The place already has an open ticket (the partial unique index on open tickets per
    camera, zone and event type): a concurrent alert for the place opened it first."""


# --- who sees which tickets -----------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The tickets one person may see: every ticket, or those assigned to ``person_id`` plus
    those in ``micro_grids`` (a leader's area), of ``event_types`` (a department's) or handed
    off to one of ``departments`` (a department's queue).

    One rule in two forms side by side, so they cannot drift: ``condition()`` for the SQL of a
    list, ``admits()`` for a row already read (a ticket by id, a pushed event)."""

    everything: bool = False
    person_id: str | None = None
    micro_grids: frozenset[str] | None = None
    event_types: frozenset[str] | None = None
    departments: frozenset[str] | None = None

    def condition(self, table: str = "") -> tuple[str, list[object]]:
        """A WHERE condition (and its arguments) that holds for the tickets in scope."""
        if self.everything:
            return "TRUE", []
        prefix = f"{table}." if table else ""
        tests: list[str] = []
        args: list[object] = []
        if self.person_id is not None:
            tests.append(f"{prefix}assignee_id = %s")
            args.append(self.person_id)
        for column, values in (("micro_grid_id", self.micro_grids),
                               ("event_type", self.event_types),
                               ("department_id", self.departments)):
            if values is not None:
                tests.append(f"{prefix}{column} = ANY(%s)")
                args.append(sorted(values))
        return (f"({' OR '.join(tests)})" if tests else "FALSE"), args

    def admits(self, micro_grid_id: str | None, event_type: str,
               assignee_id: str | None, department_id: str | None = None) -> bool:
        """Whether a ticket with these values is in scope (what ``condition()`` selects)."""
        return (self.everything
                or (self.person_id is not None and assignee_id == self.person_id)
                or (self.micro_grids is not None and micro_grid_id in self.micro_grids)
                or (self.event_types is not None and event_type in self.event_types)
                or (self.departments is not None and department_id in self.departments))


#: Everyone's tickets: the wall roles, and the center's own loops.
EVERYTHING = Scope(everything=True)


# --- tickets --------------------------------------------------------------------------------

async def insert(conn: Connection, cols: dict[str, Any]) -> Ticket:
    """A new ticket row with these column values, or OpenTicketExists."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    try:
        await cur.execute(
            f"INSERT INTO tickets ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
            f" RETURNING {TICKET_COLUMNS}", list(cols.values()))
    except UniqueViolation as exc:
        raise OpenTicketExists(str(exc)) from exc
    ticket = await cur.fetchone()
    assert ticket is not None
    return ticket


async def attach_to_place(conn: Connection, camera_id: str, zone_id: str, event_type: str, *,
                          count: int, last_alert_id: UUID, at: datetime) -> Ticket | None:
    """Count ``count`` more alerts (the last one ``last_alert_id``) on the place's open
    ticket; None when the place has none."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        "UPDATE tickets SET alert_count = alert_count + %s, last_alert_id = %s, updated_at = %s"
        " WHERE camera_id = %s AND zone_id = %s AND event_type = %s AND is_open"
        f" RETURNING {TICKET_COLUMNS}",
        (count, last_alert_id, at, camera_id, zone_id, event_type))
    return await cur.fetchone()


async def attach_to_open(conn: Connection, places: Sequence[tuple[str, str, str]],
                         counts: Sequence[int], last_alert_ids: Sequence[UUID],
                         at: datetime) -> list[Ticket]:
    """``attach_to_place`` for many places (camera, zone, event type) at once, with one UPDATE,
    skipping places whose open ticket is ``handled``; the tickets it changed, read in binary
    (a batch's worth of rows: psycopg parses text timestamps several times slower)."""
    cur = conn.cursor(row_factory=class_row(Ticket), binary=True)
    await cur.execute(
        # The arrays in binary (%b): far cheaper for psycopg to dump (center/store/alerts.py).
        "WITH v AS (SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::int[],"
        "                                %b::uuid[]) AS v (camera_id, zone_id, event_type, n,"
        "                                                  last_alert)),"
        " target AS (SELECT t.id AS tid, v.n, v.last_alert FROM tickets t"
        "            JOIN v USING (camera_id, zone_id, event_type)"
        "            WHERE t.is_open AND t.state <> 'handled'"
        "            ORDER BY t.id FOR NO KEY UPDATE OF t)"  # one lock order; and no
        # wait on the foreign-key share locks of notification rows (nor they on us)
        " UPDATE tickets SET alert_count = alert_count + target.n,"
        " last_alert_id = target.last_alert, updated_at = %s"
        f" FROM target WHERE tickets.id = target.tid RETURNING {ticket_columns('tickets')}",
        ([p[0] for p in places], [p[1] for p in places], [p[2] for p in places], list(counts),
         list(last_alert_ids), at))
    return await cur.fetchall()


async def lock_open_at_place(conn: Connection, camera_id: str, zone_id: str,
                             event_type: str) -> tuple[int, str] | None:
    """(id, state) of the place's open ticket, locked for this transaction so that no resolve
    may slip in before the caller's change; None when the place has none."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, state FROM tickets WHERE camera_id = %s AND zone_id = %s"
        " AND event_type = %s AND is_open FOR NO KEY UPDATE",
        (camera_id, zone_id, event_type))
    row = await cur.fetchone()
    return None if row is None else (row["id"], row["state"])


async def update_state(conn: Connection, ticket_id: int, expected_state: str,
                       sets: dict[str, Any]) -> Ticket | None:
    """Write ``sets`` (column -> value) if the ticket is still in ``expected_state``; None when
    a concurrent change moved it first."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    assignments = ", ".join(f"{k} = %s" for k in sets)
    values = [Jsonb(v) if k in _JSON_COLUMNS else v for k, v in sets.items()]
    await cur.execute(
        f"UPDATE tickets SET {assignments} WHERE id = %s AND state = %s RETURNING {TICKET_COLUMNS}",
        (*values, ticket_id, expected_state))
    return await cur.fetchone()


async def set_photo(conn: Connection, ticket_id: int, attachment_id: int) -> None:
    """The case's filing photo: on the ticket, and in its ledger's ``register`` row."""
    await conn.execute("UPDATE ticket_events SET attachments = attachments || %s::bigint"
                       " WHERE ticket_id = %s AND action = 'register'", (attachment_id, ticket_id))
    await conn.execute("UPDATE tickets SET photo_id = %s WHERE id = %s", (attachment_id, ticket_id))


async def get(conn: Connection, ticket_id: int, *, for_update: bool = False) -> Ticket:
    cur = conn.cursor(row_factory=class_row(Ticket))
    # NO KEY: ticket updates never change its id, so rows referencing it (notifications,
    # ledger) can still take their foreign-key share locks instead of deadlocking with us.
    lock = " FOR NO KEY UPDATE" if for_update else ""
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = %s{lock}", (ticket_id,))
    ticket = await cur.fetchone()
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return ticket


async def get_many(conn: Connection, ticket_ids: Sequence[int]) -> list[Ticket]:
    """The tickets of these ids that exist, in no particular order (no lock)."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ANY(%s)",
                      (list(ticket_ids),))
    return await cur.fetchall()


async def by_token(conn: Connection, token: str) -> Ticket:
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE public_token = %s", (token,))
    ticket = await cur.fetchone()
    if ticket is None:
        raise TicketNotFound("no such ticket")
    return ticket


async def list_tickets(conn: Connection, *, scope: Scope, open_only: bool = False,
                       assignee_id: str | None = None, state: str | None = None,
                       micro_grid_id: str | None = None, grid_id: str | None = None,
                       event_type: str | None = None, overdue_at: datetime | None = None,
                       department_id: str | None = None, limit: int = 100) -> list[Ticket]:
    """The tickets in ``scope`` that match every filter given. Open tickets come highest
    priority first, then by the nearest deadline."""
    seen, args = scope.condition()
    where = [seen]
    for col, val in (("assignee_id", assignee_id), ("state", state),
                     ("micro_grid_id", micro_grid_id), ("grid_id", grid_id),
                     ("event_type", event_type), ("department_id", department_id)):
        if val is not None:
            where.append(f"{col} = %s")
            args.append(val)
    if open_only:
        where.append("is_open")
    if overdue_at is not None:
        where.append("is_open AND (stage_due_at < %s OR due_at < %s)")
        args += [overdue_at, overdue_at]
    order = "priority DESC, stage_due_at NULLS LAST, id" if open_only else "id DESC"
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT %s",
        (*args, limit))
    return await cur.fetchall()


async def newest_opened(conn: Connection, *, limit: int, ids: Sequence[int] | None = None,
                        opened: tuple[datetime, datetime] | None = None,
                        event_types: Sequence[str] = (), states: Collection[str] = (),
                        not_states: Collection[str] = ()) -> list[Ticket]:
    """Tickets newest opened first (Open311's request lists): every filter given holds;
    ``opened`` is a window with both ends included."""
    where = ["TRUE"]
    args: list[object] = []
    if ids is not None:
        where.append("id = ANY(%s)")
        args.append(list(ids))
    if opened is not None:
        where.append("opened_at BETWEEN %s AND %s")
        args += list(opened)
    for test, values in (("event_type = ANY(%s)", event_types), ("state = ANY(%s)", states),
                         ("NOT (state = ANY(%s))", not_states)):
        if values:
            where.append(test)
            args.append(sorted(values))
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {' AND '.join(where)}"
                      " ORDER BY opened_at DESC, id DESC LIMIT %s", (*args, limit))
    return await cur.fetchall()


# --- the ledger -----------------------------------------------------------------------------

async def add_ledger_entry(conn: Connection, ticket_id: int, at: datetime, actor_id: str,
                           action: str, from_state: str | None, to_state: str, note: str = "",
                           alert_id: UUID | None = None,
                           attachments: list[int] | None = None) -> None:
    await conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor_id, action, from_state, to_state, note,"
        " alert_id, attachments) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (ticket_id, at, actor_id, action, from_state, to_state, note, alert_id,
         attachments or []),
    )


async def last_action_at(conn: Connection, ticket_id: int, action: str) -> datetime | None:
    """When ``action`` was last written to the ticket's ledger (None: never)."""
    cur = await conn.execute(
        "SELECT max(at) FROM ticket_events WHERE ticket_id = %s AND action = %s",
        (ticket_id, action))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def violation_of(conn: Connection, ticket_id: int) -> UUID | None:
    """The alert that opened the case, or the one that last re-opened it (a camera rework)."""
    cur = await conn.execute(
        "SELECT alert_id FROM ticket_events WHERE ticket_id = %s AND alert_id IS NOT NULL"
        " AND action IN ('register', 'rework') ORDER BY id DESC LIMIT 1", (ticket_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def ledger(conn: Connection, ticket_id: int) -> list[LedgerEntry]:
    cur = conn.cursor(row_factory=class_row(LedgerEntry))
    await cur.execute(
        "SELECT id, ticket_id, at, actor_id, action, from_state, to_state, note, alert_id,"
        " attachments FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,))
    return await cur.fetchall()


# --- photos ---------------------------------------------------------------------------------

async def add_attachment(conn: Connection, ticket_id: int, at: datetime, data: bytes,
                         content_type: str, uploaded_by: str) -> int:
    cur = await conn.execute(
        "INSERT INTO attachments (ticket_id, created_at, uploaded_by, content_type, data)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (ticket_id, at, uploaded_by, content_type, data))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def are_its_attachments(conn: Connection, ticket_id: int,
                              attachment_ids: Sequence[int]) -> bool:
    """Whether every id is an upload of this ticket (an action may cite only its own)."""
    if not attachment_ids:
        return True
    cur = await conn.execute(
        "SELECT count(*) FROM attachments WHERE ticket_id = %s AND id = ANY(%s)",
        (ticket_id, list(attachment_ids)))
    row = await cur.fetchone()
    return row is not None and row[0] == len(set(attachment_ids))


async def first_attachment(conn: Connection, ticket_id: int) -> tuple[str, bytes] | None:
    """The ticket's first uploaded photo (content type, data), if it has any."""
    cur = await conn.execute(
        "SELECT content_type, data FROM attachments WHERE ticket_id = %s ORDER BY id LIMIT 1",
        (ticket_id,))
    row = await cur.fetchone()
    return None if row is None else (row[0], bytes(row[1]))


async def attachment_list(conn: Connection, ticket_id: int) -> list[tuple[int, str, datetime]]:
    """(id, uploaded_by, created_at) of a ticket's photos, oldest first."""
    cur = await conn.execute(
        "SELECT id, uploaded_by, created_at FROM attachments WHERE ticket_id = %s ORDER BY id",
        (ticket_id,))
    return [(int(r[0]), r[1], r[2]) for r in await cur.fetchall()]


async def attachment(conn: Connection, ticket_id: int,
                     attachment_id: int) -> tuple[str, bytes] | None:
    cur = await conn.execute(
        "SELECT content_type, data FROM attachments WHERE id = %s AND ticket_id = %s",
        (attachment_id, ticket_id))
    row = await cur.fetchone()
    return None if row is None else (row[0], bytes(row[1]))
