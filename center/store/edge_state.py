"""SQL for what the edges report about themselves: each edge's running config (with the model
it runs) and the latest frame per camera (``center.services.edge_state`` decides what is kept).
Only the latest of each is kept: one row per edge, one per camera."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from center.store.db import Connection


@dataclass(frozen=True)
class EdgeConfigRow:
    edge_id: str
    config: dict[str, Any]
    updated_at: datetime


async def upsert_config(conn: Connection, edge_id: str, config: dict[str, Any],
                        model: dict[str, Any] | None, at: datetime) -> None:
    """The config an edge runs now, and the model it reported beside it (None: not said)."""
    await conn.execute(
        "INSERT INTO edge_configs (edge_id, config, updated_at, model)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (edge_id) DO UPDATE SET"
        " config = EXCLUDED.config, updated_at = EXCLUDED.updated_at,"
        " model = EXCLUDED.model",
        (edge_id, Jsonb(config), at, None if model is None else Jsonb(model)))


async def upsert_frame(conn: Connection, camera_id: str, edge_id: str, jpeg: bytes,
                       at: datetime) -> None:
    await conn.execute(
        "INSERT INTO camera_frames (camera_id, edge_id, jpeg, updated_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (camera_id) DO UPDATE SET"
        " edge_id = EXCLUDED.edge_id, jpeg = EXCLUDED.jpeg,"
        " updated_at = EXCLUDED.updated_at",
        (camera_id, edge_id, jpeg, at))


async def edge_configs(conn: Connection) -> list[EdgeConfigRow]:
    cur = conn.cursor(row_factory=class_row(EdgeConfigRow))
    await cur.execute("SELECT edge_id, config, updated_at FROM edge_configs ORDER BY edge_id")
    return await cur.fetchall()


async def edge_config(conn: Connection, edge_id: str) -> EdgeConfigRow | None:
    cur = conn.cursor(row_factory=class_row(EdgeConfigRow))
    await cur.execute("SELECT edge_id, config, updated_at FROM edge_configs WHERE edge_id = %s",
                      (edge_id,))
    return await cur.fetchone()


async def frame_times(conn: Connection) -> dict[str, datetime]:
    cur = await conn.execute("SELECT camera_id, updated_at FROM camera_frames")
    return {r[0]: r[1] for r in await cur.fetchall()}


async def frame(conn: Connection, camera_id: str) -> tuple[bytes, datetime] | None:
    cur = await conn.execute("SELECT jpeg, updated_at FROM camera_frames WHERE camera_id = %s",
                             (camera_id,))
    row = await cur.fetchone()
    return (bytes(row[0]), row[1]) if row else None
