"""Routing suggestion: whom to send a case to when its micro-grid's A post cannot take it
(docs/presence.md "Routing suggestion").

The ticket service routes a case to the micro-grid's A post (else B post, else the leader)
from the district file. This module chooses from presence: when the A post is off duty, busy
(``busy_open_cases`` open cases or more) or far (last position beyond ``far_m`` from the case,
or none today), the nearest on-duty worker of the same micro-grid with a position, else any
on-duty one with the fewest open cases. By default it only *suggests*: a leader or operator
acts on it with the ticket's own reassign action. With ``presence.auto_assign_nearest`` the
ticket service routes a new case to the chosen worker itself (its system dispatch), so the
ledger and the state machine stay in charge either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from center.domain.context import Context
from center.domain.district import Person
from center.domain.geo import haversine_m
from center.domain.ticket_states import OPEN
from center.services.auth import Principal
from center.services.presence import NotAllowed, Presence, district_day
from center.store import presence as store
from center.store.db import Connection
from center.store.tickets import Ticket, get


@dataclass(frozen=True)
class Candidate:
    person: Person
    on_duty_since: datetime | None
    position: store.Position | None
    open_cases: int
    distance_m: float | None

    def view(self) -> dict[str, Any]:
        p = self.person
        return {"person_id": p.id, "name": p.name, "post": p.post,
                "on_duty": self.on_duty_since is not None, "open_cases": self.open_cases,
                "distance_m": None if self.distance_m is None else round(self.distance_m),
                "position_at": self.position.at.isoformat() if self.position else None}


def _place(ctx: Context, ticket: Ticket) -> tuple[float, float] | None:
    if ticket.lon is not None and ticket.lat is not None:
        return ticket.lon, ticket.lat
    camera = ctx.district.cameras.get(ticket.camera_id or "")
    return (camera.lon, camera.lat) if camera else None


async def candidates(conn: Connection, ctx: Context, micro_grid_id: str
                     ) -> list[tuple[Person, datetime | None, store.Position | None, int]]:
    """The micro-grid's workers with their duty start (None: off duty), last position and
    open cases."""
    workers = [p for p in ctx.district.people.values()
               if p.role == "worker" and p.active and p.micro_grid == micro_grid_id]
    ids = [p.id for p in workers]
    duty = await store.on_duty(conn, ids)
    last = {p.person_id: p for p in await store.last_positions(conn, ids)}
    busy = await store.open_case_counts(conn, ids, sorted(OPEN))
    return [(p, duty.get(p.id), last.get(p.id), busy.get(p.id, 0)) for p in workers]


async def suggestion(presence: Presence, viewer: Principal, ticket_id: int) -> dict[str, Any]:
    """The suggestion for a case the viewer (an operator or a leader of its area) sees;
    NotAllowed otherwise, TicketNotFound when there is no such case."""
    d = presence.ctx.district
    if not (viewer.is_operator or viewer.micro_grids(d) is not None):
        raise NotAllowed("routing suggestions are for operators and leaders")
    async with presence.pool.connection() as conn:
        ticket = await get(conn, ticket_id)
        if not viewer.sees_ticket(d, ticket.micro_grid_id, ticket.event_type,
                                  ticket.assignee_id, ticket.department_id):
            raise NotAllowed(viewer.why_not_ticket(d, ticket.id))
        return await suggest(presence, conn, ticket)


async def choose(conn: Connection, ctx: Context, ticket: Ticket
                 ) -> tuple[str, Candidate | None, Candidate | None]:
    """(the A post's status, the A post, the worker to send the case to instead: None to keep
    the A post, or when nobody else of the micro-grid is on duty and free)."""
    s = ctx.presence
    place = _place(ctx, ticket)
    cutoff, _ = district_day(ctx, ctx.clock.now())
    found = []
    for person, since, last, busy in await candidates(conn, ctx, ticket.micro_grid_id or ""):
        # yesterday's position says nothing about where they are now
        pos = last if last is not None and last.at >= cutoff else None
        dist = (haversine_m(place[0], place[1], pos.lon, pos.lat)
                if place is not None and pos is not None else None)
        found.append(Candidate(person, since, pos, busy, dist))
    a_post = next((c for c in found if c.person.post == "A"), None)
    status = _status(a_post, s.busy_open_cases, s.far_m)
    if status == "available":
        return status, a_post, None
    others = [c for c in found if c.on_duty_since is not None and c is not a_post
              and c.open_cases < s.busy_open_cases]
    located = sorted((c for c in others if c.distance_m is not None),
                     key=lambda c: c.distance_m or 0.0)
    return status, a_post, (located[0] if located
                            else min(others, key=lambda c: c.open_cases, default=None))


async def suggest(presence: Presence, conn: Connection, ticket: Ticket) -> dict[str, Any]:
    """The suggestion for one case: the A post's status, the suggested worker (None: keep the
    A post, or nobody of the micro-grid is on duty) and why."""
    status, a_post, suggested = await choose(conn, presence.ctx, ticket)
    return {"ticket_id": ticket.id, "micro_grid_id": ticket.micro_grid_id,
            "assignee_id": ticket.assignee_id,
            "a_post": a_post.view() if a_post else None, "a_post_status": status,
            "suggested": suggested.view() if suggested else None,
            "reason": _reason(status, suggested)}


def _status(a: Candidate | None, busy_at: int, far_m: float) -> str:
    if a is None:
        return "none"
    if a.on_duty_since is None:
        return "off_duty"
    if a.open_cases >= busy_at:
        return "busy"
    if a.distance_m is None or a.distance_m > far_m:
        return "far"
    return "available"


def _reason(status: str, suggested: Candidate | None) -> str:
    if status == "available":
        return "the A post is on duty, free and near: keep them"
    why = {"none": "the micro-grid has no A post", "off_duty": "the A post is off duty",
           "busy": "the A post has many open cases",
           "far": "the A post is far from the case (or has no position today)"}[status]
    if suggested is None:
        return f"{why}; no other worker of the micro-grid is on duty and free"
    where = (f"{round(suggested.distance_m)} m away" if suggested.distance_m is not None
             else "no position today")
    return f"{why}; {suggested.person.id} is on duty ({where})"
