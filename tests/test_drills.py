"""The reliability drills (``simulators/reliability.py``) on real services, shortened (the
``SMALL`` size): a 10 s broker outage during an alert storm (0 lost, 0 duplicated) and an edge
SIGKILLed mid-violation (one ``new``, one ticket), run by the one drill frame as
``gridwatch sim drill --small --scenario broker-outage,edge-restart`` would.
``python -m bench.drills`` runs them full length (docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path

from simulators.drill import run_drill


def test_broker_outage_loses_nothing_and_a_restarted_edge_sends_one_new(tmp_path: Path) -> None:
    report = tmp_path / "drills.json"
    lines: list[str] = []
    ok = run_drill(["broker-outage", "edge-restart"], small=True, data_dir=tmp_path / "data",
                   report=report, echo=lines.append)
    results = {r["scenario"]: r for r in json.loads(report.read_text())}
    outage = results["broker-outage"]["figures"]
    assert outage["sent"] > 500 and outage["peak_queued_on_edge"] > 200, outage
    assert outage["lost"] == 0 and outage["duplicated"] == 0 and outage["edge_dropped"] == 0
    restart = results["edge-restart"]["figures"]
    assert (restart["new"], restart["end"], restart["alert_ids"], restart["tickets"]) == (
        1, 1, 1, 1), restart
    # the figures are printed as docs/reliability.md shows them
    printed = lines[-1]
    assert "| broker-outage | outage_s 10" in printed and "| edge-restart |" in printed, printed
    assert ok, results
