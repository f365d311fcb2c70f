"""SQL for model rollouts (``model_rollouts``, ``model_rollout_edges``) and the assignments the
center publishes (``model_assignments``); the rollout steps are in
``center.services.model_rollout`` (docs/model-rollout.md).

``model_assignments`` is the source of truth for what each edge must run: a changed row loses
its ``published_at``, and the center's publishing loop sends every row that has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from center.store.db import Connection
from wire.protocol import ModelAssignment


@dataclass(frozen=True)
class Rollout:
    id: int
    model: str
    path: str | None
    sha256: str
    state: str
    started_at: datetime
    promoted_at: datetime | None
    promote_forced: bool
    promote_check: str | None
    rolled_back_at: datetime | None


@dataclass(frozen=True)
class RolloutEdge:
    edge_id: str
    canary: bool
    previous: dict[str, Any]
    assigned_at: datetime
    confirmed_at: datetime | None
    refused_at: datetime | None
    refusal: str | None
    restored_at: datetime | None


async def reported_models(conn: Connection) -> dict[str, tuple[dict[str, Any], Any]]:
    """edge -> (its reported config, its reported ModelState as JSON or None)."""
    cur = await conn.execute("SELECT edge_id, config, model FROM edge_configs ORDER BY edge_id")
    return {r[0]: (r[1], r[2]) for r in await cur.fetchall()}


async def in_canary(conn: Connection, edge_ids: Sequence[str],
                    but: int | None = None) -> dict[str, int]:
    """edge -> the rollout (other than ``but``) it is a canary of, for those of ``edge_ids``
    that are one."""
    cur = await conn.execute(
        "SELECT e.edge_id, r.id FROM model_rollout_edges e JOIN model_rollouts r"
        " ON r.id = e.rollout_id WHERE r.state = 'canary' AND e.edge_id = ANY(%s)"
        " AND r.id IS DISTINCT FROM %s", (list(edge_ids), but))
    return {r[0]: r[1] for r in await cur.fetchall()}


async def assign(conn: Connection, assignment: ModelAssignment) -> None:
    """What the edge must run from now on; unpublished until the publishing loop sends it."""
    await conn.execute(
        "INSERT INTO model_assignments (edge_id, payload, updated_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (edge_id) DO UPDATE SET payload = EXCLUDED.payload,"
        " updated_at = EXCLUDED.updated_at, published_at = NULL",
        (assignment.edge_id, Jsonb(assignment.model_dump(mode="json")), assignment.at))


async def add_edge(conn: Connection, rollout_id: int, edge_id: str, previous: dict[str, Any],
                   canary: bool, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO model_rollout_edges (rollout_id, edge_id, canary, previous, assigned_at)"
        " VALUES (%s, %s, %s, %s, %s)", (rollout_id, edge_id, canary, Jsonb(previous), now))


async def insert(conn: Connection, model: str, path: str | None, sha256: str,
                 now: datetime) -> int:
    """A new rollout (state canary); returns its id."""
    cur = await conn.execute(
        "INSERT INTO model_rollouts (model, path, sha256, started_at) VALUES (%s, %s, %s, %s)"
        " RETURNING id", (model, path, sha256, now))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def get(conn: Connection, rollout_id: int) -> Rollout | None:
    cur = conn.cursor(row_factory=class_row(Rollout))
    await cur.execute(f"SELECT {', '.join(Rollout.__dataclass_fields__)} FROM model_rollouts"
                      " WHERE id = %s", (rollout_id,))
    return await cur.fetchone()


async def latest(conn: Connection, limit: int = 20) -> list[Rollout]:
    cur = conn.cursor(row_factory=class_row(Rollout))
    await cur.execute(f"SELECT {', '.join(Rollout.__dataclass_fields__)} FROM model_rollouts"
                      " ORDER BY id DESC LIMIT %s", (limit,))
    return await cur.fetchall()


async def edges(conn: Connection, rollout_id: int) -> list[RolloutEdge]:
    """The rollout's edges, canaries first."""
    cur = conn.cursor(row_factory=class_row(RolloutEdge))
    await cur.execute(f"SELECT {', '.join(RolloutEdge.__dataclass_fields__)}"
                      " FROM model_rollout_edges WHERE rollout_id = %s"
                      " ORDER BY NOT canary, edge_id", (rollout_id,))
    return await cur.fetchall()


async def mark_promoted(conn: Connection, rollout_id: int, now: datetime, *, check: str,
                        forced: bool) -> None:
    await conn.execute(
        "UPDATE model_rollouts SET state = 'promoted', promoted_at = %s,"
        " promote_forced = %s, promote_check = %s WHERE id = %s",
        (now, forced, check, rollout_id))


async def assignments(conn: Connection) -> dict[str, Any]:
    """edge -> its current assignment's payload (a ``ModelAssignment`` as JSON)."""
    cur = await conn.execute("SELECT edge_id, payload FROM model_assignments")
    return {r[0]: r[1] for r in await cur.fetchall()}


async def mark_rolled_back(conn: Connection, rollout_id: int, now: datetime) -> None:
    await conn.execute("UPDATE model_rollouts SET state = 'rolled_back', rolled_back_at = %s"
                       " WHERE id = %s", (now, rollout_id))


async def mark_restored(conn: Connection, rollout_id: int, edge_id: str, at: datetime) -> None:
    """The edge runs its previous model again (the first report of it counts)."""
    await conn.execute(
        "UPDATE model_rollout_edges SET restored_at = %s WHERE rollout_id = %s"
        " AND edge_id = %s AND restored_at IS NULL", (at, rollout_id, edge_id))


async def mark_confirmed(conn: Connection, rollout_id: int, edge_id: str, at: datetime,
                         sha256: str | None) -> None:
    """The edge switched to the rollout's model: only with the rollout's digest, and once."""
    await conn.execute(
        "UPDATE model_rollout_edges e SET confirmed_at = %s FROM model_rollouts r"
        " WHERE r.id = e.rollout_id AND e.rollout_id = %s AND e.edge_id = %s"
        " AND e.confirmed_at IS NULL AND r.sha256 = %s",
        (at, rollout_id, edge_id, sha256))


async def mark_refused(conn: Connection, rollout_id: int, edge_id: str, at: datetime,
                       reason: str) -> None:
    await conn.execute(
        "UPDATE model_rollout_edges SET refused_at = %s, refusal = %s WHERE rollout_id = %s"
        " AND edge_id = %s", (at, reason, rollout_id, edge_id))


async def to_publish(conn: Connection, everything: bool
                     ) -> list[tuple[str, dict[str, Any], datetime]]:
    """(edge, payload, updated_at) of every assignment, or of the unpublished ones only."""
    cur = await conn.execute(
        "SELECT edge_id, payload, updated_at FROM model_assignments"
        + ("" if everything else " WHERE published_at IS NULL"))
    return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def mark_published(conn: Connection, edge_id: str, updated_at: datetime) -> None:
    """Published, unless the assignment changed since it was read (then it goes again)."""
    await conn.execute("UPDATE model_assignments SET published_at = now()"
                       " WHERE edge_id = %s AND updated_at = %s", (edge_id, updated_at))
