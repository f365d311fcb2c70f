"""Whether a person has an open case at a camera: what lets a worker (or department staff)
watch a camera outside their own micro-grid (center/services/live.py)."""

from __future__ import annotations

from center.store.db import Connection


async def has_open_case_at(conn: Connection, person_id: str, camera_id: str) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE camera_id = %s AND assignee_id = %s"
        " AND is_open)", (camera_id, person_id))
    row = await cur.fetchone()
    return bool(row and row[0])
