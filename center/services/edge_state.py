"""What the edges report about themselves for the engineer view: their running config and a
recent frame per camera (``wire.protocol.edge_config_state_topic`` and
``camera_frame_topic``). Ingest decodes those messages and hands them to ``store_config`` and
``store_frame``, and dead-letters what they refuse; only the latest of each is kept
(center/store/edge_state.py).

An edge speaks only for itself and for the cameras the district gives it (``Camera.edge_id``),
as for alerts and status: a config naming another edge's camera, or a frame of one, is refused
whole, so the engineer view never shows (nor pushes zones to) a camera on an edge that does not
own it. Its cameras' zones must be valid (``wire.zones.ReportedZones``, the models the edge
uses): the engineer API shows them and pushes them back edited; the rest of the document is the
edge's own and is stored as reported.
The model the edge reports running beside it (``model``) is stored too and confirms or refuses
its model rollout (``center.services.model_rollout.record_report``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from center.domain.district import District
from center.services import model_rollout
from center.store.db import Pool
from center.store.edge_state import upsert_config, upsert_frame
from wire.errors import describe
from wire.protocol import MAX_FRAME_BYTES, MAX_STATUS_AGE, EdgeConfigState, time_window_problem
from wire.zones import ReportedZones

log = logging.getLogger(__name__)


def not_given(district: District, edge_id: str, camera_ids: list[str]) -> list[str]:
    """The cameras of ``camera_ids`` the district does not give to ``edge_id``."""
    return [c for c in camera_ids
            if (cam := district.cameras.get(c)) is None or cam.edge_id != edge_id]


def _config_problem(district: District, state: EdgeConfigState) -> str | None:
    """Why a config state (already decoded, its edge id checked against the topic) is refused,
    or None."""
    try:
        config = ReportedZones.model_validate(state.config)
    except ValidationError as exc:
        return describe(exc, ("config",), with_input=False)
    if foreign := not_given(district, state.edge_id, [c.id for c in config.cameras]):
        return (f"config names cameras {foreign} that the district does not give to "
                f"edge {state.edge_id}")
    if state.model is not None and (problem := time_window_problem(
            state.model.since, datetime.now(UTC), MAX_STATUS_AGE, "model.since")):
        return problem
    return None


async def store_config(pool: Pool, district: District, state: EdgeConfigState) -> str | None:
    """Store an edge's config state (and its model report, in the same transaction); returns
    why it was refused (a dead letter), else None."""
    if reason := _config_problem(district, state):
        return reason
    model = None if state.model is None else state.model.model_dump(mode="json")
    async with pool.connection() as conn, conn.transaction():
        await upsert_config(conn, state.edge_id, state.config, model, datetime.now(UTC))
        if state.model is not None:
            await model_rollout.record_report(conn, state.edge_id, state.model)
    log.info("edge=%s config state stored", state.edge_id)
    return None


async def store_frame(pool: Pool, district: District, edge_id: str, camera_id: str,
                      jpeg: bytes) -> str | None:
    """Store a camera's latest frame; returns why it was refused (a dead letter), else None."""
    if not_given(district, edge_id, [camera_id]):
        return f"camera {camera_id} is not given to edge {edge_id} by the district"
    if len(jpeg) > MAX_FRAME_BYTES:
        return f"frame larger than {MAX_FRAME_BYTES} bytes"
    if not jpeg.startswith(b"\xff\xd8"):
        return "frame is not a JPEG image"
    async with pool.connection() as conn:
        await upsert_frame(conn, camera_id, edge_id, jpeg, datetime.now(UTC))
    return None
