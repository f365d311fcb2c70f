"""Republish an edge's recorded alerts into a center: a regression corpus.

``gridwatch edge run --record DIR`` writes ``alerts.jsonl`` (each line a valid ``Alert`` without
its picture) and ``<alert_id>-<seq>.jpg`` snapshots. ``replay_recording`` sends them again with
QoS 1, in their recorded order, waiting the recorded gaps (between ``last_seen_at`` times)
divided by ``speed`` (0: no waiting). With ``fresh_ids`` every alert gets a new ``alert_id``
(the same new id for all messages of one alert) and its times are moved to now, so the
recording raises new tickets in a center that has seen it before; without, the center stores
nothing twice (the original ``(alert_id, seq)`` keys) and the replay is idempotent.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from edge.publish import read_recorded
from simulators.alerts import AlertStorm, StormReport, _Out
from wire.protocol import Alert, alert_topic


def load_recording(folder: Path) -> list[Alert]:
    """The recorded alerts with their snapshots put back."""
    folder = Path(folder)
    if not (folder / "alerts.jsonl").is_file():
        raise FileNotFoundError(f"no alerts.jsonl in {folder} (record with "
                                "`gridwatch edge run --record DIR`)")
    alerts = []
    for a in read_recorded(folder):
        jpg = folder / f"{a.alert_id}-{a.seq}.jpg"
        alerts.append(a.model_copy(update={"snapshot_jpeg": jpg.read_bytes()})
                      if jpg.is_file() else a)
    return alerts


def rewrite(alerts: list[Alert], *, fresh_ids: bool, now: datetime | None = None) -> list[Alert]:
    """With ``fresh_ids``: new alert ids and times moved so the last message is ``now``."""
    if not fresh_ids or not alerts:
        return alerts
    now = now or datetime.now(UTC)
    shift = now - max(a.last_seen_at for a in alerts)
    ids: dict[uuid.UUID, uuid.UUID] = {}
    out = []
    for a in alerts:
        new_id = ids.setdefault(a.alert_id, uuid.uuid4())
        out.append(a.model_copy(update={"alert_id": new_id, "started_at": a.started_at + shift,
                                        "last_seen_at": a.last_seen_at + shift}))
    return out


def replay_recording(folder: Path, host: str, port: int, *, speed: float = 1.0,
                     fresh_ids: bool = False, progress: bool = False,
                     username: str | None = None, password: str | None = None) -> StormReport:
    alerts = rewrite(load_recording(folder), fresh_ids=fresh_ids)
    pub = AlertStorm([], host, port, max_inflight=50, username=username, password=password)
    pub.connect()
    try:
        t0 = time.monotonic()
        first = alerts[0].last_seen_at if alerts else None
        for i, a in enumerate(alerts):
            if speed > 0 and first is not None:
                due = (a.last_seen_at - first).total_seconds() / speed
                wait = due - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
            pub.publish(_Out(alert_topic(a.edge_id, a.camera_id), a.model_dump_json().encode(),
                             "valid", (str(a.alert_id), a.seq), a.kind))
            if progress:
                print(f"\r{i + 1}/{len(alerts)} alerts", end="", flush=True)
        pub.report.seconds = round(time.monotonic() - t0, 2)
        return pub.wait_acked()
    finally:
        if progress:
            print(flush=True)
        pub.close()
