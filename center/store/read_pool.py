"""The second, small pool for the indicator reads (``GRIDWATCH_DB__READ_DSN``): a read replica
or a SELECT-only role, so that the indicator, KPI, hotspot and ranking scans over ``tickets``
and ``ticket_events`` run off the primary that ingests alerts (docs/scaling.md, "A read-only
DSN").

It is checked at start, not at the first request: a read DSN that cannot connect or cannot
read the tables the indicators read stops the center with ``ReadDsnUnusable``, which names the
setting and the database's own reason. A wrong DSN is a deployment mistake, found best while
the operator is still watching the rollout, not as a 500 on the wall an hour later.

Every transaction on it is READ ONLY (``set_read_only``), so even a DSN of a role that could
write cannot be written through by these routes.
"""

from __future__ import annotations

import psycopg

from center.store.db import Pool, open_pool

#: Small: a handful of people read indicators at once, and each read is one query.
READ_POOL_MIN, READ_POOL_MAX = 1, 4
#: What the indicator routes read; a role without SELECT on one of them is refused at start.
READ_TABLES = ("tickets", "ticket_events", "alerts", "alerts_daily", "verdicts", "duty_periods",
               "worker_positions")


class ReadDsnUnusable(RuntimeError):
    """``GRIDWATCH_DB__READ_DSN`` is set but the center cannot read the indicators through it."""


async def open_read_pool(dsn: str, *, wait_s: float = 10) -> Pool:
    """The read pool on ``dsn``, after one connection proved it can read ``READ_TABLES``."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=int(wait_s)) as conn:
            for table in READ_TABLES:  # names from the constant above, never from input
                await conn.execute(f"SELECT 1 FROM {table} LIMIT 0")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadDsnUnusable(
            f"GRIDWATCH_DB__READ_DSN is set but unusable for the indicator reads: {reason}"
            " (fix it, or leave it empty to read indicators from the main database)") from exc
    return await open_pool(dsn, min_size=READ_POOL_MIN, max_size=READ_POOL_MAX, wait_s=wait_s,
                           read_only=True)
