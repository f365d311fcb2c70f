"""Moving-window rate limits kept in PostgreSQL, so that every center replica counts against
the same budget (docs/security.md "Rate limits", docs/scaling.md).

One row per (rule, key) holds the window's accepted hits, oldest first. A hit is one
statement: ``INSERT ... ON CONFLICT DO UPDATE`` takes the row lock, drops the hits older than
the window, and appends this one only while fewer than ``amount`` remain -- so two replicas
counting one key at the same instant are serialized by the row lock and cannot both take the
last slot. A rejected hit is not recorded (the moving window of the ``limits`` library, which
the in-process limits used, behaves the same). The database's clock (``now()``) stamps the
hits: one clock for every replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from center.store.db import Connection

_HIT = """
INSERT INTO rate_limit_windows AS w (rule, key, hits, allowed, expires_at)
VALUES (%(rule)s, %(key)s,
        CASE WHEN %(amount)s > 0 THEN ARRAY[now()] ELSE '{}'::timestamptz[] END,
        %(amount)s > 0, now() + %(window)s)
ON CONFLICT (rule, key) DO UPDATE SET (allowed, hits, expires_at) = (
    SELECT cardinality(k.kept) < %(amount)s,
           k.kept || CASE WHEN cardinality(k.kept) < %(amount)s THEN ARRAY[now()]
                          ELSE '{}'::timestamptz[] END,
           CASE WHEN cardinality(k.kept) < %(amount)s THEN now() + %(window)s
                ELSE w.expires_at END
    FROM (SELECT ARRAY(SELECT h FROM unnest(w.hits) h WHERE h > now() - %(window)s
                       ORDER BY h) AS kept) AS k)
RETURNING allowed, EXTRACT(EPOCH FROM (hits[1] + %(window)s - now()))::float8
"""


@dataclass(frozen=True)
class Hit:
    """The outcome of one counted attempt."""

    allowed: bool
    #: Seconds until the oldest hit in the window leaves it (a slot frees up); meaningful
    #: when the hit was refused.
    reset_in_s: float


async def hit(conn: Connection, rule: str, key: str, *, amount: int,
              window: timedelta) -> Hit:
    """Count one attempt of ``key`` under ``rule`` (at most ``amount`` per moving ``window``),
    in a statement of its own (run it on an autocommit connection or commit after)."""
    cur = await conn.execute(_HIT, {"rule": rule, "key": key, "amount": amount,
                                    "window": window})
    row = await cur.fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns its row
    return Hit(bool(row[0]), float(row[1] or 0.0))


async def prune(conn: Connection) -> int:
    """Drop the rows of keys whose window has emptied; how many went."""
    cur = await conn.execute("DELETE FROM rate_limit_windows WHERE expires_at < now()")
    return cur.rowcount
