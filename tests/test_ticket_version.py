"""A ticket's updated_at only moves forward (migration 0029).

It is the ticket's version: screens keep the view with the newest one. Two replicas'
transactions on one ticket can commit in the other order than they took their stamps; the
last commit must still carry the newest stamp, or a wall keeps the stale view. Real
PostgreSQL, a real center's ticket."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from tests.conftest import RunningCenter
from tests.test_wall_map_cases import report_case


def _stamp(dsn: str, ticket: int, sql: str = "") -> object:
    with psycopg.connect(dsn) as conn:
        if sql:
            conn.execute(sql, (ticket,))
        return conn.execute("SELECT updated_at FROM tickets WHERE id = %s",
                            (ticket,)).fetchone()[0]


def test_an_older_stamp_moves_forward_and_an_untouched_one_stays(center: RunningCenter,
                                                                  db_dsn: str) -> None:
    ticket = report_case(center, "w-0111")
    before = _stamp(db_dsn, ticket)
    late = _stamp(db_dsn, ticket, "UPDATE tickets SET alert_count = alert_count + 1,"
                                  " updated_at = updated_at - interval '1 hour' WHERE id = %s")
    assert late == before + timedelta(microseconds=1)
    kept = _stamp(db_dsn, ticket, "UPDATE tickets SET alert_count = alert_count + 1"
                                  " WHERE id = %s")
    assert kept == late
    newer = _stamp(db_dsn, ticket, "UPDATE tickets SET updated_at = updated_at"
                                   " + interval '1 minute' WHERE id = %s")
    assert newer == late + timedelta(minutes=1)
