"""Tickets: open one per place, attach repeats, and move them through the loop.

Every change goes through ``apply()``: the state machine decides, one UPDATE guarded by
``WHERE state = <expected>`` writes, the ledger row and the deadline timers follow in the same
transaction, so a concurrent change can never be lost or half-done. Callers push the returned
``Change`` to screens after the commit. The statements are in center/store/tickets.py; its
reads are this module's too (``get``, ``list_tickets``, ``ledger``...), so the layers above
find the whole ticket API here.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from center.domain import ticket_notes
from center.domain.context import Context
from center.domain.ticket_states import IllegalTransition, is_open, next_state
from center.platform.metrics import TICKET_TRANSITIONS
from center.services import nearest_worker
from center.store import tickets, timers
from center.store.db import Connection
from center.store.tickets import (
    EVERYTHING,
    LedgerEntry,
    OpenTicketExists,
    Scope,
    Ticket,
    TicketNotFound,
    are_its_attachments,
    attachment,
    attachment_list,
    by_token,
    first_attachment,
    get,
    get_many,
    ledger,
    list_tickets,
    newest_opened,
)
from wire.protocol import Alert

__all__ = [
    "EVERYTHING", "Change", "LedgerEntry", "Scope", "Ticket", "TicketNotFound",
    "add_attachment", "apply", "are_its_attachments", "attach_to_open", "attachment",
    "attachment_list", "by_token", "camera_reports_clear", "dispatch_to_owner", "escalate",
    "first_attachment", "get", "get_many", "handling_department", "intake", "intake_at_camera",
    "ledger",
    "list_tickets",
    "newest_opened", "open_or_attach", "open_or_attach_many",
]


@dataclass
class Change:
    """A ticket after a change, and who must hear about it (beyond the wall and assignee)."""

    ticket: Ticket
    created: bool = False
    notify: dict[str, str] = field(default_factory=dict)  # person id -> reason
    #: Only another alert at an open ticket (its count and last alert): nothing for anyone to
    #: act on, so the wall and the assignee's phone get the view with no notification row.
    touch: bool = False


async def _register(conn: Connection, ctx: Context, *, source: str, event_type: str,
                    micro_grid: str | None, actor_id: str, values: dict[str, Any],
                    alert_id: UUID | None = None, note: str = "") -> Change:
    """Insert a registered ticket, then route and dispatch it. ``values`` are extra columns;
    ``note`` goes on the ledger's ``register`` row."""
    at = ctx.clock.now()
    emergency = ctx.in_emergency(micro_grid)
    cols = {"source": source, "event_type": event_type, "state": "registered",
            "micro_grid_id": micro_grid, "grid_id": ctx.district.grid_of(micro_grid),
            "opened_at": at, "updated_at": at, "emergency": emergency,
            "priority": ctx.limits.emergency.priority if emergency else 0,
            "due_at": ctx.limits.due(event_type, "overall", at, emergency=emergency),
            "public_token": secrets.token_urlsafe(12), **values}
    ticket = await tickets.insert(conn, cols)
    await tickets.add_ledger_entry(conn, ticket.id, at, actor_id, "register", None, "registered",
                                   note, alert_id=alert_id)
    await timers.schedule(conn, ticket.id, "overall", ticket.due_at)
    change = await dispatch_to_owner(conn, ctx, ticket)
    change.created = True
    return change


async def dispatch_to_owner(conn: Connection, ctx: Context, ticket: Ticket) -> Change:
    """Route a registered ticket: on-duty A post, else B post, else the micro-grid leader;
    by setting (``presence.auto_assign_nearest``), the nearest on-duty worker of the
    micro-grid when the A post is off duty, busy or far (the suggestion, chosen).

    With nobody to own the place (outside every micro-grid), it stays registered and waits on
    the wall screen for an operator."""
    owner = ctx.district.owner_of(ticket.micro_grid_id, ctx.clock.now())
    if owner is None:
        return Change(ticket)
    if ctx.presence.auto_assign_nearest:
        _, _, nearest = await nearest_worker.choose(conn, ctx, ticket)
        owner = nearest.person if nearest is not None else owner
    return await apply(conn, ctx, ticket.id, "dispatch", actor_id="system", role="system",
                       note=ticket_notes.routed(owner.id, owner.role, owner.post),
                       assignee_id=owner.id)


async def open_or_attach(conn: Connection, ctx: Context, alert: Alert) -> Change:
    """The open ticket for the alert's place, created and dispatched if there was none.

    Concurrent alerts for one place meet at the partial unique index: exactly one INSERT wins,
    the others attach to its ticket. A new violation at a place whose ticket is already handled
    means the fix did not hold: the camera sends the ticket back for rework.
    """
    return await open_or_attach_many(conn, ctx, [alert])


async def open_or_attach_many(conn: Connection, ctx: Context,
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
    ticket = await tickets.attach_to_place(
        conn, first.camera_id, first.zone_id, first.event_type, count=len(alerts),
        last_alert_id=last.alert_id, at=ctx.clock.now())
    if ticket is None:
        try:
            async with conn.transaction():  # a savepoint: losing the race must not abort ours
                return await _register(
                    conn, ctx, source="camera", event_type=first.event_type,
                    micro_grid=ctx.district.micro_grid_of(first.camera_id),
                    actor_id="camera:" + first.camera_id, alert_id=first.alert_id,
                    values={"camera_id": first.camera_id, "zone_id": first.zone_id,
                            "alert_count": len(alerts), "first_alert_id": first.alert_id,
                            "last_alert_id": last.alert_id, "simulated": first.simulated})
        except OpenTicketExists:  # another alert for this place opened it first: attach
            return await open_or_attach_many(conn, ctx, alerts)
    violation = next((a for a in alerts if a.kind == "new"), None)
    if ticket.state == "handled" and violation is not None:
        return await apply(conn, ctx, ticket.id, "rework",
                           actor_id="camera:" + violation.camera_id, role="camera",
                           note=ticket_notes.CAMERA_AGAIN,
                           alert_id=violation.alert_id)
    return Change(ticket)


async def attach_to_open(conn: Connection, ctx: Context,
                         runs: Sequence[Sequence[Alert]]) -> list[Change | None]:
    """The common case of ``open_or_attach_many`` for many places at once, with one UPDATE:
    each run (one place's alerts, no ``end``) attaches to its place's open ticket when that
    ticket is not ``handled``. Returns a Change per run, None where the run still needs
    ``open_or_attach_many`` (no open ticket: one must be opened; handled: maybe rework)."""
    if not runs:
        return []
    changed = await tickets.attach_to_open(
        conn, [(r[0].camera_id, r[0].zone_id, r[0].event_type) for r in runs],
        [len(r) for r in runs], [r[-1].alert_id for r in runs], ctx.clock.now())
    attached = {(t.camera_id, t.zone_id, t.event_type): t for t in changed}
    return [Change(t, touch=True)
            if (t := attached.get((r[0].camera_id, r[0].zone_id, r[0].event_type)))
            else None for r in runs]


async def intake(conn: Connection, ctx: Context, *, source: str, event_type: str,
                 lon: float, lat: float, description: str, reporter: str | None,
                 actor_id: str, photo: tuple[bytes, str] | None = None) -> Change:
    """A case reported by hand (a worker's patrol photo, a resident, an Open311 client),
    routed by where it is. Its photo (data, content type) becomes the case's picture and is
    in the ledger's ``register`` row, so whoever handles the case sees what was reported."""
    change = await _register(
        conn, ctx, source=source, event_type=event_type,
        micro_grid=ctx.district.micro_grid_at(lon, lat), actor_id=actor_id,
        values={"lon": lon, "lat": lat, "description": description, "reporter": reporter})
    return await _with_photo(conn, ctx, change, photo, actor_id)


async def intake_at_camera(conn: Connection, ctx: Context, *, source: str, event_type: str,
                           camera_id: str, description: str, actor_id: str, note: str,
                           photo: tuple[bytes, str]) -> Change:
    """A case reported by hand from what a camera shows (an operator's video patrol): routed
    by the camera's micro-grid exactly as the camera's own alerts are, its camera on the case
    (the wall plays it), no zone (so it never meets the camera's alerts at their place), the
    frame as its picture."""
    change = await _register(
        conn, ctx, source=source, event_type=event_type,
        micro_grid=ctx.district.micro_grid_of(camera_id), actor_id=actor_id, note=note,
        values={"camera_id": camera_id, "description": description, "reporter": actor_id})
    return await _with_photo(conn, ctx, change, photo, actor_id)


async def _with_photo(conn: Connection, ctx: Context, change: Change,
                      photo: tuple[bytes, str] | None, actor_id: str) -> Change:
    """The case's filing photo stored and set as its picture (``photo_id``)."""
    if photo is None:
        return change
    aid = await add_attachment(conn, ctx, change.ticket.id, photo[0], photo[1], actor_id)
    await tickets.set_photo(conn, change.ticket.id, aid)
    change.ticket = replace(change.ticket, photo_id=aid)
    return change


async def apply(conn: Connection, ctx: Context, ticket_id: int, action: str, *,
                actor_id: str, role: str, note: str = "", alert_id: UUID | None = None,
                assignee_id: str | None = None, attachments: list[int] | None = None,
                satisfaction: int | None = None, extension_min: int | None = None,
                department_id: str | None = None, escalate_to: int | None = None) -> Change:
    """Take ``action`` on a ticket, or raise IllegalTransition / TicketNotFound.

    Must run inside a transaction: the state update, its ledger row and its timers land
    together. The per-action effects below are the loop's rules of time and ownership.
    ``department_id`` is where a ``hand_off`` goes; ``escalate_to`` the level an ``escalate``
    raises the case to (default: one above its level, at most 2).
    """
    current = await get(conn, ticket_id, for_update=True)
    to_state = next_state(current.state, action, role)
    at = ctx.clock.now()
    emergency = current.emergency
    dept = current.department_id  # a case in a department's queue runs on its limits
    sets: dict[str, Any] = {"state": to_state, "is_open": is_open(to_state), "updated_at": at}
    notify: dict[str, str] = {}
    stage_timer: tuple[str, datetime, int] | None = None

    if action in ("dispatch", "reassign"):
        dept = None  # dispatched to a person of the micro-grid: back out of any department
        sets["department_id"] = None
    if action in ("dispatch", "reassign", "rework"):
        # A dispatch that names nobody goes where routing would send it (a returned case,
        # dispatched again by its leader).
        target = assignee_id or current.assignee_id
        if target is None and action == "dispatch":
            owner = ctx.district.owner_of(current.micro_grid_id, at)
            target = owner.id if owner else None
        if target is None:
            raise IllegalTransition(f"{action} needs an assignee")
        if ctx.role_of(target) not in ("worker", "leader", "department"):
            raise IllegalTransition(f"{target!r} cannot own a case")
        due = ctx.limits.due(current.event_type, "accept", at, emergency=emergency,
                             department=dept)
        sets |= {"assignee_id": target, "dispatched_at": at, "stage_due_at": due,
                 "escalation_level": 0, "acknowledged_by": None}
        if action == "rework":
            sets["rework_count"] = current.rework_count + 1
        await timers.cancel(conn, ticket_id, ("accept", "handle", "escalate"), at)
        stage_timer = ("accept", due, 0)
        notify[target] = {"dispatch": "new", "reassign": "reassigned", "rework": "rework"}[action]
        if current.assignee_id not in (None, target):
            # Their phone still shows the case: it must hear that the case left them.
            notify[current.assignee_id] = "reassigned away"
    elif action == "hand_off":
        dept = _department_for(ctx, current, department_id)
        # The department's own limits from now: its accept stage, and its overall limit.
        due = ctx.limits.due(current.event_type, "accept", at, emergency=emergency,
                             department=dept)
        overall = ctx.limits.due(current.event_type, "overall", at, emergency=emergency,
                                 department=dept)
        sets |= {"department_id": dept, "assignee_id": None, "dispatched_at": at,
                 "stage_due_at": due, "due_at": overall, "escalation_level": 0,
                 "acknowledged_by": None}
        await timers.cancel(conn, ticket_id, ("accept", "handle", "escalate", "overall"), at)
        await timers.schedule(conn, ticket_id, "overall", overall)
        stage_timer = ("accept", due, 0)
        notify |= {p.id: "handed off" for p in ctx.district.people.values()
                   if p.active and p.role == "department_staff" and p.department == dept}
        if current.assignee_id is not None:
            notify[current.assignee_id] = "reassigned away"
    elif action == "return":
        dept = None
        sets |= {"assignee_id": None, "stage_due_at": None, "department_id": None}
        await timers.cancel(conn, ticket_id, ("accept", "handle", "escalate"), at)
        leader = ctx.district.leader_of(current.micro_grid_id)
        if leader is not None:
            notify[leader.id] = "returned"
    elif action == "accept":
        if current.assignee_id is None:  # taken from a department's queue by one of its staff
            _check_in_department(ctx, current, actor_id)
            sets["assignee_id"] = actor_id
        due = ctx.limits.due(current.event_type, "handle", at, emergency=emergency,
                             department=dept)
        sets |= {"accepted_at": at, "stage_due_at": due, "escalation_level": 0,
                 "acknowledged_by": None}
        await timers.cancel(conn, ticket_id, ("accept", "escalate"), at)
        stage_timer = ("handle", due, 0)
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
    elif action == "escalate":
        # The timers' and a person's escalation have the same effects; a person says why.
        if role != "system" and not note.strip():
            raise IllegalTransition("escalate by hand needs a reason (note)")
        level = escalate_to if escalate_to is not None else min(current.escalation_level + 1, 2)
        targets = ctx.district.escalation_targets(current.micro_grid_id, current.event_type,
                                                  level)
        note = ticket_notes.escalated(level, note.strip(), [p.id for p in targets])
        sets["escalation_level"] = level
        notify |= {p.id: f"escalated (level {level})" for p in targets}
        if level < 2:
            stage_timer = ("escalate",
                           at + timedelta(minutes=ctx.limits.escalate_every_min), level + 1)
    elif action == "urge":
        await _check_may_urge(conn, ctx, current, at)
        notify[str(current.assignee_id)] = "urged"
    if action in ("return", "rework"):
        sets["sent_back"] = {"action": action, "note": note, "actor_id": actor_id,
                             "at": at.isoformat()}

    updated = await tickets.update_state(conn, ticket_id, current.state, sets)
    if updated is None:
        raise IllegalTransition(f"ticket {ticket_id} changed state concurrently")
    await tickets.add_ledger_entry(conn, ticket_id, at, actor_id, action, current.state,
                                   to_state, note, alert_id, attachments)
    TICKET_TRANSITIONS.labels(action, to_state).inc()
    if stage_timer is not None:
        await timers.schedule(conn, ticket_id, *stage_timer)
    change = Change(updated, notify=notify)
    if action == "rate":  # rated: the loop is complete, close the ledger
        change = await apply(conn, ctx, ticket_id, "close", actor_id="system", role="system",
                             note=ticket_notes.CLOSED_AFTER_RATING)
    return change


async def escalate(conn: Connection, ctx: Context, ticket: Ticket, level: int,
                   reason: str) -> Change:
    """The timers raise a ticket to ``level`` and tell that level's people; the next level
    follows after ``escalate_every_min`` unless someone acknowledges first (``apply``'s
    ``escalate``, which a leader or operator also takes by hand)."""
    return await apply(conn, ctx, ticket.id, "escalate", actor_id="system", role="system",
                       note=reason, escalate_to=level)


def handling_department(ctx: Context, event_type: str) -> str | None:
    """The (first) active department that handles ``event_type``: where a hand-off that names
    no department goes, as a dispatch that names nobody goes where routing sends it."""
    return next((d.id for d in ctx.district.departments.values()
                 if d.active and event_type in d.event_types), None)


def _department_for(ctx: Context, ticket: Ticket, department_id: str | None) -> str:
    """The department a hand-off goes to: the one named, else ``handling_department``."""
    depts = ctx.district.departments
    if department_id is None:
        handling = handling_department(ctx, ticket.event_type)
        if handling is None:
            raise IllegalTransition(f"hand_off needs a department_id: no department handles"
                                    f" event type {ticket.event_type}")
        return handling
    found = depts.get(department_id)
    if found is None or not found.active:
        raise IllegalTransition(f"no active department {department_id!r}"
                                f" (departments: {', '.join(sorted(depts)) or 'none'})")
    return department_id


def _check_in_department(ctx: Context, ticket: Ticket, actor_id: str) -> None:
    """A case in a department's queue is taken by that department's staff only."""
    person = ctx.district.people.get(actor_id)
    if ticket.department_id is None or person is None or person.role != "department_staff" \
            or person.department != ticket.department_id:
        where = (f"department {ticket.department_id}'s queue" if ticket.department_id
                 else "nobody's hands")
        raise IllegalTransition(f"ticket {ticket.id} is in {where}: only its staff accept it")


async def _check_may_urge(conn: Connection, ctx: Context, ticket: Ticket, at: datetime) -> None:
    """An urge needs someone to push, and at most one per ``urge_every_min``: a phone that
    rings loudly every minute gets muted, and then the urge that matters goes unheard."""
    if ticket.assignee_id is None:
        raise IllegalTransition(f"ticket {ticket.id} has no assignee to urge")
    last = await tickets.last_action_at(conn, ticket.id, "urge")
    if last is not None and at < (again := last + timedelta(minutes=ctx.limits.urge_every_min)):
        raise IllegalTransition(
            f"ticket {ticket.id} was urged at {last.isoformat(timespec='seconds')}; urge again"
            f" from {again.isoformat(timespec='seconds')} (one urge per"
            f" {ctx.limits.urge_every_min:g} min)")


async def camera_reports_clear(conn: Connection, ctx: Context, alert: Alert) -> Change | None:
    """An ``end`` alert: the camera sees the place clear. A handled ticket there is verified
    only by the ``end`` of the violation that opened (or re-opened) it: the end of some other
    alert says nothing about that violation, and an ``end`` with a made-up alert id must not
    close a case that was "resolved" without a fix. Anything else is recorded in the
    ledger."""
    found = await tickets.lock_open_at_place(conn, alert.camera_id, alert.zone_id,
                                             alert.event_type)
    if found is None:
        return None
    ticket_id, state = found
    actor = "camera:" + alert.camera_id
    note = ticket_notes.CAMERA_CLEAR_EARLY
    if state == "handled":
        violation = await tickets.violation_of(conn, ticket_id)
        if violation == alert.alert_id:
            return await apply(conn, ctx, ticket_id, "verify", actor_id=actor, role="camera",
                               note=ticket_notes.CAMERA_CLEAR, alert_id=alert.alert_id)
        note = ticket_notes.CAMERA_CLEAR_OTHER.format(ended=alert.alert_id, violation=violation)
    await tickets.add_ledger_entry(conn, ticket_id, ctx.clock.now(), actor, "camera_clear",
                                   state, state, note, alert.alert_id)
    return Change(await get(conn, ticket_id))


async def add_attachment(conn: Connection, ctx: Context, ticket_id: int, data: bytes,
                         content_type: str, uploaded_by: str) -> int:
    return await tickets.add_attachment(conn, ticket_id, ctx.clock.now(), data, content_type,
                                        uploaded_by)
