"""SQL for verdicts (migration 0018) and the alerts they judge; what a verdict means and who
may give one is in ``center.services.verdicts``.

One row per judged alert (or alert-less case); a later verdict replaces the current one,
which stays with ``replaced_at`` and ``replaced_by`` set. The unique indexes
``verdicts_current_per_alert`` and ``verdicts_current_per_case`` hold one current row each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.rows import class_row, dict_row

from center.store.db import Connection


class SimultaneousVerdict(Exception):
    """A first verdict on the same alert (or case) committed while this one was written: the
    "one current verdict" index refused the second. The transaction is spoilt; nothing of it
    is kept."""


@dataclass(frozen=True)
class Verdict:
    id: int
    alert_id: UUID | None
    ticket_id: int | None
    camera_id: str | None
    zone_id: str | None
    event_type: str
    micro_grid_id: str | None
    alert_started_at: datetime | None
    verdict: str
    reason: str | None
    note: str
    actor_id: str
    role: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alert_id"] = str(self.alert_id) if self.alert_id else None
        for k in ("alert_started_at", "at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


@dataclass(frozen=True)
class Subject:
    """One thing a verdict is about: an alert (with its case, if it opened or joined one), or
    a case without alerts (alert_id None)."""

    alert_id: UUID | None
    ticket_id: int | None
    camera_id: str | None
    zone_id: str | None
    event_type: str
    micro_grid_id: str | None
    started_at: datetime | None


@dataclass(frozen=True)
class CameraDay:
    day: str              # the alert's day in the district's time zone (YYYY-MM-DD)
    camera_id: str
    zone_id: str
    event_type: str
    confirmed: int        # alerts whose current verdict is "confirmed"
    false_alarms: int     # alerts whose current verdict is "false alarm"
    reasons: dict[str, int]


_COLS = ", ".join(Verdict.__dataclass_fields__)


async def alert_subject(conn: Connection, alert_id: UUID) -> Subject | None:
    """The alert as its messages describe it (first start, its case), or None if unknown."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT camera_id, zone_id, event_type, min(started_at) AS started_at,"
        " max(ticket_id) AS ticket_id FROM alerts WHERE alert_id = %s"
        " GROUP BY camera_id, zone_id, event_type", (alert_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    return Subject(alert_id, row["ticket_id"], row["camera_id"], row["zone_id"],
                   row["event_type"], None, row["started_at"])


async def case_alert_starts(conn: Connection, camera_id: str,
                            ticket_id: int) -> dict[UUID, datetime]:
    """alert -> its first start, for the case's alerts still stored. The camera's rows are
    searched through the (camera_id, observed_at) index."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT alert_id, min(started_at) AS started_at FROM alerts"
        " WHERE camera_id = %s AND ticket_id = %s GROUP BY alert_id", (camera_id, ticket_id))
    return {r["alert_id"]: r["started_at"] for r in await cur.fetchall()}


async def lock_current(conn: Connection, alert_ids: Sequence[UUID],
                       case_ids: Sequence[int | None]) -> list[int]:
    """The ids of the current verdicts on these alerts and alert-less cases, locked in id
    order (so two writers serialise instead of deadlocking)."""
    cur = await conn.execute(
        "SELECT id FROM verdicts WHERE replaced_at IS NULL"
        " AND (alert_id = ANY(%s) OR (alert_id IS NULL AND ticket_id = ANY(%s)))"
        " ORDER BY id FOR UPDATE", (alert_ids, case_ids))
    return [r[0] for r in await cur.fetchall()]


async def mark_replaced(conn: Connection, ids: Sequence[int], at: datetime) -> None:
    await conn.execute("UPDATE verdicts SET replaced_at = %s WHERE id = ANY(%s)", (at, ids))


async def insert(conn: Connection, subjects: Sequence[Subject], *, verdict: str,
                 reason: str | None, note: str, actor_id: str, role: str,
                 at: datetime) -> list[Verdict]:
    """One verdict row per subject, all with the same verdict; raises
    ``SimultaneousVerdict`` when another first verdict on a subject committed meanwhile."""
    vcur = conn.cursor(row_factory=class_row(Verdict))
    try:
        await vcur.execute(
            "INSERT INTO verdicts (alert_id, ticket_id, camera_id, zone_id, event_type,"
            " micro_grid_id, alert_started_at, verdict, reason, note, actor_id, role, at)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[],"
            " %s::text[], %s::timestamptz[]) AS s,"
            " (VALUES (%s, %s, %s, %s, %s, %s::timestamptz)) AS v"
            f" RETURNING {_COLS}",
            ([s.alert_id for s in subjects], [s.ticket_id for s in subjects],
             [s.camera_id for s in subjects], [s.zone_id for s in subjects],
             [s.event_type for s in subjects], [s.micro_grid_id for s in subjects],
             [s.started_at for s in subjects], verdict, reason, note, actor_id, role, at))
    except UniqueViolation:
        raise SimultaneousVerdict() from None
    return await vcur.fetchall()


async def by_ids(conn: Connection, ids: Sequence[int]) -> list[Verdict]:
    """These verdicts, in the order they were recorded."""
    async with conn.cursor(row_factory=class_row(Verdict)) as cur:
        await cur.execute(f"SELECT {_COLS} FROM verdicts WHERE id = ANY(%s) ORDER BY id",
                          (list(ids),))
        return await cur.fetchall()


async def link_successors(conn: Connection, old: Sequence[int], new: Sequence[int]) -> None:
    """Each replaced row points at its successor (same alert, or same alert-less case)."""
    await conn.execute(
        "UPDATE verdicts o SET replaced_by = n.id FROM verdicts n"
        " WHERE o.id = ANY(%s) AND n.id = ANY(%s)"
        " AND (o.alert_id = n.alert_id OR (o.alert_id IS NULL AND n.alert_id IS NULL"
        "      AND o.ticket_id = n.ticket_id))", (old, new))


async def history(conn: Connection, *, ticket_id: int | None = None,
                  alert_id: UUID | None = None, current_only: bool = False,
                  limit: int = 200) -> list[Verdict]:
    """Verdicts on a case or an alert, newest first."""
    where = ["TRUE"]
    args: list[object] = []
    if ticket_id is not None:
        where.append("ticket_id = %s")
        args.append(ticket_id)
    if alert_id is not None:
        where.append("alert_id = %s")
        args.append(alert_id)
    if current_only:
        where.append("replaced_at IS NULL")
    cur = conn.cursor(row_factory=class_row(Verdict))
    await cur.execute(f"SELECT {_COLS} FROM verdicts WHERE {' AND '.join(where)}"
                      " ORDER BY id DESC LIMIT %s", (*args, limit))
    return await cur.fetchall()


async def current_for_alerts(conn: Connection,
                             alert_ids: Sequence[UUID]) -> dict[UUID, Verdict]:
    """The current verdict of each of these alerts that has one (the dataset export's input)."""
    cur = conn.cursor(row_factory=class_row(Verdict))
    await cur.execute(f"SELECT {_COLS} FROM verdicts WHERE replaced_at IS NULL"
                      " AND alert_id = ANY(%s)", (list(alert_ids),))
    return {v.alert_id: v for v in await cur.fetchall() if v.alert_id is not None}


async def per_camera_day(conn: Connection, start: datetime, end: datetime,
                         tz: str) -> list[CameraDay]:
    """Current verdicts on camera alerts that started in [start, end), per local day, camera,
    zone and event type (docs/indicators.md, "False alarms")."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT to_char(alert_started_at AT TIME ZONE %s, 'YYYY-MM-DD') AS day,"
        " camera_id, zone_id, event_type,"
        " count(*) FILTER (WHERE verdict = 'confirmed') AS confirmed,"
        " count(*) FILTER (WHERE verdict = 'false_alarm') AS false_alarms,"
        " coalesce(jsonb_object_agg(reason, n) FILTER (WHERE reason IS NOT NULL), '{}')"
        "   AS reasons"
        " FROM (SELECT *, count(*) OVER (PARTITION BY"
        "         to_char(alert_started_at AT TIME ZONE %s, 'YYYY-MM-DD'), camera_id, zone_id,"
        "         event_type, reason) AS n"
        "       FROM verdicts WHERE replaced_at IS NULL AND camera_id IS NOT NULL"
        "       AND alert_started_at >= %s AND alert_started_at < %s) v"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4", (tz, tz, start, end))
    return [CameraDay(**r) for r in await cur.fetchall()]
