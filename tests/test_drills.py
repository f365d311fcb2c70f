"""The reliability drills of ``bench/drills.py`` on real services, shortened: a 10 s broker
outage during an alert storm (0 lost, 0 duplicated) and an edge SIGKILLed mid-violation (one
``new``, one ticket). ``python -m bench.drills`` runs them full length (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

from bench.drills import broker_outage, edge_restart, stack


def test_broker_outage_loses_nothing(tmp_path: Path, db_dsn: str) -> None:
    with stack(tmp_path, db_dsn) as s:
        # before_s > the broker's autosave_interval (5 s): see docs/reliability.md.
        r = broker_outage(s, outage_s=10, rate=40, before_s=6, after_s=3, settle_s=60)
    assert r["sent"] > 500 and r["peak_queued_on_edge"] > 200, r
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["edge_dropped"] == 0, r
    assert r["ok"], r


def test_edge_restart_mid_violation_sends_one_new(tmp_path: Path, db_dsn: str) -> None:
    with stack(tmp_path, db_dsn) as s:
        r = edge_restart(s, stay_s=3)
    assert (r["new"], r["end"], r["alert_ids"], r["tickets"]) == (1, 1, 1, 1), r
