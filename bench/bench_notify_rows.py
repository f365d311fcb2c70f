"""The phone notification writer's database work per ticket change (issue 16).

At 1,000 alerts/s nearly every alert changes an open ticket whose assignee's phone gets it:
one notification row written before the push (center/services/notify/service.py) and one
"delivered" receipt written after it. The writer used to await one round trip per row and per
receipt; it now sends a batch's rows as one pipelined ``executemany`` and its receipts in a
pipeline. This times both ways on the same PostgreSQL, batches of 200 changes (the writer's
``BATCH``), ``RUNS`` runs each, and prints µs per change (row + receipt), median and worst.

Foreign keys are not checked in this session (``session_replication_role = replica``, so the
rows need no tickets): both ways skip the same index lookup.

Run: ``.venv/bin/python -m bench notify_rows`` (GRIDWATCH_BENCH_NOTIFY_CHANGES, default 10,000).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import services, write_results

CHANGES = int(os.environ.get("GRIDWATCH_BENCH_NOTIFY_CHANGES", "10000"))
BATCH = 200
RUNS = 3
INSERT = ("INSERT INTO notifications (ticket_id, channel, person_id, event, reason, created_at)"
          " VALUES (%s, 'ws', %s, 'update', 'update', %s) RETURNING id")


async def _per_row(conn: Any, rows: list[tuple[int, str]], at: datetime) -> list[int]:
    """The writer before issue 16: one awaited INSERT per row."""
    ids = []
    for ticket_id, person_id in rows:
        cur = await conn.execute(INSERT, (ticket_id, person_id, at))
        ids.append((await cur.fetchone())[0])
    return ids


async def _receipts_per_row(conn: Any, ids: list[int], person: str, at: datetime) -> None:
    from center.store import notifications

    for nid in ids:
        await notifications.mark_delivered(conn, person, [nid], at)


async def _pipelined(conn: Any, rows: list[tuple[int, str]], at: datetime) -> list[int]:
    from center.store import notifications

    return await notifications.add_phones(
        conn, [(t, p, "update", "update") for t, p in rows], at)


async def _receipts_pipelined(conn: Any, ids: list[int], person: str, at: datetime) -> None:
    from center.store import notifications

    async with conn.pipeline():
        for nid in ids:
            await notifications.mark_delivered(conn, person, [nid], at)


async def _run(dsn: str, pipelined: bool) -> float:
    """µs per change: its row written (in batches of BATCH, a transaction each), then its
    delivered receipt (the same)."""
    import psycopg

    insert = _pipelined if pipelined else _per_row
    receipts = _receipts_pipelined if pipelined else _receipts_per_row
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.commit()
        start = time.perf_counter()
        for first in range(0, CHANGES, BATCH):
            rows = [(1 + (first + i) % 4600, "w-001a") for i in range(BATCH)]
            at = datetime.now(UTC)
            async with conn.transaction():
                ids = await insert(conn, rows, at)
            async with conn.transaction():
                await receipts(conn, ids, "w-001a", at)
        return (time.perf_counter() - start) / CHANGES * 1e6


def main() -> None:
    import psycopg

    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="gridwatch-bench-notify-"))
    results: list[dict[str, Any]] = []
    with services(tmp, "bench_template") as (admin, _broker):
        dsn = psycopg.conninfo.make_conninfo(admin, dbname="bench_template")
        for pipelined in (False, True, False, True, False, True)[: 2 * RUNS]:
            us = asyncio.run(_run(dsn, pipelined))
            results.append({"variant": "pipelined" if pipelined else "per row",
                            "us_per_change": us})
    for variant in ("per row", "pipelined"):
        runs = [r["us_per_change"] for r in results if r["variant"] == variant]
        print(f"notify rows  {variant:10} {statistics.median(runs):7.0f} us per change"
              f" (row + delivered receipt), worst {max(runs):.0f} us, {len(runs)} runs of"
              f" {CHANGES} changes; load average {load:.1f} before", flush=True)
    write_results(tmp, results)
