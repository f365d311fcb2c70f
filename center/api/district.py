"""The district for the map, assignment changes, and emergency mode with broadcasts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import Actor, CenterDep, NoActorId
from center.store import district_store

router = APIRouter(prefix="/api/v1", tags=["district"])


@router.get("/district", responses={401: {}})
async def district_map(center: CenterDep, _: Actor) -> dict[str, Any]:
    d = center.ctx.district
    return {
        "id": d.id, "name": d.name, "timezone": d.timezone,
        "areas": d.feature_collection(),
        "cameras": [c.model_dump() for c in d.cameras.values() if c.active],
        "departments": [x.model_dump() for x in d.departments.values() if x.active],
        "emergency": sorted(center.ctx.emergency_scopes),
    }


@router.get("/workers", responses={401: {}})
async def workers(center: CenterDep, _: Actor) -> list[dict[str, Any]]:
    d = center.ctx.district
    return [{"id": p.id, "name": p.name, "micro_grid_id": p.micro_grid,
             "micro_grid_name": area.name if (area := d.areas.get(p.micro_grid or "")) else None,
             "post": p.post}
            for p in d.people.values() if p.role == "worker" and p.active]


@router.get("/people", responses={401: {}})
async def people(center: CenterDep, _: Actor) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json", exclude={"phone"})
            for p in center.ctx.district.people.values() if p.active]


class Posts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    A: str | None = Field(default=None, description="person for the A post (null: leave empty)")
    B: str | None = None


@router.put("/micro-grids/{micro_grid_id}/posts", dependencies=[NoActorId],
            responses={401: {}, 403: {}, 404: {}, 422: {}})
async def set_posts(center: CenterDep, actor: Actor, micro_grid_id: str,
                    body: Posts) -> dict[str, Any]:
    """Give a micro-grid's A / B post to workers; routing uses it from the next case on.
    Operators and admins anywhere, with anyone; a grid leader in their grid, with workers of
    their grid; a micro-grid leader in theirs, with their own workers."""
    d = center.ctx.district
    area = d.areas.get(micro_grid_id)
    if not actor.is_operator and not actor.leads_area(d, micro_grid_id):
        if actor.role in ("grid_leader", "micro_grid_leader"):
            where = actor.person.grid or actor.person.micro_grid
            raise HTTPException(403, f"{actor.id} leads {where}, not micro-grid {micro_grid_id}")
        raise HTTPException(403, "changing posts needs role operator, admin, or the leader of"
                                 f" that grid or micro-grid; {actor.id} is {actor.role}")
    if area is None or area.level != "micro_grid":
        raise HTTPException(404, f"no micro-grid {micro_grid_id}")
    posts = body.model_dump(include={"A", "B"}, exclude_unset=True)
    for person_id in filter(None, posts.values()):
        person = d.people.get(person_id)
        if person is None or person.role != "worker" or not person.active:
            raise HTTPException(422, f"{person_id!r} is not an active worker")
        # A post moves the worker into this micro-grid: a leader moves only their own people.
        if not actor.is_operator and not actor.leads_area(d, person.micro_grid or ""):
            raise HTTPException(403, f"{person_id} works in {person.micro_grid or 'no micro-grid'},"
                                     f" which {actor.id} does not lead")
    async with center.pool.connection() as conn, conn.transaction():
        await district_store.set_posts(conn, micro_grid_id, posts, actor_id=actor.id,
                                       at=center.ctx.clock.now())
        fresh = await district_store.load_district(conn)
    assert fresh is not None
    center.ctx.district = fresh
    return {"micro_grid_id": micro_grid_id,
            "posts": {p.post: p.id for p in fresh.people.values()
                      if p.micro_grid == micro_grid_id and p.post and p.active}}


class EmergencySwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = Field(default="district", description="'district' or a grid id")
    active: bool
    note: str = Field(default="", max_length=2000)
    #: A task sent to the phone of every worker in the scope.
    broadcast: str | None = Field(default=None, max_length=2000)


@router.get("/emergency", responses={401: {}})
async def emergency(center: CenterDep, _: Actor) -> dict[str, Any]:
    async with center.pool.connection() as conn:
        modes = await district_store.emergency_modes(conn)
    return {"active": sorted(center.ctx.emergency_scopes), "modes": modes}


@router.put("/emergency", dependencies=[NoActorId], responses={401: {}, 403: {}, 404: {}})
async def switch_emergency(center: CenterDep, actor: Actor,
                           body: EmergencySwitch) -> dict[str, Any]:
    """Peacetime / emergency switch for the district or one grid: new cases there get shorter
    time limits and top priority; the switch goes into the operations ledger. Operators and
    admins switch anything; a grid leader only their own grid."""
    if not actor.is_operator:
        if actor.role != "grid_leader":
            raise HTTPException(403, "switching emergency mode needs role operator, admin or"
                                     f" grid_leader; {actor.id} is {actor.role}")
        if body.scope != actor.person.grid:
            raise HTTPException(403, f"grid leader {actor.id} switches only grid"
                                     f" {actor.person.grid}, not {body.scope!r}")
    d = center.ctx.district
    grid = d.areas.get(body.scope)
    if body.scope != "district" and (grid is None or grid.level != "grid"):
        raise HTTPException(404, f"no grid {body.scope} (scope is 'district' or a grid id)")
    at = center.ctx.clock.now()
    async with center.pool.connection() as conn, conn.transaction():
        await district_store.switch_emergency(conn, body.scope, active=body.active,
                                              actor_id=actor.id, at=at, note=body.note,
                                              broadcast=body.broadcast)
    scopes = center.ctx.emergency_scopes
    (scopes.add if body.active else scopes.discard)(body.scope)
    area = None if body.scope == "district" else body.scope
    everyone = [p.id for p in d.people_in(area)]
    center.hub.publish("emergency", {"scope": body.scope, "active": body.active,
                                     "note": body.note, "at": at.isoformat()},
                       recipients=everyone)
    if body.broadcast:
        center.hub.publish("broadcast", {"scope": body.scope, "text": body.broadcast,
                                         "from": actor.id, "at": at.isoformat()},
                           recipients=everyone)
    return {"active": sorted(scopes), "notified": len(everyone)}
