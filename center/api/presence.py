"""Worker presence over HTTP (docs/presence.md): duty check-in/out and positions from a
worker's own phone; last positions, today's track and the routing suggestion for the people
and cases the caller may see (center/services/presence.py decides who sees whom)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import Actor
from center.services import nearest_worker
from center.services.auth import Principal
from center.services.presence import NotAllowed, Presence
from center.store.tickets import TicketNotFound

router = APIRouter(prefix="/api/v1/presence", tags=["presence"])
_MAX_ID = 2**63 - 1
_PERSON_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _presence(request: Request) -> Presence:
    return request.app.state.presence


PresenceDep = Annotated[Presence, Depends(_presence)]


def _worker(actor: Principal, person_id: str | None) -> None:
    """Only a worker sends duty and positions, and only their own."""
    if actor.role != "worker":
        raise HTTPException(403, f"only workers share duty and positions; {actor.id} is a"
                                 f" {actor.role}")
    if person_id is not None and person_id != actor.id:
        raise HTTPException(403, f"{actor.id} may send only their own duty and positions,"
                                 f" not {person_id!r}'s")


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool
    #: Kept for clarity in logs; must be the logged-in worker when given.
    person_id: str | None = Field(default=None, pattern=_PERSON_ID)


class PositionIn(BaseModel):
    """One fix of the phone's geolocation, WGS-84 degrees (what browsers give)."""

    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
    person_id: str | None = Field(default=None, pattern=_PERSON_ID)


@router.get("/duty", responses={401: {}})
async def my_duty(presence: PresenceDep, actor: Actor) -> dict[str, Any]:
    """The logged-in person's duty state and since when."""
    return (await presence.duty(actor.id)).view() | {
        "min_interval_s": presence.settings.min_interval_s}


@router.post("/duty", responses={401: {}, 403: {}})
async def set_duty(presence: PresenceDep, actor: Actor, body: DutyIn) -> dict[str, Any]:
    """Check in (``on_duty: true``: the phone starts sharing its position) or out (it stops;
    positions sent after this are refused)."""
    _worker(actor, body.person_id)
    return (await presence.set_duty(actor.person, body.on_duty)).view() | {
        "min_interval_s": presence.settings.min_interval_s}


@router.post("/positions", status_code=201,
             responses={200: {"description": "thinned: an earlier position of this worker is"
                                             " recent enough; this one is not stored"},
                        401: {}, 403: {},
                        409: {"description": "off duty: the position is not stored"}})
async def post_position(presence: PresenceDep, actor: Actor, body: PositionIn,
                        response: Response) -> dict[str, Any]:
    """A position from the worker's own phone while on duty (201 stored; 200 thinned)."""
    _worker(actor, body.person_id)
    outcome = await presence.report(actor.person, body.lon, body.lat, body.accuracy_m)
    if outcome == "off_duty":
        raise HTTPException(409, f"{actor.id} is off duty: positions are not stored; check in"
                                 " first")
    if outcome == "thinned":
        response.status_code = 200
    return {"outcome": outcome, "min_interval_s": presence.settings.min_interval_s}


@router.get("/positions", responses={401: {}, 403: {}})
async def last_positions(presence: PresenceDep, actor: Actor) -> list[dict[str, Any]]:
    """The last position of every on-duty worker the caller sees: operators and admins all,
    leaders their area's, a worker their own."""
    try:
        return await presence.last_positions(actor)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None


@router.get("/tracks/{person_id}/today", responses={401: {}, 403: {}})
async def today_track(presence: PresenceDep, actor: Actor,
                      person_id: Annotated[str, Path(pattern=_PERSON_ID)]) -> dict[str, Any]:
    """A worker's positions since local midnight and the patrol distance over them."""
    try:
        return await presence.today_track(actor, person_id)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None


@router.get("/suggestion", responses={401: {}, 403: {}, 404: {}})
async def suggestion(presence: PresenceDep, actor: Actor,
                     ticket_id: Annotated[int, Query(ge=1, le=_MAX_ID)]) -> dict[str, Any]:
    """Whom to send a case to when its micro-grid's A post is off duty, busy or far: the
    nearest on-duty worker of the micro-grid (a suggestion; reassign acts on it)."""
    try:
        return await nearest_worker.suggestion(presence, actor, ticket_id)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except TicketNotFound:
        raise HTTPException(404, f"no ticket {ticket_id}") from None
