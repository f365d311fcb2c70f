"""Verdicts: was an alert (or a case) a real violation or a false alarm, and why.

People who look at the evidence (operators on the wall, leaders, the case's worker on site)
judge; the detector's figures (false alarms per camera-day, docs/indicators.md) and the
training-set export (hard negatives) are counted from what they said. One row per judged alert
(migration 0018): a case's verdict is a verdict on each of its alerts, since an alert is what a
camera raised and what a model learns from. A later verdict replaces the current one and the
old row stays, as the ticket ledger keeps every transition: who changed their mind is evidence
too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from center.services.tickets import Ticket

Kind = Literal["confirmed", "false_alarm"]
KINDS: tuple[Kind, ...] = ("confirmed", "false_alarm")
#: Why a false alarm was one; the detector's known failure modes (issue #12), plus "other".
REASONS: tuple[str, ...] = ("wrong_class", "not_parked", "rider", "person_not_goods",
                            "outside_zone", "other")


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


_COLS = ", ".join(Verdict.__dataclass_fields__)


async def alert_subject(conn: AsyncConnection, alert_id: UUID) -> Subject | None:
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


async def case_subjects(conn: AsyncConnection, t: Ticket) -> list[Subject]:
    """Every alert of a case (one subject without an alert for a hand-reported case). The
    camera's rows are searched through the (camera_id, observed_at) index; the case's first
    and last alert count even when retention has dropped their rows."""
    if t.camera_id is None:
        return [Subject(None, t.id, None, None, t.event_type, t.micro_grid_id, t.opened_at)]
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT alert_id, min(started_at) AS started_at FROM alerts"
        " WHERE camera_id = %s AND ticket_id = %s GROUP BY alert_id", (t.camera_id, t.id))
    started = {r["alert_id"]: r["started_at"] for r in await cur.fetchall()}
    for known in (t.first_alert_id, t.last_alert_id):
        if known is not None:
            started.setdefault(known, None)
    return [Subject(a, t.id, t.camera_id, t.zone_id, t.event_type, t.micro_grid_id,
                    at or t.opened_at) for a, at in sorted(started.items(), key=str)]


async def record(conn: AsyncConnection, subjects: Sequence[Subject], *, verdict: Kind,
                 reason: str | None, note: str, actor_id: str, role: str,
                 at: datetime) -> list[Verdict]:
    """Write a verdict on each subject, replacing their current ones (kept as history).

    Must run in a transaction. The current rows are locked first, in one order, so two judges
    of one case serialise instead of tripping over the unique "one current verdict" index."""
    alert_ids = [s.alert_id for s in subjects if s.alert_id is not None]
    case_ids = [s.ticket_id for s in subjects if s.alert_id is None]
    cur = await conn.execute(
        "SELECT id FROM verdicts WHERE replaced_at IS NULL"
        " AND (alert_id = ANY(%s) OR (alert_id IS NULL AND ticket_id = ANY(%s)))"
        " ORDER BY id FOR UPDATE", (alert_ids, case_ids))
    old = [r[0] for r in await cur.fetchall()]
    await conn.execute("UPDATE verdicts SET replaced_at = %s WHERE id = ANY(%s)", (at, old))
    vcur = conn.cursor(row_factory=class_row(Verdict))
    await vcur.execute(
        "INSERT INTO verdicts (alert_id, ticket_id, camera_id, zone_id, event_type,"
        " micro_grid_id, alert_started_at, verdict, reason, note, actor_id, role, at)"
        " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::timestamptz[]) AS s, (VALUES (%s, %s, %s, %s, %s, %s::timestamptz)) AS v"
        f" RETURNING {_COLS}",
        ([s.alert_id for s in subjects], [s.ticket_id for s in subjects],
         [s.camera_id for s in subjects], [s.zone_id for s in subjects],
         [s.event_type for s in subjects], [s.micro_grid_id for s in subjects],
         [s.started_at for s in subjects], verdict, reason, note, actor_id, role, at))
    made = await vcur.fetchall()
    # Each replaced row points at its successor (same alert, or same alert-less case).
    await conn.execute(
        "UPDATE verdicts o SET replaced_by = n.id FROM verdicts n"
        " WHERE o.id = ANY(%s) AND n.id = ANY(%s)"
        " AND (o.alert_id = n.alert_id OR (o.alert_id IS NULL AND n.alert_id IS NULL"
        "      AND o.ticket_id = n.ticket_id))", (old, [v.id for v in made]))
    return made


async def history(conn: AsyncConnection, *, ticket_id: int | None = None,
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


async def current_for_alerts(conn: AsyncConnection,
                             alert_ids: Sequence[UUID]) -> dict[UUID, Verdict]:
    """The current verdict of each of these alerts that has one (the dataset export's input)."""
    cur = conn.cursor(row_factory=class_row(Verdict))
    await cur.execute(f"SELECT {_COLS} FROM verdicts WHERE replaced_at IS NULL"
                      " AND alert_id = ANY(%s)", (list(alert_ids),))
    return {v.alert_id: v for v in await cur.fetchall() if v.alert_id is not None}


@dataclass(frozen=True)
class CameraDay:
    day: str              # the alert's day in the district's time zone (YYYY-MM-DD)
    camera_id: str
    zone_id: str
    event_type: str
    confirmed: int        # alerts whose current verdict is "confirmed"
    false_alarms: int     # alerts whose current verdict is "false alarm"
    reasons: dict[str, int]


async def per_camera_day(conn: AsyncConnection, start: datetime, end: datetime,
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
