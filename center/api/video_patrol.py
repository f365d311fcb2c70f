"""Video patrol: a case filed from a frame of a camera's live view (docs/video.md "Video
patrol"). Everything is checked before anything is stored: the camera, who files, the event
type, the box and the frame (a JPEG up to 5 MiB, by its bytes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, UploadFile

from center.api.deps import Actor, CenterDep
from center.api.uploads import read_photo
from center.services import video_patrol

router = APIRouter(prefix="/api/v1", tags=["video patrol"])

Fraction = Annotated[float, Form(ge=0, le=1)]


@router.post("/cameras/{camera_id}/patrol-cases", status_code=201,
             responses={401: {}, 403: {}, 404: {}, 413: {}, 415: {}, 422: {}})
async def file_patrol_case(
    center: CenterDep,
    actor: Actor,
    camera_id: str,
    frame: UploadFile,
    event_type: Annotated[str, Form(pattern=r"^\d{4,6}$")],
    x0: Fraction, y0: Fraction, x1: Fraction, y1: Fraction,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> dict[str, Any]:
    """File a case from a camera's frame: ``frame`` the JPEG the operator grabbed, the box
    ``x0,y0``-``x1,y1`` in fractions of it, ``event_type`` a code of the vocabulary. Routed by
    the camera's micro-grid like its alerts; answers the case as the ticket API does.
    404 unknown camera; 403 a camera outside what the person may watch live, or an engineer;
    422 unknown event type or a box that is not one; 413/415 the frame."""
    camera = center.ctx.district.cameras.get(camera_id)
    if camera is None or not camera.active:
        raise HTTPException(404, f"unknown camera {camera_id!r}")
    if event_type not in center.ctx.event_types:
        raise HTTPException(422, f"unknown event_type {event_type}")
    box = video_patrol.Box(x0, y0, x1, y1)
    if why := box.problem():
        raise HTTPException(422, why)
    data, content_type = await read_photo(frame)
    if content_type != "image/jpeg":
        raise HTTPException(415, "the frame must be a JPEG image")
    async with center.pool.connection() as conn:
        if why := await video_patrol.why_not_file(conn, actor, center.ctx, camera_id):
            raise HTTPException(403, why)
    async with center.pool.connection() as conn, conn.transaction():
        change = await video_patrol.file_case(
            conn, center.ctx, camera_id=camera_id, event_type=event_type, box=box, note=note,
            frame=data, actor_id=actor.id)
    center.announce(change)
    return center.views.ticket(change.ticket)
