"""What the edges report about themselves for the engineer view: their running config and a
recent frame per camera (``wire.protocol.edge_config_state_topic`` and
``camera_frame_topic``). Ingest's dispatch hands those topics to ``handle`` and dead-letters
what it refuses; only the latest of each is kept.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from center.domain.district import District
from center.services import model_rollout
from wire.errors import describe
from wire.protocol import MAX_FRAME_BYTES, MAX_STATUS_AGE, EdgeConfigState, time_window_problem
from wire.zones import ReportedZones

log = logging.getLogger(__name__)

#: Topic kinds (``gridwatch/v1/<kind>/...``) this module stores.
KINDS = frozenset({"config-state", "frames"})


def not_given(district: District, edge_id: str, camera_ids: list[str]) -> list[str]:
    """The cameras of ``camera_ids`` the district does not give to ``edge_id``."""
    return [c for c in camera_ids
            if (cam := district.cameras.get(c)) is None or cam.edge_id != edge_id]


def _config_state(district: District, edge_id: str, payload: bytes
                  ) -> tuple[EdgeConfigState | None, str | None]:
    """The parsed config state, or why it is refused."""
    try:
        state = EdgeConfigState.model_validate_json(payload)
    except ValidationError as exc:
        return None, describe(exc, with_input=False)
    if state.edge_id != edge_id:
        return None, f"config state of edge {state.edge_id} published under {edge_id}"
    try:
        config = ReportedZones.model_validate(state.config)
    except ValidationError as exc:
        return None, describe(exc, ("config",), with_input=False)
    if foreign := not_given(district, edge_id, [c.id for c in config.cameras]):
        return None, (f"config names cameras {foreign} that the district does not give to "
                      f"edge {edge_id}")
    if state.model is not None and (problem := time_window_problem(
            state.model.since, datetime.now(UTC), MAX_STATUS_AGE, "model.since")):
        return None, problem
    return state, None


async def handle(pool: AsyncConnectionPool, district: District, kind: str, ids: list[str],
                 payload: bytes) -> str | None:
    """Store one message; returns why it was refused (a dead letter), else None. An empty
    payload only clears a retained slot and is ignored."""
    if not payload:
        return None
    if kind == "config-state" and len(ids) == 1:
        state, reason = _config_state(district, ids[0], payload)
        if state is None:
            return reason
        model = None if state.model is None else Jsonb(state.model.model_dump(mode="json"))
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO edge_configs (edge_id, config, updated_at, model)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (edge_id) DO UPDATE SET"
                " config = EXCLUDED.config, updated_at = EXCLUDED.updated_at,"
                " model = EXCLUDED.model",
                (state.edge_id, Jsonb(state.config), datetime.now(UTC), model))
            if state.model is not None:
                await model_rollout.record_report(conn, state.edge_id, state.model)
        log.info("edge=%s config state stored", state.edge_id)
        return None
    if kind == "frames" and len(ids) == 2:
        if not_given(district, ids[0], [ids[1]]):
            return f"camera {ids[1]} is not given to edge {ids[0]} by the district"
        if len(payload) > MAX_FRAME_BYTES:
            return f"frame larger than {MAX_FRAME_BYTES} bytes"
        if not payload.startswith(b"\xff\xd8"):
            return "frame is not a JPEG image"
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO camera_frames (camera_id, edge_id, jpeg, updated_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (camera_id) DO UPDATE SET"
                " edge_id = EXCLUDED.edge_id, jpeg = EXCLUDED.jpeg,"
                " updated_at = EXCLUDED.updated_at",
                (ids[1], ids[0], payload, datetime.now(UTC)))
        return None
    return f"unknown topic kind {kind} with {len(ids)} id(s)"


@dataclass(frozen=True)
class EdgeConfigRow:
    edge_id: str
    config: dict[str, Any]
    updated_at: datetime


async def edge_configs(conn: Any) -> list[EdgeConfigRow]:
    cur = conn.cursor(row_factory=class_row(EdgeConfigRow))
    await cur.execute("SELECT edge_id, config, updated_at FROM edge_configs ORDER BY edge_id")
    return await cur.fetchall()


async def edge_config(conn: Any, edge_id: str) -> EdgeConfigRow | None:
    cur = conn.cursor(row_factory=class_row(EdgeConfigRow))
    await cur.execute("SELECT edge_id, config, updated_at FROM edge_configs WHERE edge_id = %s",
                      (edge_id,))
    return await cur.fetchone()


async def frame_times(conn: Any) -> dict[str, datetime]:
    cur = await conn.execute("SELECT camera_id, updated_at FROM camera_frames")
    return {r[0]: r[1] for r in await cur.fetchall()}


async def frame(conn: Any, camera_id: str) -> tuple[bytes, datetime] | None:
    cur = await conn.execute("SELECT jpeg, updated_at FROM camera_frames WHERE camera_id = %s",
                             (camera_id,))
    row = await cur.fetchone()
    return (bytes(row[0]), row[1]) if row else None
