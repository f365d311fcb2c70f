"""Tickets: lists for screens, one ticket with its ledger, actions, attachments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import CenterDep
from center.api.uploads import read_photo
from center.tickets import service
from center.tickets.states import STATES, IllegalTransition, actions_for

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


class TicketAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=32)
    actor_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)
    #: reassign / dispatch: to whom.
    assignee_id: str | None = Field(default=None, max_length=64)
    #: request_extension: how many minutes more.
    extension_min: int | None = Field(default=None, gt=0, le=60 * 24 * 30)
    #: Photos uploaded first with POST /tickets/{id}/attachments (handling evidence, checks).
    attachment_ids: list[int] = Field(default_factory=list, max_length=10)


@router.get("")
async def list_tickets(
    center: CenterDep,
    open: bool = False,  # noqa: A002 - the public query parameter's name
    assignee_id: str | None = None,
    state: Annotated[str | None, Query(pattern="|".join(STATES))] = None,
    micro_grid_id: str | None = None,
    grid_id: str | None = None,
    event_type: str | None = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    async with center.pool.connection() as conn:
        rows = await service.list_tickets(
            conn, open_only=open, assignee_id=assignee_id, state=state,
            micro_grid_id=micro_grid_id, grid_id=grid_id, event_type=event_type,
            overdue_at=center.ctx.clock.now() if overdue else None, limit=limit)
    return [center.views.ticket(t) for t in rows]


@router.get("/{ticket_id}", responses={403: {}, 404: {}})
async def get_ticket(
    center: CenterDep, ticket_id: int,
    as_: Annotated[str | None, Query(
        alias="as", max_length=64,
        description="a person of the district: allowed_actions are then that person's "
                    "(default: the assignee's)")] = None,
) -> dict[str, Any]:
    role = center.role(as_) if as_ is not None else None
    async with center.pool.connection() as conn:
        try:
            t = await service.get(conn, ticket_id)
        except service.TicketNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        events = await service.ledger(conn, ticket_id)
    view = center.views.ticket(t)
    if role is not None:
        # A worker acts only on what is assigned to them (as POST .../actions enforces).
        mine = role != "worker" or t.assignee_id == as_
        view["allowed_actions"] = actions_for(t.state, role) if mine else []
    return {**view, "events": [center.views.ledger(e) for e in events]}


@router.post("/{ticket_id}/actions",
             responses={403: {}, 404: {}, 409: {"description": "not allowed in this state"}})
async def act(center: CenterDep, ticket_id: int, body: TicketAction) -> dict[str, Any]:
    role = center.role(body.actor_id)
    async with center.pool.connection() as conn, conn.transaction():
        try:
            current = await service.get(conn, ticket_id, for_update=True)
            if role == "worker" and current.assignee_id != body.actor_id:
                raise HTTPException(403, f"ticket {ticket_id} is not assigned to {body.actor_id}")
            if body.attachment_ids:
                cur = await conn.execute(
                    "SELECT count(*) FROM attachments WHERE ticket_id = %s AND id = ANY(%s)",
                    (ticket_id, body.attachment_ids))
                row = await cur.fetchone()
                if row is None or row[0] != len(set(body.attachment_ids)):
                    raise HTTPException(422, "attachment_ids must be this ticket's uploads")
            change = await service.apply(
                conn, center.ctx, ticket_id, body.action, actor_id=body.actor_id, role=role,
                note=body.note, assignee_id=body.assignee_id, extension_min=body.extension_min,
                attachments=body.attachment_ids)
        except service.TicketNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except IllegalTransition as exc:
            raise HTTPException(409, str(exc)) from None
    center.announce(change)
    return center.views.ticket(change.ticket)


@router.post("/{ticket_id}/attachments", status_code=201, responses={404: {}, 413: {}, 415: {}})
async def upload(center: CenterDep, ticket_id: int, photo: UploadFile,
                 actor_id: Annotated[str, Form(min_length=1, max_length=64)]) -> dict[str, Any]:
    center.role(actor_id)
    data, content_type = await read_photo(photo)
    async with center.pool.connection() as conn, conn.transaction():
        try:
            await service.get(conn, ticket_id)
        except service.TicketNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        aid = await service.add_attachment(conn, center.ctx, ticket_id, data, content_type,
                                           actor_id)
    return {"id": aid, "url": f"/api/v1/tickets/{ticket_id}/attachments/{aid}"}


@router.get("/{ticket_id}/attachments/{attachment_id}", responses={404: {}})
async def attachment(center: CenterDep, ticket_id: int, attachment_id: int) -> Response:
    async with center.pool.connection() as conn:
        found = await service.attachment(conn, ticket_id, attachment_id)
    if found is None:
        raise HTTPException(404, "no such attachment")
    return Response(found[1], media_type=found[0])
