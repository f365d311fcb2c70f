"""What the edges report about themselves for the engineer view: their running config and a
recent frame per camera (``center.protocol.edge_config_state_topic`` and
``camera_frame_topic``). Ingest hands those topics here; only the latest of each is kept.

The ingest dispatch calls ``handle`` for every topic whose kind is in ``KINDS`` and turns a
returned reason into a dead letter. Integration (center/ingest.py ``Ingest._dispatch``, before
its final ``else``, with ``from center import edge_state`` at the top)::

        elif kind in edge_state.KINDS:
            if reason := await edge_state.handle(self._pool, kind, ids, payload):
                raise Rejected(reason)

and in center/protocol.py ``CENTER_SUBSCRIPTIONS = (...) + EDGE_STATE_SUBSCRIPTIONS``.
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

from center.protocol import MAX_FRAME_BYTES, EdgeConfigState

log = logging.getLogger(__name__)

#: Topic kinds (``gridwatch/v1/<kind>/...``) this module stores.
KINDS = frozenset({"config-state", "frames"})


async def handle(pool: AsyncConnectionPool, kind: str, ids: list[str],
                 payload: bytes) -> str | None:
    """Store one message; returns why it was refused (a dead letter), else None. An empty
    payload only clears a retained slot and is ignored."""
    if not payload:
        return None
    if kind == "config-state" and len(ids) == 1:
        try:
            state = EdgeConfigState.model_validate_json(payload)
        except ValidationError as exc:
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        if state.edge_id != ids[0]:
            return f"config state of edge {state.edge_id} published under {ids[0]}"
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO edge_configs (edge_id, config, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (edge_id) DO UPDATE SET config = EXCLUDED.config,"
                " updated_at = EXCLUDED.updated_at",
                (state.edge_id, Jsonb(state.config), state.at))
        log.info("edge=%s config state stored", state.edge_id)
        return None
    if kind == "frames" and len(ids) == 2:
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


async def edge_of_camera(conn: Any, camera_id: str) -> EdgeConfigRow | None:
    """The edge whose reported config has this camera (the most recently reported one)."""
    cur = conn.cursor(row_factory=class_row(EdgeConfigRow))
    await cur.execute(
        "SELECT edge_id, config, updated_at FROM edge_configs"
        " WHERE config -> 'cameras' @> %s ORDER BY updated_at DESC LIMIT 1",
        (Jsonb([{"id": camera_id}]),))
    return await cur.fetchone()


async def frame_times(conn: Any) -> dict[str, datetime]:
    cur = await conn.execute("SELECT camera_id, updated_at FROM camera_frames")
    return {r[0]: r[1] for r in await cur.fetchall()}


async def frame(conn: Any, camera_id: str) -> tuple[bytes, datetime] | None:
    cur = await conn.execute("SELECT jpeg, updated_at FROM camera_frames WHERE camera_id = %s",
                             (camera_id,))
    row = await cur.fetchone()
    return (bytes(row[0]), row[1]) if row else None
