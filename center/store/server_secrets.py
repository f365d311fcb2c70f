"""Secrets the center makes for itself (``server_secrets``, migration 0007): each database
gets its own, so nothing in the code or the repository is a secret and two databases never
share one."""

from __future__ import annotations

from center.store.db import Connection


async def get_or_create(conn: Connection, name: str, new_value: str) -> str:
    """The stored secret ``name``; ``new_value`` is stored first when there is none (two
    centers starting at once both read the one that won)."""
    await conn.execute(
        "INSERT INTO server_secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        (name, new_value))
    cur = await conn.execute("SELECT value FROM server_secrets WHERE name = %s", (name,))
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])
