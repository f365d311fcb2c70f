"""Alerts, their evidence pictures, and camera status."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response

from center.api.deps import Actor, CenterDep, ImageActor
from center.store import alerts as queries

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", responses={401: {}})
async def list_alerts(
    center: CenterDep,
    _: Actor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    camera_id: str | None = None,
    kind: Literal["new", "update", "end"] | None = None,
) -> list[dict[str, Any]]:
    async with center.pool.connection() as conn:
        rows = await queries.list_alerts(conn, limit=limit, camera_id=camera_id, kind=kind)
    return [center.views.alert(r) for r in rows]


@router.get("/alerts/{alert_id}/snapshot.jpg",
            responses={200: {"content": {"image/jpeg": {}}}, 401: {}, 404: {}})
async def snapshot(center: CenterDep, _: ImageActor, alert_id: UUID) -> Response:
    """An alert's evidence picture; a signed URL works too, for ``<img src>``."""
    async with center.pool.connection() as conn:
        jpeg = await queries.latest_snapshot(conn, alert_id)
    if jpeg is None:
        raise HTTPException(404, f"no snapshot for alert {alert_id}")
    return Response(jpeg, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=86400"})


@router.get("/cameras", responses={401: {}})
async def cameras(center: CenterDep, _: Actor) -> list[dict[str, Any]]:
    async with center.pool.connection() as conn:
        statuses = await queries.camera_statuses(conn)
    known = [c for c, cam in center.ctx.district.cameras.items() if cam.active]
    ids = known + [c for c in statuses if c not in center.ctx.district.cameras]
    return [center.views.camera(c, statuses.get(c)) for c in ids]
