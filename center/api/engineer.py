"""The engineer view's API: each edge's running config and recent camera frames (as the edges
report them, ``center.services.edge_state``), and zone edits pushed to the edge live.

Commissioning a camera splits in two, as in the VMS/NVR systems engineers know (the recorder
holds the stream credentials, the console manages analytics): the camera's *source* (its RTSP
URL with the camera's password) lives only in the edge's own YAML, on the box next to the
camera, so camera credentials never leave the edge; everything about *what is watched* (each
camera's zones and their rules, dwell times, classes, schedules) is edited here and pushed
live. The district says which edge a camera belongs to (``Camera.edge_id``); ``GET /edges``
lists, per edge, the cameras it runs and those the district gives it that it does not run yet
(their source still has to be added on the edge).

``PUT /cameras/{camera_id}/zones`` validates the zones with the models the edge uses too
(``wire.zones``), so an error names the key exactly as the edge would; the zones of every camera
the edge reported, this one's replaced, are then published retained on
``gridwatch/v1/config/{edge_id}`` as a ``wire.protocol.ZonesPush`` (zones only: the center never
sends an edge's sources, credentials or detector), which the edge validates again and applies
between frames (``edge.reconfig``). The edge confirms by re-publishing its config state, so
``GET /edges/{edge_id}/config`` shows the zones the edge really runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from center.api.deps import Actor, CenterDep, ImageActor, NoActorId
from center.services.edge_state import not_given
from center.store import alerts, edge_state
from center.transport.ingest import Ingest
from wire.errors import describe
from wire.protocol import ZonesPush, edge_config_topic
from wire.zones import ZoneConfig

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["engineer"])

_ZONES = TypeAdapter(list[ZoneConfig])


class ZonesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: The camera's whole zone list (``wire.zones.ZoneConfig`` documents); [] removes every
    #: zone.
    zones: list[dict[str, Any]] = Field(max_length=64)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _camera_view(center: Any, edge_id: str, camera: dict[str, Any],
                 frames: dict[str, datetime],
                 statuses: dict[str, alerts.CameraStatusRow]) -> dict[str, Any]:
    cid = camera["id"]
    known = center.ctx.district.cameras.get(cid)
    status = statuses.get(cid)
    return {
        "id": cid, "edge_id": edge_id,
        # The district's name is the one people use (both languages), the edge's a fallback.
        "name": (known.name if known else "") or camera.get("name") or cid,
        "source": camera.get("source"), "sample_fps": camera.get("sample_fps"),
        "status": status.state if status else "unknown",
        "zones": camera.get("zones", []),
        "frame_url": f"/api/v1/cameras/{cid}/frame.jpg" if cid in frames else None,
        "frame_at": _iso(frames.get(cid)),
    }


#: Who edits zones: engineers, and operators and admins (who may do everything).
ZONE_EDITORS = ("engineer", "operator", "admin")


@router.get("/edges", responses={401: {}})
async def edges(center: CenterDep, _: Actor) -> list[dict[str, Any]]:
    """Every edge that reported its config, with its cameras, zones and latest frame, then the
    edges the district names that have not (``config_at`` null). ``unconfigured``: the cameras
    the district gives the edge that it does not run (their source must be added to the edge's
    YAML)."""
    async with center.pool.connection() as conn:
        rows = {r.edge_id: r for r in await edge_state.edge_configs(conn)}
        frames = await edge_state.frame_times(conn)
        statuses = await alerts.camera_statuses(conn)
        states = await alerts.edge_states(conn)
    district = center.ctx.district
    named = sorted({c.edge_id for c in district.cameras.values() if c.edge_id} - set(rows))
    out = []
    for edge_id in [*rows, *named]:
        row = rows.get(edge_id)
        config = row.config if row else {}
        running = [c for c in config.get("cameras", [])
                   if not not_given(district, edge_id, [c["id"]])]
        ids = {c["id"] for c in running}
        out.append({
            "edge_id": edge_id, "state": states.get(edge_id, "unknown"),
            "config_at": _iso(row.updated_at if row else None),
            "frame_every_s": config.get("frame_every_s"),
            "cameras": [_camera_view(center, edge_id, c, frames, statuses) for c in running],
            "unconfigured": [{"id": c.id, "name": c.name} for c in district.cameras.values()
                             if c.edge_id == edge_id and c.id not in ids],
        })
    return out


@router.get("/edges/{edge_id}/config", responses={401: {}, 404: {}})
async def edge_config(center: CenterDep, _: Actor, edge_id: str) -> dict[str, Any]:
    """The config the edge reported it runs (credentials removed)."""
    async with center.pool.connection() as conn:
        row = await edge_state.edge_config(conn, edge_id)
    if row is None:
        raise HTTPException(404, f"edge {edge_id!r} has not reported its config")
    return {"edge_id": row.edge_id, "updated_at": _iso(row.updated_at), "config": row.config}


@router.get("/cameras/{camera_id}/frame.jpg", responses={401: {}, 404: {}})
async def camera_frame(center: CenterDep, _: ImageActor, camera_id: str) -> Response:
    """The camera's latest frame; a signed URL works too, for ``<img src>``."""
    async with center.pool.connection() as conn:
        found = await edge_state.frame(conn, camera_id)
    if found is None:
        raise HTTPException(404, f"no frame from camera {camera_id!r} yet")
    jpeg, at = found
    return Response(jpeg, media_type="image/jpeg",
                    headers={"Cache-Control": "no-cache", "X-Frame-At": at.isoformat()})


@router.put("/cameras/{camera_id}/zones", dependencies=[NoActorId],
            responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}})
async def put_zones(center: CenterDep, actor: Actor, request: Request, camera_id: str,
                    body: ZonesUpdate) -> dict[str, Any]:
    """Replace a camera's zones and push its edge's zones to it (retained). Engineers,
    operators and admins."""
    if actor.role not in ZONE_EDITORS:
        raise HTTPException(403, f"editing zones needs role {' or '.join(ZONE_EDITORS)};"
                                 f" {actor.id} is {actor.role}")
    try:
        zones = _ZONES.validate_python(body.zones)
    except ValidationError as exc:
        raise HTTPException(422, describe(exc, ("zones",), with_input=False)) from None
    edge_id = _edge_of(center, camera_id)
    async with center.pool.connection() as conn:
        row = await edge_state.edge_config(conn, edge_id)
    if row is None or not any(c.get("id") == camera_id for c in row.config.get("cameras", [])):
        raise HTTPException(404, f"edge {edge_id!r} has not reported camera {camera_id!r}: its"
                                 " source must be in the edge's config file first")
    dumped = [z.model_dump(mode="json") for z in zones]
    pushed_at = datetime.now(UTC)
    # Every camera the edge reported, so the retained push restores all of them on a restart.
    cameras = [{"id": c.get("id"), "zones": dumped if c.get("id") == camera_id
                else c.get("zones", [])} for c in row.config.get("cameras", [])]
    try:
        push = ZonesPush.model_validate({"edge_id": edge_id, "at": pushed_at,
                                         "cameras": cameras})
    except ValidationError as exc:
        raise HTTPException(422, describe(exc, with_input=False)) from None
    await _publish(request.app.state.ingest, edge_id, push.model_dump_json(exclude_none=True))
    log.info("edge=%s camera=%s zones pushed by %s: %s", edge_id, camera_id,
             actor.id, [z.id for z in zones])
    return {"edge_id": edge_id, "camera_id": camera_id, "topic": edge_config_topic(edge_id),
            "pushed_at": pushed_at.isoformat(), "zones": dumped}


def _edge_of(center: Any, camera_id: str) -> str:
    """The edge the district gives the camera to: the only one whose report of it counts."""
    known = center.ctx.district.cameras.get(camera_id)
    if known is None:
        raise HTTPException(404, f"camera {camera_id!r} is not in the district")
    if not known.edge_id:
        raise HTTPException(404, f"the district gives camera {camera_id!r} to no edge")
    return known.edge_id


async def _publish(ingest: Ingest, edge_id: str, payload: str) -> None:
    """Publish the edge's new zones, retained, so an edge that is offline or restarts gets
    them when it (re)connects; on the center's one broker connection (``Ingest.publish``)."""
    try:
        await ingest.publish(edge_config_topic(edge_id), payload, retain=True)
    except aiomqtt.MqttError as exc:
        raise HTTPException(503, f"could not reach the MQTT broker: {exc}") from None
