"""Tickets in the database: open one per place, attach repeats, and move them through the loop.

Every change goes through ``apply()``: the state machine decides, one UPDATE guarded by
``WHERE state = <expected>`` writes, the ledger row and the deadline timers follow in the same
transaction, so a concurrent change can never be lost or half-done. Callers push the returned
``Change`` to screens after the commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from center.domain import ticket_notes
from center.domain.context import Context
from center.domain.ticket_states import IllegalTransition, is_open, next_state
from center.platform.metrics import TICKET_TRANSITIONS
from center.store import timers
from wire.protocol import Alert


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ticket_columns(table: str = "") -> str:
    """The Ticket row's columns, for a SELECT or RETURNING read with ``class_row(Ticket)``;
    qualified by ``table`` where a statement joins another that has the same names."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + name for name in Ticket.__dataclass_fields__)


#: Every query that reads Ticket rows names these columns (and only these).
TICKET_COLUMNS = ticket_columns()


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


@dataclass
class Change:
    """A ticket after a change, and who must hear about it (beyond the wall and assignee)."""

    ticket: Ticket
    created: bool = False
    notify: dict[str, str] = field(default_factory=dict)  # person id -> reason


class TicketNotFound(LookupError):
    pass




async def _ledger(conn: AsyncConnection, ticket_id: int, at: datetime, actor_id: str,
                  action: str, from_state: str | None, to_state: str, note: str = "",
                  alert_id: UUID | None = None, attachments: list[int] | None = None) -> None:
    await conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor_id, action, from_state, to_state, note,"
        " alert_id, attachments) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (ticket_id, at, actor_id, action, from_state, to_state, note, alert_id,
         attachments or []),
    )


async def _register(conn: AsyncConnection, ctx: Context, *, source: str, event_type: str,
                    micro_grid: str | None, actor_id: str, values: dict[str, Any],
                    alert_id: UUID | None = None) -> Change:
    """Insert a registered ticket, then route and dispatch it. ``values`` are extra columns."""
    at = ctx.clock.now()
    emergency = ctx.in_emergency(micro_grid)
    cols = {"source": source, "event_type": event_type, "state": "registered",
            "micro_grid_id": micro_grid, "grid_id": ctx.district.grid_of(micro_grid),
            "opened_at": at, "updated_at": at, "emergency": emergency,
            "priority": ctx.limits.emergency.priority if emergency else 0,
            "due_at": ctx.limits.due(event_type, "overall", at, emergency=emergency),
            "public_token": secrets.token_urlsafe(12), **values}
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        f"INSERT INTO tickets ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        f" RETURNING {TICKET_COLUMNS}", list(cols.values()))
    ticket = await cur.fetchone()
    assert ticket is not None
    await _ledger(conn, ticket.id, at, actor_id, "register", None, "registered",
                  alert_id=alert_id)
    await timers.schedule(conn, ticket.id, "overall", ticket.due_at)
    change = await dispatch_to_owner(conn, ctx, ticket)
    change.created = True
    return change


async def dispatch_to_owner(conn: AsyncConnection, ctx: Context, ticket: Ticket) -> Change:
    """Route a registered ticket: on-duty A post, else B post, else the micro-grid leader.

    With nobody to own the place (outside every micro-grid), it stays registered and waits on
    the wall screen for an operator."""
    owner = ctx.district.owner_of(ticket.micro_grid_id, ctx.clock.now())
    if owner is None:
        return Change(ticket)
    return await apply(conn, ctx, ticket.id, "dispatch", actor_id="system", role="system",
                       note=ticket_notes.routed(owner.id, owner.role, owner.post),
                       assignee_id=owner.id)


async def open_or_attach(conn: AsyncConnection, ctx: Context, alert: Alert) -> Change:
    """The open ticket for the alert's place, created and dispatched if there was none.

    Concurrent alerts for one place meet at the partial unique index: exactly one INSERT wins,
    the others attach to its ticket. A new violation at a place whose ticket is already handled
    means the fix did not hold: the camera sends the ticket back for rework.
    """
    return await open_or_attach_many(conn, ctx, [alert])


async def open_or_attach_many(conn: AsyncConnection, ctx: Context,
                              alerts: Sequence[Alert]) -> Change:
    """``open_or_attach`` for a run of alerts (``new``/``update``, no ``end``) for one place, in
    arrival order, with one UPDATE: the same end state as attaching them one by one.

    ``alert_count`` grows by the run's length and ``last_alert_id`` is its last alert; a ticket
    that has to be opened starts from the first. Rework happens when the ticket is handled and
    any alert of the run is ``new`` (attaching one by one, the first such alert would rework
    it and the rest would attach to the reworked ticket)."""
    first, last = alerts[0], alerts[-1]
    assert all((a.camera_id, a.zone_id, a.event_type) == (first.camera_id, first.zone_id,
               first.event_type) and a.kind != "end" for a in alerts), "one place, no end"
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        "UPDATE tickets SET alert_count = alert_count + %s, last_alert_id = %s, updated_at = %s"
        " WHERE camera_id = %s AND zone_id = %s AND event_type = %s AND is_open"
        f" RETURNING {TICKET_COLUMNS}",
        (len(alerts), last.alert_id, ctx.clock.now(), first.camera_id, first.zone_id,
         first.event_type))
    ticket = await cur.fetchone()
    if ticket is None:
        try:
            async with conn.transaction():  # a savepoint: losing the race must not abort ours
                return await _register(
                    conn, ctx, source="camera", event_type=first.event_type,
                    micro_grid=ctx.district.micro_grid_of(first.camera_id),
                    actor_id="camera:" + first.camera_id, alert_id=first.alert_id,
                    values={"camera_id": first.camera_id, "zone_id": first.zone_id,
                            "alert_count": len(alerts), "first_alert_id": first.alert_id,
                            "last_alert_id": last.alert_id})
        except UniqueViolation:  # another alert for this place opened it first: attach
            return await open_or_attach_many(conn, ctx, alerts)
    violation = next((a for a in alerts if a.kind == "new"), None)
    if ticket.state == "handled" and violation is not None:
        return await apply(conn, ctx, ticket.id, "rework",
                           actor_id="camera:" + violation.camera_id, role="camera",
                           note=ticket_notes.CAMERA_AGAIN,
                           alert_id=violation.alert_id)
    return Change(ticket)


async def attach_to_open(conn: AsyncConnection, ctx: Context,
                         runs: Sequence[Sequence[Alert]]) -> list[Change | None]:
    """The common case of ``open_or_attach_many`` for many places at once, with one UPDATE:
    each run (one place's alerts, no ``end``) attaches to its place's open ticket when that
    ticket is not ``handled``. Returns a Change per run, None where the run still needs
    ``open_or_attach_many`` (no open ticket: one must be opened; handled: maybe rework)."""
    if not runs:
        return []
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(
        "WITH v AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[],"
        "                                %s::uuid[]) AS v (camera_id, zone_id, event_type, n,"
        "                                                  last_alert)),"
        " target AS (SELECT t.id AS tid, v.n, v.last_alert FROM tickets t"
        "            JOIN v USING (camera_id, zone_id, event_type)"
        "            WHERE t.is_open AND t.state <> 'handled'"
        "            ORDER BY t.id FOR NO KEY UPDATE OF t)"  # one lock order; and no
        # wait on the foreign-key share locks of notification rows (nor they on us)
        " UPDATE tickets SET alert_count = alert_count + target.n,"
        " last_alert_id = target.last_alert, updated_at = %s"
        f" FROM target WHERE tickets.id = target.tid RETURNING {ticket_columns('tickets')}",
        ([r[0].camera_id for r in runs], [r[0].zone_id for r in runs],
         [r[0].event_type for r in runs], [len(r) for r in runs], [r[-1].alert_id for r in runs],
         ctx.clock.now()))
    attached = {(t.camera_id, t.zone_id, t.event_type): t for t in await cur.fetchall()}
    return [Change(t) if (t := attached.get((r[0].camera_id, r[0].zone_id, r[0].event_type)))
            else None for r in runs]


async def intake(conn: AsyncConnection, ctx: Context, *, source: str, event_type: str,
                 lon: float, lat: float, description: str, reporter: str | None,
                 actor_id: str, photo: tuple[bytes, str] | None = None) -> Change:
    """A case reported by hand (a worker's patrol photo, a resident, an Open311 client),
    routed by where it is. Its photo (data, content type) becomes the case's picture and is
    in the ledger's ``register`` row, so whoever handles the case sees what was reported."""
    change = await _register(
        conn, ctx, source=source, event_type=event_type,
        micro_grid=ctx.district.micro_grid_at(lon, lat), actor_id=actor_id,
        values={"lon": lon, "lat": lat, "description": description, "reporter": reporter})
    if photo is None:
        return change
    aid = await add_attachment(conn, ctx, change.ticket.id, photo[0], photo[1], actor_id)
    await conn.execute("UPDATE ticket_events SET attachments = attachments || %s::bigint"
                       " WHERE ticket_id = %s AND action = 'register'", (aid, change.ticket.id))
    await conn.execute("UPDATE tickets SET photo_id = %s WHERE id = %s", (aid, change.ticket.id))
    change.ticket = replace(change.ticket, photo_id=aid)
    return change


async def get(conn: AsyncConnection, ticket_id: int, *, for_update: bool = False) -> Ticket:
    cur = conn.cursor(row_factory=class_row(Ticket))
    # NO KEY: ticket updates never change its id, so rows referencing it (notifications,
    # ledger) can still take their foreign-key share locks instead of deadlocking with us.
    lock = " FOR NO KEY UPDATE" if for_update else ""
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = %s{lock}", (ticket_id,))
    ticket = await cur.fetchone()
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return ticket


async def get_many(conn: AsyncConnection, ticket_ids: Sequence[int]) -> list[Ticket]:
    """The tickets of these ids that exist, in no particular order (no lock)."""
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ANY(%s)",
                      (list(ticket_ids),))
    return await cur.fetchall()


async def by_token(conn: AsyncConnection, token: str) -> Ticket:
    cur = conn.cursor(row_factory=class_row(Ticket))
    await cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE public_token = %s", (token,))
    ticket = await cur.fetchone()
    if ticket is None:
        raise TicketNotFound("no such ticket")
    return ticket


async def apply(conn: AsyncConnection, ctx: Context, ticket_id: int, action: str, *,
                actor_id: str, role: str, note: str = "", alert_id: UUID | None = None,
                assignee_id: str | None = None, attachments: list[int] | None = None,
                satisfaction: int | None = None, extension_min: int | None = None) -> Change:
    """Take ``action`` on a ticket, or raise IllegalTransition / TicketNotFound.

    Must run inside a transaction: the state update, its ledger row and its timers land
    together. The per-action effects below are the loop's rules of time and ownership.
    """
    current = await get(conn, ticket_id, for_update=True)
    to_state = next_state(current.state, action, role)
    at = ctx.clock.now()
    emergency = current.emergency
    sets: dict[str, Any] = {"state": to_state, "is_open": is_open(to_state), "updated_at": at}
    notify: dict[str, str] = {}
    stage_timer: tuple[str, datetime] | None = None

    if action in ("dispatch", "reassign", "rework"):
        # A dispatch that names nobody goes where routing would send it (a returned case,
        # dispatched again by its leader).
        owner = ctx.district.owner_of(current.micro_grid_id, at) if action == "dispatch" else None
        target = assignee_id or current.assignee_id or (owner.id if owner else None)
        if target is None:
            raise IllegalTransition(f"{action} needs an assignee")
        if ctx.role_of(target) not in ("worker", "leader", "department"):
            raise IllegalTransition(f"{target!r} cannot own a case")
        due = ctx.limits.due(current.event_type, "accept", at, emergency=emergency)
        sets |= {"assignee_id": target, "dispatched_at": at, "stage_due_at": due,
                 "escalation_level": 0, "acknowledged_by": None}
        if action == "rework":
            sets["rework_count"] = current.rework_count + 1
        await timers.cancel(conn, ticket_id, ("accept", "handle", "escalate"), at)
        stage_timer = ("accept", due)
        notify[target] = {"dispatch": "new", "reassign": "reassigned", "rework": "rework"}[action]
        if current.assignee_id not in (None, target):
            # Their phone still shows the case: it must hear that the case left them.
            notify[current.assignee_id] = "reassigned away"
    elif action == "return":
        sets |= {"assignee_id": None, "stage_due_at": None}
        await timers.cancel(conn, ticket_id, ("accept", "handle", "escalate"), at)
        leader = ctx.district.leader_of(current.micro_grid_id)
        if leader is not None:
            notify[leader.id] = "returned"
    elif action == "accept":
        due = ctx.limits.due(current.event_type, "handle", at, emergency=emergency)
        sets |= {"accepted_at": at, "stage_due_at": due, "escalation_level": 0,
                 "acknowledged_by": None}
        await timers.cancel(conn, ticket_id, ("accept", "escalate"), at)
        stage_timer = ("handle", due)
    elif action == "resolve":
        sets |= {"handled_at": at, "stage_due_at": None}
        await timers.cancel(conn, ticket_id, ("handle", "escalate"), at)
    elif action == "verify":
        sets |= {"verified_at": at}
        await timers.schedule(conn, ticket_id, "evaluate",
                              at + timedelta(minutes=ctx.limits.evaluate_within_min))
    elif action == "rate":
        if satisfaction is None or not 1 <= satisfaction <= 5:
            raise IllegalTransition("rate needs a satisfaction score from 1 to 5")
        sets["satisfaction"] = satisfaction
    elif action in ("close", "void"):
        sets["closed_at"] = at
        await timers.cancel(conn, ticket_id, None, at)
    elif action == "request_extension":
        if extension_min is None or extension_min <= 0:
            raise IllegalTransition("request_extension needs extension_min > 0")
        sets["extension_min"] = extension_min
        leader = ctx.district.leader_of(current.micro_grid_id)
        if leader is not None:
            notify[leader.id] = "extension requested"
    elif action == "approve_extension":
        if not current.extension_min:
            raise IllegalTransition("no extension was requested")
        grant = timedelta(minutes=current.extension_min)
        sets |= {"extension_min": None,
                 "due_at": current.due_at + grant if current.due_at else None,
                 "stage_due_at": current.stage_due_at + grant if current.stage_due_at else None}
        await timers.postpone(conn, ticket_id, grant)
        if current.assignee_id:
            notify[current.assignee_id] = "extension approved"
    elif action == "acknowledge":
        sets["acknowledged_by"] = actor_id
        await timers.cancel(conn, ticket_id, ("escalate",), at)
    if action in ("return", "rework"):
        sets["sent_back"] = Jsonb({"action": action, "note": note, "actor_id": actor_id,
                                   "at": at.isoformat()})

    cur = conn.cursor(row_factory=class_row(Ticket))
    assignments = ", ".join(f"{k} = %s" for k in sets)
    await cur.execute(
        f"UPDATE tickets SET {assignments} WHERE id = %s AND state = %s RETURNING {TICKET_COLUMNS}",
        (*sets.values(), ticket_id, current.state))
    updated = await cur.fetchone()
    if updated is None:
        raise IllegalTransition(f"ticket {ticket_id} changed state concurrently")
    await _ledger(conn, ticket_id, at, actor_id, action, current.state, to_state, note, alert_id,
                  attachments)
    TICKET_TRANSITIONS.labels(action, to_state).inc()
    if stage_timer is not None:
        await timers.schedule(conn, ticket_id, stage_timer[0], stage_timer[1])
    change = Change(updated, notify=notify)
    if action == "rate":  # rated: the loop is complete, close the ledger
        change = await apply(conn, ctx, ticket_id, "close", actor_id="system", role="system",
                             note=ticket_notes.CLOSED_AFTER_RATING)
    return change


async def escalate(conn: AsyncConnection, ctx: Context, ticket: Ticket, level: int,
                   reason: str) -> Change:
    """Raise a ticket to ``level`` and tell that level's people; the next level follows after
    ``escalate_every_min`` unless someone acknowledges first."""
    targets = ctx.district.escalation_targets(ticket.micro_grid_id, ticket.event_type, level)
    change = await apply(conn, ctx, ticket.id, "escalate", actor_id="system", role="system",
                         note=ticket_notes.escalated(level, reason, [p.id for p in targets]))
    await conn.execute("UPDATE tickets SET escalation_level = %s WHERE id = %s",
                       (level, ticket.id))
    if level < 2:
        await timers.schedule(
            conn, ticket.id, "escalate",
            ctx.clock.now() + timedelta(minutes=ctx.limits.escalate_every_min), level + 1)
    change.ticket = await get(conn, ticket.id)
    change.notify = {p.id: f"escalated (level {level})" for p in targets}
    return change


async def _violation_of(conn: AsyncConnection, ticket_id: int) -> UUID | None:
    """The alert that opened the case, or the one that last re-opened it (a camera rework)."""
    cur = await conn.execute(
        "SELECT alert_id FROM ticket_events WHERE ticket_id = %s AND alert_id IS NOT NULL"
        " AND action IN ('register', 'rework') ORDER BY id DESC LIMIT 1", (ticket_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def camera_reports_clear(conn: AsyncConnection, ctx: Context, alert: Alert) -> Change | None:
    """An ``end`` alert: the camera sees the place clear. A handled ticket there is verified
    only by the ``end`` of the violation that opened (or re-opened) it: the end of some other
    alert says nothing about that violation, and an ``end`` with a made-up alert id must not
    close a case that was "resolved" without a fix. Anything else is recorded in the
    ledger."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, state FROM tickets WHERE camera_id = %s AND zone_id = %s"
        " AND event_type = %s AND is_open FOR NO KEY UPDATE",  # no resolve may slip between
        (alert.camera_id, alert.zone_id, alert.event_type))
    row = await cur.fetchone()
    if row is None:
        return None
    actor = "camera:" + alert.camera_id
    note = ticket_notes.CAMERA_CLEAR_EARLY
    if row["state"] == "handled":
        violation = await _violation_of(conn, row["id"])
        if violation == alert.alert_id:
            return await apply(conn, ctx, row["id"], "verify", actor_id=actor, role="camera",
                               note=ticket_notes.CAMERA_CLEAR, alert_id=alert.alert_id)
        note = ticket_notes.CAMERA_CLEAR_OTHER.format(ended=alert.alert_id, violation=violation)
    await _ledger(conn, row["id"], ctx.clock.now(), actor, "camera_clear", row["state"],
                  row["state"], note, alert.alert_id)
    return Change(await get(conn, row["id"]))


async def list_tickets(conn: AsyncConnection, *, open_only: bool = False,
                       assignee_id: str | None = None, state: str | None = None,
                       micro_grid_id: str | None = None, grid_id: str | None = None,
                       event_type: str | None = None, overdue_at: datetime | None = None,
                       limit: int = 100) -> list[Ticket]:
    """Open tickets come highest priority first, then by the nearest deadline."""
    where = ["TRUE"]
    args: list[object] = []
    for col, val in (("assignee_id", assignee_id), ("state", state),
                     ("micro_grid_id", micro_grid_id), ("grid_id", grid_id),
                     ("event_type", event_type)):
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


async def newest_opened(conn: AsyncConnection, *, limit: int, ids: Sequence[int] | None = None,
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


async def ledger(conn: AsyncConnection, ticket_id: int) -> list[LedgerEntry]:
    cur = conn.cursor(row_factory=class_row(LedgerEntry))
    await cur.execute(
        "SELECT id, ticket_id, at, actor_id, action, from_state, to_state, note, alert_id,"
        " attachments FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,))
    return await cur.fetchall()


async def add_attachment(conn: AsyncConnection, ctx: Context, ticket_id: int, data: bytes,
                         content_type: str, uploaded_by: str) -> int:
    cur = await conn.execute(
        "INSERT INTO attachments (ticket_id, created_at, uploaded_by, content_type, data)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (ticket_id, ctx.clock.now(), uploaded_by, content_type, data))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def are_its_attachments(conn: AsyncConnection, ticket_id: int,
                              attachment_ids: Sequence[int]) -> bool:
    """Whether every id is an upload of this ticket (an action may cite only its own)."""
    if not attachment_ids:
        return True
    cur = await conn.execute(
        "SELECT count(*) FROM attachments WHERE ticket_id = %s AND id = ANY(%s)",
        (ticket_id, list(attachment_ids)))
    row = await cur.fetchone()
    return row is not None and row[0] == len(set(attachment_ids))


async def first_attachment(conn: AsyncConnection, ticket_id: int) -> tuple[str, bytes] | None:
    """The ticket's first uploaded photo (content type, data), if it has any."""
    cur = await conn.execute(
        "SELECT content_type, data FROM attachments WHERE ticket_id = %s ORDER BY id LIMIT 1",
        (ticket_id,))
    row = await cur.fetchone()
    return None if row is None else (row[0], bytes(row[1]))


async def attachment_list(conn: AsyncConnection, ticket_id: int) -> list[tuple[int, str, datetime]]:
    """(id, uploaded_by, created_at) of a ticket's photos, oldest first."""
    cur = await conn.execute(
        "SELECT id, uploaded_by, created_at FROM attachments WHERE ticket_id = %s ORDER BY id",
        (ticket_id,))
    return [(int(r[0]), r[1], r[2]) for r in await cur.fetchall()]


async def attachment(conn: AsyncConnection, ticket_id: int,
                     attachment_id: int) -> tuple[str, bytes] | None:
    cur = await conn.execute(
        "SELECT content_type, data FROM attachments WHERE id = %s AND ticket_id = %s",
        (attachment_id, ticket_id))
    row = await cur.fetchone()
    return None if row is None else (row[0], bytes(row[1]))

