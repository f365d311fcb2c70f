"""Retention drops whole old partitions and old evidence pictures, and nothing younger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from center.store import retention
from tests.mqtt_helpers import make_alert, tiny_jpeg


async def test_old_partitions_and_snapshots_go_young_ones_stay(db_dsn: str) -> None:
    now = datetime.now(UTC)
    old, young = make_alert(), make_alert()
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await conn.execute("SELECT gridwatch_ensure_daily_partitions('alerts', 1, 1)")
        await conn.execute("CREATE TABLE alerts_20200101 PARTITION OF alerts"
                           " FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-01-02 00:00+00')")
        for alert, at in ((old, datetime(2020, 1, 1, 12, tzinfo=UTC)), (young, now)):
            await conn.execute(
                "INSERT INTO alerts (alert_id, seq, kind, edge_id, camera_id, zone_id,"
                " event_type, label, score, bbox, started_at, observed_at)"
                " VALUES (%s, 0, 'new', 'e', 'c', 'z', '0506', 'two_wheeler', 0.5,"
                " '{0,0,1,1}', %s, %s)", (alert.alert_id, at, at))
            await conn.execute(
                "INSERT INTO alert_snapshots (alert_id, seq, jpeg, stored_at)"
                " VALUES (%s, 0, %s, %s)", (alert.alert_id, tiny_jpeg(), at))
        swept = await retention.sweep(conn, now, alert_days=30, snapshot_days=30)
        assert swept == retention.Swept(partitions_dropped=1, snapshots_deleted=1)
        cur = await conn.execute("SELECT alert_id FROM alerts")
        assert [r[0] for r in await cur.fetchall()] == [young.alert_id]
        cur = await conn.execute("SELECT alert_id FROM alert_snapshots")
        assert [r[0] for r in await cur.fetchall()] == [young.alert_id]
        assert await retention.sweep(conn, now + timedelta(days=1), alert_days=None,
                                     snapshot_days=None) == retention.Swept(0, 0)


async def test_old_dead_letters_and_idempotency_keys_go(db_dsn: str) -> None:
    """Dead letters older than their retention go; so do idempotency keys older than the
    alert time window (a message that old is refused for its time before its key matters)."""
    from center.store import alerts as queries
    from wire.protocol import MAX_ALERT_AGE

    now = datetime.now(UTC)
    old_key, young_key = make_alert(), make_alert()
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        for reason, at in (("old", now - timedelta(days=31)), ("young", now - timedelta(days=1))):
            await queries.dead_letter(conn, "t", b"x", reason)
            await conn.execute("UPDATE dead_letters SET received_at = %s WHERE reason = %s",
                               (at, reason))
        for alert, at in ((old_key, now - MAX_ALERT_AGE - timedelta(days=2)), (young_key, now)):
            await conn.execute("INSERT INTO alert_keys (alert_id, seq, observed_at)"
                               " VALUES (%s, 0, %s)", (alert.alert_id, at))
        swept = await retention.sweep(conn, now, alert_days=None, snapshot_days=None,
                                      dead_letter_days=30)
        assert (swept.dead_letters_deleted, swept.alert_keys_deleted) == (1, 1)
        cur = await conn.execute("SELECT reason FROM dead_letters")
        assert [r[0] for r in await cur.fetchall()] == ["young"]
        cur = await conn.execute("SELECT alert_id FROM alert_keys")
        assert [r[0] for r in await cur.fetchall()] == [young_key.alert_id]
