"""``gridwatch sim replay-alerts``: an edge recording (``FolderRecorder``: alerts.jsonl + JPEGs)
republished into a running center reproduces it: the same (alert_id, seq) keys and snapshots;
again it stores nothing twice; with --fresh-ids it raises the cases anew."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from click.testing import CliRunner

from edge.publish import FolderRecorder, read_recorded
from gridwatch.cli import cli
from simulators.alerts import StormReport
from simulators.mjpeg_server import load_jpegs
from simulators.reconcile import reconcile_alerts, stored_keys, wait_drained
from tests.conftest import RunningCenter, shared
from tests.waiting import wait_until
from wire.protocol import Alert


def _record(folder: Path) -> list[Alert]:
    """A recording as the edge writes it: one violation's new / update / end on the pavement
    clip's camera, with real frames of the clip as snapshots, 0.3 s apart."""
    frames = load_jpegs(shared("media/vn_truccat_intersection_pavement_vendor_6s.mp4"),
                        max_frames=3, every=20, max_width=640)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    aid = uuid.uuid4()
    rec = FolderRecorder(folder)
    alerts = []
    for seq, kind in enumerate(("new", "update", "end")):
        a = Alert(alert_id=aid, seq=seq, kind=kind, edge_id="edge-demo", camera_id="cam-vn-01",
                  zone_id="pavement-east", event_type="0506", label="two_wheeler", score=0.6,
                  bbox=(0.8, 0.5, 0.9, 0.8), started_at=t0,
                  last_seen_at=t0 + timedelta(seconds=0.3 * seq), snapshot_jpeg=frames[seq])
        rec.send(a)
        alerts.append(a)
    return alerts


def _acked(center: RunningCenter) -> int:
    """MQTT messages the center has acknowledged (each after its batch committed)."""
    return center.client().get("/healthz").json()["ingest"]["acked"]


def _replay(broker: int, folder: Path, *extra: str) -> StormReport:
    out = folder.parent / f"sent-{time.monotonic_ns()}.json"
    result = CliRunner().invoke(cli, ["sim", "replay-alerts", str(folder), "--broker",
                                      f"127.0.0.1:{broker}", "--report", str(out), *extra])
    assert result.exit_code == 0, result.output
    return StormReport.from_json(out.read_text())


def test_replay_reproduces_a_recording(center, db_dsn, mqtt_broker, tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    recorded = _record(folder)
    assert len(read_recorded(folder)) == 3

    t0 = time.monotonic()
    sent = _replay(mqtt_broker.port, folder, "--speed", "1")
    assert time.monotonic() - t0 >= 0.55, "the recorded gaps (0.6 s) are kept at speed 1"
    assert sorted(sent.alerts) == [(str(a.alert_id), a.seq) for a in recorded]
    wait_drained(db_dsn, 3, 0)
    assert reconcile_alerts(db_dsn, sent).ok
    with psycopg.connect(db_dsn) as conn:
        snaps = conn.execute("SELECT jpeg FROM alert_snapshots ORDER BY seq").fetchall()
    assert [bytes(s[0]) for s in snaps] == [a.snapshot_jpeg for a in recorded]
    tickets = center.client("op-01").get("/api/v1/tickets").json()
    assert len(tickets) == 1 and tickets[0]["camera_id"] == "cam-vn-01"

    # the same recording again: the center stores nothing twice. It acknowledges a message
    # once its batch has committed, so three more acknowledgements mean all three are handled.
    acked = _acked(center)
    _replay(mqtt_broker.port, folder, "--speed", "0")
    wait_until(lambda: _acked(center) >= acked + 3, 10, "the replayed three handled")
    assert set(stored_keys(db_dsn).values()) == {1} and len(stored_keys(db_dsn)) == 3

    # fresh ids: the same story once more, as new alerts
    fresh = _replay(mqtt_broker.port, folder, "--speed", "0", "--fresh-ids")
    assert len({a for a, _ in fresh.alerts}) == 1
    assert not {a for a, _ in fresh.alerts} & {str(recorded[0].alert_id)}
    wait_drained(db_dsn, 6, 0)
    assert len(stored_keys(db_dsn)) == 6
