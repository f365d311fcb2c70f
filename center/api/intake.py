"""Cases reported by people: a worker's patrol photo ("snap and report"), a resident's request,
and the public per-ticket page where residents follow a case and rate it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import Actor, Center, CenterDep, NoActorId, PublicForm
from center.api.uploads import read_photo
from center.services import tickets as service
from center.services.tickets import Change
from center.store import alerts
from center.store.db import Connection

router = APIRouter(prefix="/api/v1", tags=["intake"])

Lon = Annotated[float, Form(ge=-180, le=180)]
Lat = Annotated[float, Form(ge=-90, le=90)]


#: The reason code of a place outside every micro-grid (pages translate codes, not messages).
OUTSIDE_DISTRICT = "outside_district"


def _check_inside(center: Center, lon: float, lat: float) -> None:
    """Refuse a place no micro-grid covers: its case would have nobody to route to and would
    wait unseen (FixMyStreet and Open311 servers refuse such points the same way)."""
    if center.ctx.district.micro_grid_at(lon, lat) is None:
        raise HTTPException(422, {
            "code": OUTSIDE_DISTRICT,
            "message": f"the location ({lat}, {lon}) is outside every grid of"
                       f" {center.ctx.district.name}"})


async def _open(center: Center, *, source: str, event_type: str, lon: float, lat: float,
                description: str, reporter: str | None, actor_id: str,
                photo: UploadFile | None) -> Change:
    if event_type not in center.ctx.event_types:
        raise HTTPException(422, f"unknown event_type {event_type}")
    _check_inside(center, lon, lat)
    picture = await read_photo(photo) if photo is not None else None
    async with center.pool.connection() as conn, conn.transaction():
        change = await service.intake(conn, center.ctx, source=source, event_type=event_type,
                                      lon=lon, lat=lat, description=description,
                                      reporter=reporter, actor_id=actor_id, photo=picture)
    center.announce(change)
    return change


@router.post("/reports", status_code=201, dependencies=[NoActorId],
             responses={401: {}, 403: {}, 413: {}, 415: {}, 422: {}})
async def patrol_report(
    center: CenterDep,
    actor: Actor,
    event_type: Annotated[str, Form(pattern=r"^\d{4,6}$")],
    lon: Lon, lat: Lat,
    note: Annotated[str, Form(max_length=2000)] = "",
    photo: UploadFile | None = None,
) -> dict[str, Any]:
    """A worker's patrol report: routed by where it was taken, like a camera alert. Anyone of
    the district but engineers (who only read cases)."""
    if actor.role == "engineer":
        raise HTTPException(403, f"engineers do not report cases; {actor.id} is engineer")
    change = await _open(center, source="patrol", event_type=event_type, lon=lon, lat=lat,
                         description=note, reporter=actor.id, actor_id=actor.id, photo=photo)
    return center.views.ticket(change.ticket)


@router.post("/public/requests", status_code=201, dependencies=[PublicForm],
             responses={413: {}, 415: {}, 422: {}, 429: {}})
async def resident_request(
    center: CenterDep,
    event_type: Annotated[str, Form(pattern=r"^\d{4,6}$")],
    lon: Lon, lat: Lat,
    description: Annotated[str, Form(min_length=1, max_length=2000)],
    contact: Annotated[str, Form(max_length=200)] = "",
    photo: UploadFile | None = None,
) -> dict[str, Any]:
    """A resident's request from the public form; the answer holds the follow-up link."""
    change = await _open(center, source="resident", event_type=event_type, lon=lon, lat=lat,
                         description=description, reporter=contact or None,
                         actor_id="resident", photo=photo)
    async with center.pool.connection() as conn:
        return await _public(center, conn, change.ticket)


@router.get("/public/area")
async def public_area(center: CenterDep) -> dict[str, Any]:
    """The district's name and grid outlines for the residents' form map (where a report is
    accepted); outlines and names only, as councils publish their ward maps."""
    d = center.ctx.district
    return {"name": d.name, "areas": d.feature_collection()}


async def _public(center: Center, conn: Connection, t: service.Ticket) -> dict[str, Any]:
    """What the public may see of a case: its progress, the handling note and the after-photo,
    but no names and no phone numbers. Rating is offered once the place is verified clear."""
    events = await service.ledger(conn, t.id)
    progress = [{"state": e.to_state, "action": e.action, "at": e.at.isoformat()}
                for e in events if e.from_state != e.to_state]
    resolved = next((e for e in reversed(events) if e.action == "resolve"), None)
    return {"id": t.id, "token": t.public_token, "url": f"/t/{t.public_token}",
            "state": t.state, "event_type": t.event_type,
            "event_name": center.views.event_name(t.event_type),
            "opened_at": t.opened_at.isoformat(),
            "closed_at": t.closed_at.isoformat() if t.closed_at else None,
            "progress": progress,
            "handling_note": resolved.note if resolved else None,
            "after_photo_url": f"/api/v1/public/tickets/{t.public_token}/after-photo"
            if resolved and resolved.attachments else None,
            "can_rate": t.state == "verified", "satisfaction": t.satisfaction}


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    satisfaction: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


@router.get("/public/tickets/{token}", responses={404: {}})
async def public_ticket(center: CenterDep, token: str) -> dict[str, Any]:
    async with center.pool.connection() as conn:
        return await _public(center, conn, await service.by_token(conn, token))


@router.get("/public/tickets/{token}/after-photo", responses={404: {}})
async def public_after_photo(center: CenterDep, token: str) -> Response:
    """The photo the worker took when resolving the case (the latest resolve's first)."""
    async with center.pool.connection() as conn:
        t = await service.by_token(conn, token)
        resolved = next((e for e in reversed(await service.ledger(conn, t.id))
                         if e.action == "resolve" and e.attachments), None)
        found = (await service.attachment(conn, t.id, resolved.attachments[0])
                 if resolved else None)
    if found is None:
        raise HTTPException(404, "this case has no photo of its handling")
    return Response(found[1], media_type=found[0])


@router.get("/public/tickets/{token}/photo", responses={404: {}})
async def public_photo(center: CenterDep, token: str) -> Response:
    """The case's picture for the public (Open311 ``media_url``): its first uploaded photo,
    else the evidence snapshot of its latest alert; the token is the case's public link."""
    async with center.pool.connection() as conn:
        t = await service.by_token(conn, token)
        found = await service.first_attachment(conn, t.id)
        if found is None and t.last_alert_id:
            jpeg = await alerts.latest_snapshot(conn, t.last_alert_id)
            found = ("image/jpeg", jpeg) if jpeg is not None else None
    if found is None:
        raise HTTPException(404, "this case has no picture")
    return Response(found[1], media_type=found[0])


@router.post("/public/tickets/{token}/rating", dependencies=[PublicForm],
             responses={404: {}, 409: {}, 429: {}})
async def rate(center: CenterDep, token: str, body: Rating) -> dict[str, Any]:
    async with center.pool.connection() as conn, conn.transaction():
        t = await service.by_token(conn, token)
        change = await service.apply(conn, center.ctx, t.id, "rate", actor_id="public",
                                     role="public", note=body.comment,
                                     satisfaction=body.satisfaction)
    center.announce(change)
    async with center.pool.connection() as conn:
        return await _public(center, conn, change.ticket)
