"""Routing suggestion: whom to send a case to when its micro-grid's A post cannot take it
(docs/presence.md "Routing suggestion").

The ticket service routes a case to the micro-grid's A post (else B post, else the leader)
from the district file alone. This module only *suggests*, from presence: when the A post is
off duty, busy (``busy_open_cases`` open cases or more) or far (last position beyond ``far_m``
from the case, or none today), the nearest on-duty worker of the same micro-grid with a
position, else any on-duty one with the fewest open cases. A leader or operator acts on it
with the ticket's own reassign action, which keeps the ledger and the state machine in charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from center.domain.district import Person
from center.domain.geo import haversine_m
from center.services.auth import Principal
from center.services.presence import NotAllowed, Presence
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


def _place(presence: Presence, ticket: Ticket) -> tuple[float, float] | None:
    if ticket.lon is not None and ticket.lat is not None:
        return ticket.lon, ticket.lat
    camera = presence.ctx.district.cameras.get(ticket.camera_id or "")
    return (camera.lon, camera.lat) if camera else None


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


async def suggest(presence: Presence, conn: Connection, ticket: Ticket) -> dict[str, Any]:
    """The suggestion for one case: the A post's status, the suggested worker (None: keep the
    A post, or nobody of the micro-grid is on duty) and why."""
    s = presence.settings
    place = _place(presence, ticket)
    cutoff, _ = presence.local_day(presence.ctx.clock.now())
    candidates = []
    for person, since, last, busy in await presence.candidates(conn,
                                                                ticket.micro_grid_id or ""):
        # yesterday's position says nothing about where they are now
        pos = last if last is not None and last.at >= cutoff else None
        dist = (haversine_m(place[0], place[1], pos.lon, pos.lat)
                if place is not None and pos is not None else None)
        candidates.append(Candidate(person, since, pos, busy, dist))
    a_post = next((c for c in candidates if c.person.post == "A"), None)
    status = _status(a_post, s.busy_open_cases, s.far_m)
    suggested = None
    if status != "available":
        others = [c for c in candidates if c.on_duty_since is not None and c is not a_post
                  and c.open_cases < s.busy_open_cases]
        located = sorted((c for c in others if c.distance_m is not None),
                         key=lambda c: c.distance_m or 0.0)
        suggested = located[0] if located else min(others, key=lambda c: c.open_cases,
                                                   default=None)
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
