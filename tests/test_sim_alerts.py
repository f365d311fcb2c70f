"""``gridwatch sim alerts``: a storm through the broker into a running center reconciles with
the database exactly (alerts stored once, malformed ones dead-lettered, tickets legal)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from simulators.alerts import AlertStorm, StormReport, district_cameras, parse_burst, rate_at
from simulators.reconcile import check_tickets, reconcile_alerts, wait_drained

DEMO_DISTRICT = Path(__file__).resolve().parents[1] / "center" / "defaults" / "district"


def test_burst_pattern() -> None:
    burst = parse_burst("2-4:x5,10-11:x2")
    assert rate_at(1, 10, burst) == 10
    assert rate_at(3, 10, burst) == 50
    assert rate_at(10.5, 10, burst) == 20
    assert parse_burst("none") == []
    with pytest.raises(ValueError, match="START-END"):
        parse_burst("fast")


def test_same_seed_same_stream(mqtt_broker) -> None:
    cams = district_cameras(DEMO_DISTRICT)

    def head(seed: int) -> list[tuple[str, str]]:
        storm = AlertStorm(cams, "127.0.0.1", mqtt_broker.port, seed=seed, malformed=0.1,
                           duplicates=0.1)
        return [(o.what, o.kind) for o in (storm.next_message() for _ in range(200))]

    assert head(3) == head(3)
    assert head(3) != head(4)


def _sim(args: list[str]) -> str:
    """Run ``gridwatch sim`` as its user does, in a process of its own, and return its output:
    inside the test's process (``CliRunner``) its publisher would share the GIL with the
    center under test, and a storm's pace would measure the two together."""
    result = subprocess.run([sys.executable, "-m", "gridwatch.cli", *args], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_storm_reconciles_with_the_database(center, db_dsn, mqtt_broker, tmp_path) -> None:
    out = tmp_path / "sent.json"
    output = _sim([
        "sim", "alerts", "--broker", f"127.0.0.1:{mqtt_broker.port}",
        "--district", str(DEMO_DISTRICT), "--rate", "150", "--duration", "3",
        "--burst", "1-2:x3", "--malformed", "0.05", "--duplicates", "0.1", "--seed", "7",
        "--report", str(out)])
    sent = StormReport.from_json(out.read_text())
    summary = json.loads(output[output.index("{"):])
    assert summary["valid"] == sent.valid and summary["unacked"] == 0
    assert sent.valid > 200 and sent.duplicates > 10 and sent.malformed > 5
    assert len(set(sent.alerts)) == sent.valid  # each valid message is a new (alert_id, seq)

    wait_drained(db_dsn, sent.valid, sent.malformed, timeout=60)
    check = reconcile_alerts(db_dsn, sent)
    assert check.ok, check.as_dict()
    assert check.stored == sent.valid and check.dead_lettered == sent.malformed
    tickets = check_tickets(db_dsn)
    assert tickets.ok, tickets.as_dict()
    assert tickets.tickets > 0


def test_the_demo_stream_speaks_only_for_edge_sims_cameras(center, db_dsn, mqtt_broker,
                                                           tmp_path) -> None:
    """The demo's synthetic stream (``simulators/demo.py``) as it is started, shortened: every
    message is for a camera the demo district gives to edge-sim, so the center stores all of
    them (an edge may speak only for its own cameras) and the real edge's cameras stay its own."""
    from center.domain.district import load_district
    from simulators.demo import DEMO_CAMERAS, DEMO_EDGE_ID, SIM_CAMERAS, SIM_EDGE_ID, sim_commands

    district = load_district(DEMO_DISTRICT / "district.yaml")
    assert {c: district.cameras[c].edge_id for c in SIM_CAMERAS} == dict.fromkeys(
        SIM_CAMERAS, SIM_EDGE_ID)
    assert {district.cameras[c["id"]].edge_id for c in DEMO_CAMERAS} == {DEMO_EDGE_ID}
    runs = []
    for start in (1, 2):  # the demo started twice on the same data
        cmd = sim_commands(mqtt_broker.port, center.url, tmp_path / "unused")["sim-alerts"]
        args = cmd[cmd.index("sim"):]
        args[args.index("--duration") + 1], args[args.index("--rate") + 1] = "3", "30"
        out = tmp_path / f"sent-{start}.json"
        _sim([*args, "--report", str(out)])
        runs.append(StormReport.from_json(out.read_text()))
        assert runs[-1].valid > 20 and runs[-1].malformed == 0
    sent = replace(runs[0], valid=runs[0].valid + runs[1].valid,
                   alerts=runs[0].alerts + runs[1].alerts)
    wait_drained(db_dsn, sent.valid, 0, timeout=60)
    check = reconcile_alerts(db_dsn, sent)
    assert check.ok and check.stored == sent.valid, check.as_dict()  # none sent again
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
        cams = {r[0] for r in conn.execute("SELECT DISTINCT camera_id FROM alerts")}
    assert cams and cams <= set(SIM_CAMERAS)
