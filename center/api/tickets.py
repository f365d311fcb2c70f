"""Tickets: lists for screens, one ticket with its ledger, actions, attachments.

Each person sees only their tickets (center/services/auth.py): a worker those assigned to them, a
leader their area's, department staff their event types', operators/admins/engineers all;
engineers only read. Out of scope is a 403 that says why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import Actor, Center, CenterDep, ImageActor, NoActorId
from center.api.uploads import read_photo
from center.domain.ticket_states import STATES, actions_for
from center.services import tickets as service
from center.services.auth import Principal

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


class TicketAction(BaseModel):
    """An action on a ticket. Who acts is the token's person: an ``actor_id`` (from before
    logins) is refused with a 422 (``NoActorId``)."""

    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=2000)
    #: reassign / dispatch: to whom.
    assignee_id: str | None = Field(default=None, max_length=64)
    #: hand_off: to which line department (default: the one handling the event type).
    department_id: str | None = Field(default=None, max_length=64)
    #: request_extension: how many minutes more.
    extension_min: int | None = Field(default=None, gt=0, le=60 * 24 * 30)
    #: Photos uploaded first with POST /tickets/{id}/attachments (handling evidence, checks).
    attachment_ids: list[int] = Field(default_factory=list, max_length=10)


#: Who sees the assignee's phone on a ticket: those who dispatch and follow cases up (not the
#: workers themselves, not engineers, who only read).
_CALLERS = frozenset({"operator", "admin", "grid_leader", "micro_grid_leader", "department_staff"})


def _check_visible(center: Center, actor: Principal, t: service.Ticket) -> None:
    if not actor.sees_ticket(center.ctx.district, t.micro_grid_id, t.event_type, t.assignee_id,
                             t.department_id):
        raise HTTPException(403, actor.why_not_ticket(center.ctx.district, t.id))


def _check_may_act(actor: Principal) -> None:
    if actor.role == "engineer":
        raise HTTPException(403, f"engineers only read tickets; {actor.id} cannot act on them"
                                 " (needs a worker, leader, department staff or operator)")


@router.get("", responses={401: {}, 403: {}})
async def list_tickets(
    center: CenterDep,
    actor: Actor,
    open: bool = False,  # noqa: A002 - the public query parameter's name
    assignee_id: str | None = None,
    state: Annotated[str | None, Query(pattern="|".join(STATES))] = None,
    micro_grid_id: str | None = None,
    grid_id: str | None = None,
    event_type: str | None = None,
    overdue: bool = False,
    department_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Tickets matching the filters, within what the caller may see (``Principal.scope``,
    applied by the query): a worker's list is their own, a leader's their area's, department
    staff's their event types' and their department's queue (``department_id``: the cases
    handed off to it). A filter that asks outside it is refused, saying why."""
    d = center.ctx.district
    p = actor.person
    if p.role == "worker" and assignee_id not in (None, p.id):
        raise HTTPException(403, f"worker {p.id} may list only their own tickets"
                                 f" (assignee_id={p.id})")
    if p.role == "micro_grid_leader" and (micro_grid_id not in (None, p.micro_grid)
                                          or grid_id not in (None, d.grid_of(p.micro_grid))):
        raise HTTPException(403, f"micro-grid leader {p.id} may list only micro-grid"
                                 f" {p.micro_grid}")
    if p.role == "grid_leader" and (grid_id not in (None, p.grid) or (
            micro_grid_id is not None and d.grid_of(micro_grid_id) != p.grid)):
        raise HTTPException(403, f"grid leader {p.id} may list only grid {p.grid}")
    if (p.role == "department_staff" and event_type is not None
            and event_type not in (actor.event_types(d) or set())):
        raise HTTPException(403, f"department {p.department} does not handle event type"
                                 f" {event_type} ({p.id} works there)")
    if p.role == "department_staff" and department_id not in (None, p.department):
        raise HTTPException(403, f"{p.id} works in department {p.department} and may list"
                                 f" only its queue (department_id={p.department})")
    async with center.pool.connection() as conn:
        rows = await service.list_tickets(
            conn, scope=actor.scope(d), open_only=open, assignee_id=assignee_id, state=state,
            micro_grid_id=micro_grid_id, grid_id=grid_id, event_type=event_type,
            overdue_at=center.ctx.clock.now() if overdue else None,
            department_id=department_id, limit=limit)
    return [center.views.ticket(t) for t in rows]


@router.get("/{ticket_id}", responses={401: {}, 403: {}, 404: {}})
async def get_ticket(
    center: CenterDep, actor: Actor, ticket_id: int,
    as_: Annotated[str | None, Query(
        alias="as", max_length=64,
        description="yourself: allowed_actions are then yours (default: the assignee's); the"
                    " wall's detail panel and the leader view show the buttons you may press")
    ] = None,
) -> dict[str, Any]:
    """One ticket with its ledger and photos. Since logins nobody looks as someone else (the
    pickers that did are gone): ``as`` naming another person is a 403."""
    if as_ is not None and as_ != actor.id:
        raise HTTPException(403, f"`as` must be yourself ({actor.id}): allowed_actions are the"
                                 " logged-in person's or, without `as`, the assignee's")
    role = center.role(as_) if as_ is not None else None
    async with center.pool.connection() as conn:
        t = await service.get(conn, ticket_id)
        _check_visible(center, actor, t)
        events = await service.ledger(conn, ticket_id)
        photos = await service.attachment_list(conn, ticket_id)
    view = center.views.ticket(t)
    if role is not None:
        # A worker acts only on what is assigned to them (as POST .../actions enforces).
        mine = role != "worker" or t.assignee_id == as_
        view["allowed_actions"] = actions_for(t.state, role) if mine else []
    # Who a dispatch without an assignee goes to (the on-duty post): the leader's default.
    owner = center.ctx.district.owner_of(t.micro_grid_id, center.ctx.clock.now())
    # The assignee's phone, for the staff who dispatch and follow the case up (the wall's tel:
    # link); /people keeps phones to itself.
    assignee = center.ctx.district.people.get(t.assignee_id or "")
    phone = assignee.phone if assignee and actor.role in _CALLERS else None
    return {**view, "reporter": t.reporter, "owner_id": owner.id if owner else None,
            "assignee_phone": phone,
            # Where a hand_off naming no department goes (the leader view preselects it).
            "department_default": service.handling_department(center.ctx, t.event_type),
            "photos": [{"url": f"/api/v1/tickets/{t.id}/attachments/{aid}", "uploaded_by": by,
                        "at": at.isoformat()} for aid, by, at in photos],
            "events": [center.views.ledger(e) for e in events]}


@router.post("/{ticket_id}/actions", dependencies=[NoActorId],
             responses={401: {}, 403: {}, 404: {},
                        409: {"description": "not allowed in this state"}})
async def act(center: CenterDep, actor: Actor, ticket_id: int,
              body: TicketAction) -> dict[str, Any]:
    _check_may_act(actor)
    actor_id = actor.id
    role = center.role(actor_id)
    async with center.pool.connection() as conn, conn.transaction():
        current = await service.get(conn, ticket_id, for_update=True)
        _check_visible(center, actor, current)
        if role == "worker" and current.assignee_id != actor_id:
            raise HTTPException(403, f"ticket {ticket_id} is not assigned to {actor_id}")
        if not await service.are_its_attachments(conn, ticket_id, body.attachment_ids):
            raise HTTPException(422, "attachment_ids must be this ticket's uploads")
        change = await service.apply(
            conn, center.ctx, ticket_id, body.action, actor_id=actor_id, role=role,
            note=body.note, assignee_id=body.assignee_id, extension_min=body.extension_min,
            attachments=body.attachment_ids, department_id=body.department_id)
    center.announce(change)
    return center.views.ticket(change.ticket)


@router.post("/{ticket_id}/attachments", status_code=201, dependencies=[NoActorId],
             responses={401: {}, 403: {}, 404: {}, 413: {}, 415: {}})
async def upload(center: CenterDep, actor: Actor, ticket_id: int,
                 photo: UploadFile) -> dict[str, Any]:
    _check_may_act(actor)
    data, content_type = await read_photo(photo)
    async with center.pool.connection() as conn, conn.transaction():
        _check_visible(center, actor, await service.get(conn, ticket_id))
        aid = await service.add_attachment(conn, center.ctx, ticket_id, data, content_type,
                                           actor.id)
    return {"id": aid, "url": f"/api/v1/tickets/{ticket_id}/attachments/{aid}"}


@router.get("/{ticket_id}/attachments/{attachment_id}", responses={401: {}, 403: {}, 404: {}})
async def attachment(center: CenterDep, actor: ImageActor, ticket_id: int,
                     attachment_id: int) -> Response:
    """A ticket's photo; a signed URL works too, for ``<img src>``."""
    async with center.pool.connection() as conn:
        _check_visible(center, actor, await service.get(conn, ticket_id))
        found = await service.attachment(conn, ticket_id, attachment_id)
    if found is None:
        raise HTTPException(404, "no such attachment")
    return Response(found[1], media_type=found[0])
