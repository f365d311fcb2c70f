"""Reliability drills against real services, with figures (docs/reliability.md).

    .venv/bin/python -m bench.drills                      # full: 60 s broker outage
    .venv/bin/python -m bench.drills --outage-s 10 --json drills.json

The drills are scenarios of ``gridwatch sim drill`` (``simulators/reliability.py``, run by
``simulators.drill.run_drill`` on a private PostgreSQL, a broker with accounts and the real
center as a subprocess); this command runs them at full length and prints their figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from simulators.drill import FULL, run_drill

DRILLS = ("broker-outage", "edge-restart", "api-fuzz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage-s", type=float, default=FULL.outage_s)
    parser.add_argument("--rate", type=float, default=FULL.outage_rate, help="alerts per second")
    parser.add_argument("--examples", type=int, default=FULL.fuzz_examples,
                        help="schemathesis examples per API operation")
    parser.add_argument("--only", choices=DRILLS, action="append")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the services' folders here")
    args = parser.parse_args(argv)
    size = dataclasses.replace(FULL, outage_s=args.outage_s, outage_rate=args.rate,
                               fuzz_examples=args.examples)
    ok = run_drill(list(args.only or DRILLS), size=size, data_dir=args.keep, report=args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
