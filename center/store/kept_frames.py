"""The clean full frames edges keep with ``new`` alerts (``alert_frames``, migration 0019),
read with each alert's current verdict for ``gridwatch dataset export``
(``center.services.dataset_export``). Ingest writes them (``center.store.alerts``); retention
drops old ones (``center.store.retention``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

_FRAMES = (
    "SELECT f.alert_id, f.camera_id, f.jpeg, f.width, f.height, f.blurred, f.boxes,"
    " v.verdict, v.reason"
    " FROM alert_frames f LEFT JOIN verdicts v"
    "   ON v.alert_id = f.alert_id AND v.replaced_at IS NULL"
    " WHERE f.seq = 0 AND (%(unjudged)s OR v.verdict IS NOT NULL)"
    "   AND (%(since)s::timestamptz IS NULL OR f.stored_at >= %(since)s)"
    " ORDER BY f.stored_at, f.alert_id")


@dataclass(frozen=True)
class KeptFrame:
    alert_id: UUID
    camera_id: str
    jpeg: bytes
    width: int
    height: int
    blurred: bool
    boxes: list[dict[str, Any]]
    verdict: str | None
    reason: str | None


def load(dsn: str, *, unjudged: bool = False, since: datetime | None = None) -> list[KeptFrame]:
    """The first kept frame of each judged alert (every alert with ``unjudged``) stored since
    ``since``, oldest first. Its own short connection: the export is a command, not a request
    of the running center."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_FRAMES, {"unjudged": unjudged, "since": since}).fetchall()
    return [KeptFrame(r[0], r[1], bytes(r[2]), *r[3:]) for r in rows]
