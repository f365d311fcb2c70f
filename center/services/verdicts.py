"""Verdicts: was an alert (or a case) a real violation or a false alarm, and why.

People who look at the evidence (operators on the wall, leaders, the case's worker on site)
judge; the detector's figures (false alarms per camera-day, docs/indicators.md) and the
training-set export (hard negatives) are counted from what they said. One row per judged alert
(migration 0018): a case's verdict is a verdict on each of its alerts, since an alert is what a
camera raised and what a model learns from. A later verdict replaces the current one and the
old row stays, as the ticket ledger keeps every transition: who changed their mind is evidence
too. The rows, and the reads of them (a case's history, the current verdict per alert, false
alarms per camera-day), are in ``center.store.verdicts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from center.services.tickets import Ticket
from center.store import verdicts
from center.store.db import Connection
from center.store.verdicts import Subject, Verdict

Kind = Literal["confirmed", "false_alarm"]
KINDS: tuple[Kind, ...] = ("confirmed", "false_alarm")
#: Why a false alarm was one; the detector's known failure modes (issue #12), plus "other".
REASONS: tuple[str, ...] = ("wrong_class", "not_parked", "rider", "person_not_goods",
                            "outside_zone", "other")


async def case_subjects(conn: Connection, t: Ticket) -> list[Subject]:
    """Every alert of a case (one subject without an alert for a hand-reported case). The
    case's first and last alert count even when retention has dropped their rows."""
    if t.camera_id is None:
        return [Subject(None, t.id, None, None, t.event_type, t.micro_grid_id, t.opened_at)]
    started: dict[UUID, datetime | None] = dict(
        await verdicts.case_alert_starts(conn, t.camera_id, t.id))
    for known in (t.first_alert_id, t.last_alert_id):
        if known is not None:
            started.setdefault(known, None)
    return [Subject(a, t.id, t.camera_id, t.zone_id, t.event_type, t.micro_grid_id,
                    at or t.opened_at) for a, at in sorted(started.items(), key=str)]


async def record(conn: Connection, subjects: Sequence[Subject], *, verdict: Kind,
                 reason: str | None, note: str, actor_id: str, role: str,
                 at: datetime) -> list[Verdict]:
    """Write a verdict on each subject, replacing their current ones (kept as history).

    Must run in a transaction. The current rows are locked first, in one order, so two judges
    of one case serialise instead of tripping over the unique "one current verdict" index;
    two first verdicts on one alert still can: the second raises
    ``center.store.verdicts.SimultaneousVerdict``."""
    alert_ids = [s.alert_id for s in subjects if s.alert_id is not None]
    case_ids = [s.ticket_id for s in subjects if s.alert_id is None]
    old = await verdicts.lock_current(conn, alert_ids, case_ids)
    await verdicts.mark_replaced(conn, old, at)
    made = await verdicts.insert(conn, subjects, verdict=verdict, reason=reason, note=note,
                                 actor_id=actor_id, role=role, at=at)
    await verdicts.link_successors(conn, old, [v.id for v in made])
    return made


def event(made: Sequence[Verdict], assignee_id: str | None
          ) -> tuple[dict[str, Any], list[str]]:
    """The ``verdict`` event of one recording (``record``'s rows, one per alert of a case, or
    the case's own), and who hears it besides the walls (and the leaders the hub's ticket
    filter lets through): the case's worker. The same from whichever replica recorded it
    (center/transport/replica_events.py), as ``clips.clip_event`` is for clips."""
    first = made[0]
    data = {"ticket_id": first.ticket_id,
            "alert_ids": [str(v.alert_id) for v in made if v.alert_id],
            "verdict": first.verdict, "reason": first.reason, "camera_id": first.camera_id,
            "zone_id": first.zone_id, "event_type": first.event_type,
            "micro_grid_id": first.micro_grid_id, "actor_id": first.actor_id,
            "role": first.role, "at": first.at.isoformat(), "assignee_id": assignee_id}
    return data, [assignee_id] if assignee_id else []
