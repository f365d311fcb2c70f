"""Verdicts on alerts and cases: confirmed, or a false alarm and why (center/services/verdicts.py).

A verdict is a write like a ticket action and is scoped the same way (center/services/auth.py): a
worker judges only the cases assigned to them, a leader their area's, department staff their event
types', operators and admins everything; engineers only read. A false alarm on an open case may
void it in the same step (``void``), through the state machine's own ``void`` transition: the
verdict and the void land together or not at all."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from center.api.deps import Actor, Center, CenterDep
from center.services import tickets as service
from center.services import verdicts
from center.services.auth import Principal
from center.store.verdicts import (
    SimultaneousVerdict,
    Subject,
    alert_subject,
    current_for_alerts,
    history,
)

router = APIRouter(prefix="/api/v1/verdicts", tags=["verdicts"])
#: Ticket ids are PostgreSQL bigints.
_MAX_ID = 2**63 - 1


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: What is judged: one alert, or a whole case (each of its alerts).
    alert_id: UUID | None = None
    ticket_id: int | None = Field(default=None, ge=1, le=_MAX_ID)
    verdict: verdicts.Kind
    #: Required for a false alarm, refused for a confirmation.
    reason: str | None = Field(default=None, pattern="^(" + "|".join(verdicts.REASONS) + ")$")
    note: str = Field(default="", max_length=2000)
    #: A false alarm on an open case: void the case too (operators and leaders; the state
    #: machine decides, 409 and nothing stored when it does not allow it).
    void: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> VerdictIn:
        if (self.alert_id is None) == (self.ticket_id is None):
            raise ValueError("give exactly one of alert_id (one alert) or ticket_id (a case)")
        if self.verdict == "false_alarm" and self.reason is None:
            raise ValueError(f"a false alarm needs a reason: one of {', '.join(verdicts.REASONS)}")
        if self.verdict == "confirmed" and (self.reason is not None or self.void):
            raise ValueError("a confirmed alert takes no reason and voids nothing")
        return self


def _check_may_judge(center: Center, actor: Principal, subject: Subject,
                     ticket: service.Ticket | None) -> None:
    if actor.role == "engineer":
        raise HTTPException(403, f"engineers only read; {actor.id} cannot judge alerts"
                                 " (needs a worker, leader, department staff or operator)")
    d = center.ctx.district
    if ticket is not None:
        if not actor.sees_ticket(d, ticket.micro_grid_id, ticket.event_type, ticket.assignee_id,
                                 ticket.department_id):
            raise HTTPException(403, actor.why_not_ticket(d, ticket.id))
        return
    # An alert that opened no case: judged by whoever would see a case at that camera.
    micro_grid = d.micro_grid_of(subject.camera_id or "")
    if not actor.sees_ticket(d, micro_grid, subject.event_type, None):
        raise HTTPException(403, f"alert {subject.alert_id} (camera {subject.camera_id}) is"
                                 f" outside what {actor.id} ({actor.role}) may judge")


async def _subjects(conn: Any, body: VerdictIn
                    ) -> tuple[list[Subject], service.Ticket | None]:
    """What the verdict covers, and the case it belongs to (locked), or 404."""
    if body.alert_id is not None:
        subject = await alert_subject(conn, body.alert_id)
        if subject is None:
            raise HTTPException(404, f"no alert {body.alert_id}")
        ticket = None
        if subject.ticket_id is not None:
            ticket = await service.get(conn, subject.ticket_id, for_update=True)
            subject = Subject(subject.alert_id, ticket.id, subject.camera_id,
                              subject.zone_id, subject.event_type, ticket.micro_grid_id,
                              subject.started_at)
        return [subject], ticket
    assert body.ticket_id is not None
    ticket = await service.get(conn, body.ticket_id, for_update=True)
    return await verdicts.case_subjects(conn, ticket), ticket


@router.post("", status_code=201,
             responses={401: {}, 403: {}, 404: {},
                        409: {"description": "void not allowed in the case's state, or a"
                                            " simultaneous first verdict"}})
async def judge(center: CenterDep, actor: Actor, body: VerdictIn) -> dict[str, Any]:
    """Record a verdict on an alert or a case (replacing the current one; history is kept),
    and with ``void`` void the open case in the same transaction."""
    role = center.role(actor.id)
    change = None
    async with center.pool.connection() as conn, conn.transaction():
        subjects, ticket = await _subjects(conn, body)
        _check_may_judge(center, actor, subjects[0], ticket)
        if body.void:
            if ticket is None:
                raise HTTPException(422, f"alert {body.alert_id} has no case to void")
            change = await service.apply(conn, center.ctx, ticket.id, "void",
                                         actor_id=actor.id, role=role, note=body.note)
        try:
            made = await verdicts.record(
                conn, subjects, verdict=body.verdict, reason=body.reason, note=body.note,
                actor_id=actor.id, role=role, at=center.ctx.clock.now())
        except SimultaneousVerdict:  # a first verdict on the same alert committed meanwhile
            raise HTTPException(409, "someone judged this at the same moment; look at their"
                                     " verdict and send yours again to replace it") from None
    if change is not None:
        center.announce(change)
    data, recipients = verdicts.event(made, ticket.assignee_id if ticket else None)
    center.hub.publish("verdict", data, recipients=recipients)
    return {**data, "verdicts": [v.as_dict() for v in made],
            "ticket": center.views.ticket(change.ticket) if change else None}


@router.get("/current", responses={401: {}, 403: {}})
async def current_verdicts(
    center: CenterDep, actor: Actor,
    alert_id: Annotated[list[UUID], Query(max_length=100)],
) -> list[dict[str, Any]]:
    """The current verdict of each of these alerts that has one: the wall marks the alerts of
    its feed after a reload. Wall roles only (they see every alert)."""
    if not actor.is_wall:
        raise HTTPException(403, f"verdicts by alert list are for the wall (operators, admins,"
                                 f" engineers); {actor.id} is {actor.role}: ask by ticket_id")
    async with center.pool.connection() as conn:
        found = await current_for_alerts(conn, alert_id)
    return [v.as_dict() for v in found.values()]


@router.get("", responses={401: {}, 403: {}, 404: {}})
async def list_verdicts(
    center: CenterDep, actor: Actor,
    ticket_id: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    alert_id: UUID | None = None,
    current: Annotated[bool, Query(description="only the current verdicts")] = False,
) -> list[dict[str, Any]]:
    """The verdicts on a case or an alert, newest first, the replaced ones included unless
    ``current``; for whoever may see that case."""
    if (ticket_id is None) == (alert_id is None):
        raise HTTPException(422, "give exactly one of ticket_id or alert_id")
    d = center.ctx.district
    async with center.pool.connection() as conn:
        if alert_id is not None:
            subject = await alert_subject(conn, alert_id)
            if subject is None:
                raise HTTPException(404, f"no alert {alert_id}")
            ticket_id = subject.ticket_id
            if ticket_id is None and not actor.sees_ticket(
                    d, d.micro_grid_of(subject.camera_id or ""), subject.event_type, None):
                raise HTTPException(403, f"alert {alert_id} is outside what {actor.id} sees")
        if ticket_id is not None:
            t = await service.get(conn, ticket_id)
            if not actor.sees_ticket(d, t.micro_grid_id, t.event_type, t.assignee_id,
                                     t.department_id):
                raise HTTPException(403, actor.why_not_ticket(d, t.id))
        rows = await history(conn, ticket_id=None if alert_id else ticket_id,
                             alert_id=alert_id, current_only=current)
    return [v.as_dict() for v in rows]
