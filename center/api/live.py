"""Live view: ask for a camera's stream, then its HLS playlist and segments through signed
URLs (a ``<video>`` played by hls.js cannot send a bearer header). docs/video.md "Live view".

The playlist is written for the person who fetches it: every segment URL in it is signed for
them, so a playlist passed on is as good as nothing once it expires. The camera's source
address (with its password) stays in the edge's YAML; nothing here knows it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from center.api.deps import Actor, CenterDep, ImageActor
from center.services import auth
from center.services.live import LiveRefused, LiveService, Segment, Stream, why_not_watch
from center.store import alerts as queries

router = APIRouter(prefix="/api/v1", tags=["live"])


def _live(request: Request) -> LiveService:
    return request.app.state.live


LiveDep = Annotated[LiveService, Depends(_live)]


def _base(camera_id: str, stream_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/live/{stream_id}"


@router.post("/cameras/{camera_id}/live", responses={401: {}, 403: {}, 404: {}, 429: {},
                                                     503: {}})
async def open_live(center: CenterDep, live: LiveDep, actor: Actor,
                    camera_id: str) -> dict[str, Any]:
    """Watch a camera live: starts its stream on the edge (or joins the running one) and
    answers the signed URL of its HLS playlist. Ask again every few seconds while watching
    (the keep-alive; it also renews the URL). ``state``: ``starting`` until the first
    segment has arrived, then ``playing``. 503: the camera or its edge is offline (``detail``
    says which); 429: viewers per camera or streams per edge reached."""
    district = center.ctx.district
    camera = district.cameras.get(camera_id)
    if camera is None or not camera.active:
        raise HTTPException(404, f"unknown camera {camera_id!r}")
    async with center.pool.connection() as conn:
        if why := await why_not_watch(conn, actor, district, camera_id):
            raise HTTPException(403, why)
        status = (await queries.camera_statuses(conn)).get(camera_id)
    if camera.edge_id is None:
        raise HTTPException(503, f"camera {camera_id} is on no edge: nothing can stream it")
    if status is None:
        raise HTTPException(503, f"camera {camera_id} is offline: edge {camera.edge_id} has "
                                 "never reported it")
    if status.state == "offline":
        detail = f": {status.detail}" if status.detail else ""
        raise HTTPException(503, f"camera {camera_id} is offline{detail}")
    try:
        stream = await live.open(camera_id, camera.edge_id, actor.id)
    except LiveRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None
    url, exp = auth.sign_url(center.secret, f"{_base(camera_id, stream.stream_id)}/index.m3u8",
                             actor.id, actor.generation)
    return {"camera_id": camera_id, "state": stream.state, "playlist": url,
            "expires_at": datetime.fromtimestamp(exp, UTC).isoformat(),
            "stream_id": stream.stream_id, "transcoded": stream.transcoded}


def _watched(live: LiveService, actor: auth.Principal, camera_id: str,
             stream_id: str) -> Stream:
    """The stream, if ``actor`` is one of its viewers (they passed the checks when they
    asked); 404 once it has ended or they went idle, 503 when the edge gave up on it."""
    stream = live.find(camera_id, stream_id)
    if stream is None:
        raise HTTPException(404, f"live stream {stream_id} of camera {camera_id} has ended; "
                                 "ask again (POST .../live)")
    if stream.state == "refused":
        raise HTTPException(stream.status, stream.detail)
    if actor.id not in stream.viewers:
        raise HTTPException(404, f"{actor.id} is not watching stream {stream_id}; ask again "
                                 "(POST .../live)")
    return stream


@router.get("/cameras/{camera_id}/live/{stream_id}/index.m3u8",
            responses={200: {"content": {"application/vnd.apple.mpegurl": {}}}, 401: {},
                       404: {}, 503: {}})
async def playlist(center: CenterDep, live: LiveDep, actor: ImageActor, camera_id: str,
                   stream_id: str) -> Response:
    """The live HLS playlist (signed URL from ``POST .../live``); fetching it counts as
    watching."""
    stream = _watched(live, actor, camera_id, stream_id)
    live.touch(stream, actor.id)

    def url_of(segment: Segment) -> str:
        return auth.sign_url(center.secret, f"{_base(camera_id, stream_id)}/{segment.msn}.ts",
                             actor.id, actor.generation)[0]

    return Response(live.playlist(stream, url_of), media_type="application/vnd.apple.mpegurl",
                    headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/live/{stream_id}/{msn}.ts",
            responses={200: {"content": {"video/mp2t": {}}}, 401: {}, 404: {}})
async def segment(live: LiveDep, actor: ImageActor, camera_id: str, stream_id: str,
                  msn: int) -> Response:
    """One segment of the playlist (MPEG-TS, H.264), while the center still holds it."""
    stream = _watched(live, actor, camera_id, stream_id)
    found = stream.segment(msn)
    if found is None:
        raise HTTPException(404, f"segment {msn} of stream {stream_id} is no longer held")
    return Response(live.served(found), media_type="video/mp2t",
                    headers={"Cache-Control": "private, max-age=60"})
