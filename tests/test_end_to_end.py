"""The whole path with real parts: a real street clip → edge (NanoDet) → Mosquitto → center →
PostgreSQL → ticket on the owning worker's websocket."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import yaml

from simulators.demo import DEMO_CAMERAS, DEMO_DETECTOR
from tests.conftest import RunningCenter, shared


def test_recorded_clip_becomes_a_ticket_on_the_workers_phone(
        center: RunningCenter, mqtt_broker, tmp_path: Path) -> None:
    vn = next(c for c in DEMO_CAMERAS if c["id"] == "cam-vn-01")
    camera = {k: v for k, v in vn.items() if k != "media"}
    camera |= {"source": str(shared(vn["media"])), "loop": False}
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge_id": "edge-demo", "broker": {"port": mqtt_broker.port},
        "detector": DEMO_DETECTOR, "cameras": [camera]}))

    with center.ws("w-0111") as ws:
        assert json.loads(ws.recv(5))["type"] == "hello"
        edge = subprocess.run(
            [sys.executable, "-m", "gridwatch.cli", "edge", "run", "--config", str(config),
             "--until-eof", "--speed", "0"],
            capture_output=True, text=True, timeout=180, check=False)
        assert edge.returncode == 0, edge.stdout[-3000:] + edge.stderr[-3000:]
        events = [json.loads(ws.recv(20))]

    # The clip holds two violations: motorbikes parked on the pavement (0506) and the vendor
    # trading in front of the shop (0504). NanoDet sees the vendor's customers but not the
    # stall, and people alone never make doorway trading (docs/edge.md), so only the 0506
    # reaches w-0111, whose micro-grid holds the pavement.
    tickets = {e["data"]["event_type"]: e["data"] for e in events if e["type"] == "ticket"}
    assert set(tickets) == {"0506"}, events
    assert {(t["camera_id"], t["assignee_id"]) for t in tickets.values()} == {
        ("cam-vn-01", "w-0111")}
    with psycopg.connect(center.settings.db.dsn) as conn:
        rows = conn.execute(
            "SELECT a.event_type, a.label, s.jpeg IS NOT NULL FROM alerts a"
            " LEFT JOIN alert_snapshots s USING (alert_id, seq) WHERE a.kind = 'new'").fetchall()
    assert sorted(r[0] for r in rows) == ["0506"]
    # The edge had finished (and logged every alert it raised) before the ticket came.
    assert "kind=new" in edge.stderr and "rule=doorway_trading" not in edge.stderr
    assert all(has_jpeg for _, _, has_jpeg in rows)
    assert next(label for code, label, _ in rows if code == "0506") == "two_wheeler"
