"""The district in the database: imported from files, updated in place, read back at start-up;
and its emergency switches (peacetime / emergency per scope).

Rows are deactivated rather than deleted when a re-import drops them, so a closed case from
last year still shows the name of the worker who handled it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from center.domain.district import Area, Camera, Department, District, Person
from center.store import ledger


async def import_district(conn: AsyncConnection, d: District, *, actor_id: str,
                          at: datetime) -> dict[str, int]:
    """Upsert every area, camera, person and department; deactivate what the file dropped."""
    counts = {}
    await conn.execute(
        "INSERT INTO district_meta (id, name, timezone) VALUES (%s, %s, %s)"
        " ON CONFLICT (singleton) DO UPDATE SET id = EXCLUDED.id, name = EXCLUDED.name,"
        " timezone = EXCLUDED.timezone", (d.id, d.name, d.timezone))
    specs: list[tuple[str, list[str], list[tuple[Any, ...]]]] = [
        ("district_areas", ["id", "name", "level", "kind", "parent", "geometry"],
         [(a.id, a.name, a.level, a.kind, a.parent, Jsonb(a.geometry))
          for a in d.areas.values()]),
        ("district_cameras", ["id", "name", "lon", "lat", "edge_id", "micro_grid"],
         [(c.id, c.name, c.lon, c.lat, c.edge_id, c.micro_grid) for c in d.cameras.values()]),
        ("district_people", ["id", "name", "role", "micro_grid", "grid", "post", "department",
                             "phone", "duty"],
         [(p.id, p.name, p.role, p.micro_grid, p.grid, p.post, p.department, p.phone,
           Jsonb([w.model_dump(mode="json") for w in p.duty])) for p in d.people.values()]),
        ("district_departments", ["id", "name", "event_types"],
         [(x.id, x.name, x.event_types) for x in d.departments.values()]),
    ]
    for table, cols, rows in specs:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[1:])
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}, active)"
                f" VALUES ({', '.join(['%s'] * len(cols))}, true)"
                f" ON CONFLICT (id) DO UPDATE SET {updates}, active = true",
                rows,
            )
        cur = await conn.execute(
            f"UPDATE {table} SET active = false WHERE active AND NOT (id = ANY(%s))",
            ([r[0] for r in rows],))
        counts[table.removeprefix("district_")] = len(rows)
        counts[f"deactivated_{table.removeprefix('district_')}"] = cur.rowcount
    await ledger.record(conn, at=at, actor_id=actor_id, action="import_district", scope=d.id,
                        note=json.dumps(counts))
    return counts


async def load_district(conn: AsyncConnection) -> District | None:
    """The district as stored, inactive rows included (for names); None before any import."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, name, timezone FROM district_meta")
    meta = await cur.fetchone()
    if meta is None:
        return None

    async def rows(table: str) -> list[dict[str, Any]]:
        await cur.execute(f"SELECT * FROM {table} ORDER BY id")
        found = await cur.fetchall()
        for r in found:
            r.pop("password_hash", None)  # center/services/auth.py reads it at login, nowhere else
        return found

    return District(
        **meta,
        areas={r["id"]: Area(**r) for r in await rows("district_areas")},
        cameras={r["id"]: Camera(**r) for r in await rows("district_cameras")},
        people={r["id"]: Person(**r) for r in await rows("district_people")},
        departments={r["id"]: Department(**r) for r in await rows("district_departments")},
    )


async def set_posts(conn: AsyncConnection, micro_grid_id: str, posts: dict[str, str | None],
                    *, actor_id: str, at: datetime) -> None:
    """Give a micro-grid's A and/or B post to people (None leaves the post empty)."""
    for post, person_id in posts.items():
        await conn.execute(
            "UPDATE district_people SET post = NULL WHERE micro_grid = %s AND post = %s"
            " AND role = 'worker'", (micro_grid_id, post))
        if person_id is not None:
            await conn.execute(
                "UPDATE district_people SET post = %s, micro_grid = %s WHERE id = %s",
                (post, micro_grid_id, person_id))
    await ledger.record(conn, at=at, actor_id=actor_id, action="set_posts", scope=micro_grid_id,
                        note=json.dumps(posts))


async def emergency_modes(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Each scope's emergency switch as last set: scope, active, since, actor_id, note."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT scope, active, since, actor_id, note FROM emergency_modes ORDER BY scope")
    return await cur.fetchall()


async def switch_emergency(conn: AsyncConnection, scope: str, *, active: bool, actor_id: str,
                           at: datetime, note: str, broadcast: str | None) -> None:
    """Set a scope's emergency switch, and put the switch (and the broadcast sent with it)
    into the operations ledger, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO emergency_modes (scope, active, since, actor_id, note)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (scope) DO UPDATE SET"
        " active = EXCLUDED.active, since = EXCLUDED.since, actor_id = EXCLUDED.actor_id,"
        " note = EXCLUDED.note", (scope, active, at, actor_id, note))
    await ledger.record(conn, at=at, actor_id=actor_id, scope=scope, note=note,
                        action="emergency_on" if active else "emergency_off")
    if broadcast:
        await ledger.record(conn, at=at, actor_id=actor_id, action="broadcast", scope=scope,
                            note=broadcast)
