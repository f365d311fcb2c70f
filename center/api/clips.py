"""Alert clips: the list of an alert's clips, and each clip's MP4 with HTTP range requests
(docs/video.md "Alert clips"). A ``<video src>`` cannot send a bearer header, so the list hands
out signed URLs (center/services/auth.py ``sign_url``), made for the asking person, that the
video route checks like any picture's."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from center.api.deps import Actor, Center, CenterDep, ImageActor
from center.services.auth import Principal, sign_url
from center.services.clips import clip_path, clip_view, why_not_watch
from center.store import clips as store
from center.store.clips import AlertPlace

router = APIRouter(prefix="/api/v1", tags=["clips"])


async def _place(center: Center, alert_id: UUID) -> AlertPlace:
    async with center.pool.connection() as conn:
        place = await store.alert_place(conn, alert_id)
    if place is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return place


async def _allowed(center: Center, who: Principal, place: AlertPlace) -> None:
    async with center.pool.connection() as conn:
        why = await why_not_watch(conn, who, center.ctx.district, place)
    if why:
        raise HTTPException(403, why)


@router.get("/alerts/{alert_id}/clips", responses={401: {}, 403: {}, 404: {}})
async def alert_clips(center: CenterDep, actor: Actor, alert_id: UUID) -> list[dict[str, Any]]:
    """The alert's clips (``violation``: from before the first sighting to after the alert;
    ``end``: the seconds before the zone was reported clear), each with a signed URL of its
    MP4 made for the caller; empty while none has arrived."""
    place = await _place(center, alert_id)
    await _allowed(center, actor, place)
    async with center.pool.connection() as conn:
        rows = await store.for_alert(conn, alert_id)
    return [clip_view(r, sign_url(center.secret, clip_path(r.clip_id), actor.id,
                                  actor.generation)[0]) for r in rows]


@router.get("/clips/{clip_id}.mp4",
            responses={200: {"content": {"video/mp4": {}}}, 206: {}, 401: {}, 403: {},
                       404: {}, 416: {}})
async def clip_video(center: CenterDep, actor: ImageActor, clip_id: UUID) -> Response:
    """The clip's MP4 (its index first, so playback starts before the whole file is in).
    ``Range: bytes=…`` gets 206 Partial Content, which is how ``<video>`` seeks."""
    async with center.pool.connection() as conn:
        row = await store.get(conn, clip_id)
    if row is None:
        raise HTTPException(404, f"no clip {clip_id}")
    await _allowed(center, actor, await _place(center, row.alert_id))
    storage = center.clips.storage if center.clips is not None else None
    path = storage.local_path(row.storage_key) if storage is not None else None
    if path is not None:
        return FileResponse(path, media_type=row.content_type,
                            headers={"Cache-Control": "private, max-age=86400"})
    url = storage.presigned_url(row.storage_key) if storage is not None else None
    if url is not None:
        return RedirectResponse(url, status_code=307)
    raise HTTPException(404, f"clip {clip_id}'s video is missing from the clip storage")
