"""Alert clips: the list of an alert's clips, and each clip's MP4 with HTTP range requests
(docs/video.md "Alert clips"). A ``<video src>`` cannot send a bearer header, so the list hands
out signed URLs (center/services/auth.py ``sign_url``), made for the asking person, that the
video route checks like any picture's.

The video is streamed by the center from whichever storage holds it (a folder or an S3
bucket: center/services/clip_storage.py), the range cut from the clip's stored size: the
browser reaches only the center, as for every picture and live segment."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from center.api.deps import Actor, Center, CenterDep, ImageActor
from center.services.auth import Principal, sign_url
from center.services.clip_storage import ClipMissing, ClipStorageError
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
                       404: {}, 416: {}, 503: {}})
async def clip_video(center: CenterDep, actor: ImageActor, clip_id: UUID,
                     request: Request) -> Response:
    """The clip's MP4 (its index first, so playback starts before the whole file is in).
    ``Range: bytes=…`` gets 206 Partial Content, which is how ``<video>`` seeks; a range past
    the end 416. 503 while the clip storage cannot be reached."""
    async with center.pool.connection() as conn:
        row = await store.get(conn, clip_id)
    if row is None:
        raise HTTPException(404, f"no clip {clip_id}")
    await _allowed(center, actor, await _place(center, row.alert_id))
    if center.clips is None:
        raise HTTPException(404, f"clip {clip_id}'s video is missing: no clip storage")
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400"}
    wanted = byte_range(request.headers.get("range"), row.size)
    if wanted is None:
        return Response(status_code=416, headers=headers | {
            "Content-Range": f"bytes */{row.size}"})
    first, last = wanted
    if last < first:  # an empty video, whole
        return Response(b"", media_type=row.content_type, headers=headers)
    try:
        pieces = await asyncio.to_thread(center.clips.storage.read, row.storage_key, first,
                                         last)
    except ClipMissing as exc:
        raise HTTPException(404, f"clip {clip_id}'s video is missing: {exc}") from None
    except ClipStorageError as exc:
        raise HTTPException(503, f"clip {clip_id}'s video cannot be read now: {exc}",
                            headers={"Retry-After": "5"}) from None
    partial = (first, last) != (0, row.size - 1)
    if partial:
        headers["Content-Range"] = f"bytes {first}-{last}/{row.size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(pieces, status_code=206 if partial else 200,
                             media_type=row.content_type, headers=headers)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to send of a ``size``-byte video for a ``Range`` header
    (RFC 9110 14.1.2): the whole video for none, a malformed one or several ranges (which
    a server may ignore, and ``<video>`` never asks for); None when the one range asked
    for lies past the end (416)."""
    whole = (0, size - 1)
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return whole
    start, end = match.group(1), match.group(2)
    if start == "":  # the last ``end`` bytes
        suffix = int(end)
        return (max(size - suffix, 0), size - 1) if suffix > 0 and size > 0 else None
    first = int(start)
    last = min(int(end), size - 1) if end else size - 1
    if end and int(end) < first:
        return whole  # not a valid range: ignored
    return (first, last) if first < size else None
