"""The read-only DSN for the indicator reads (``GRIDWATCH_DB__READ_DSN``, docs/scaling.md).

The "replica" here is a snapshot of the center's database (``CREATE DATABASE ... TEMPLATE``)
read through a role with nothing but SELECT: a replica that stopped replaying at the moment of
the copy. That makes the routing visible: a case the center stores afterwards is in the main
database (the ticket list shows it) and not in the indicator figures, which come from the
snapshot, exactly as replication lag makes a real replica's figures slightly behind.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from center.app import create_app
from center.domain.context import Context
from center.platform.clock import ManualClock
from center.platform.settings import CenterSettings, DatabaseSettings
from center.store.read_pool import ReadDsnUnusable
from simulators.local_services import Mosquitto
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.test_kpi_api import MG011, NOW, at, build

#: Every indicator, KPI, hotspot and ranking read, as an operator asks for it.
READS: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/indicators", {"level": "grid", "period": "month", "date": "2026-11-01"}),
    ("/api/v1/indicators", {"level": "district", "period": "week", "date": "2026-11-23"}),
    ("/api/v1/indicators", {"level": "worker", "period": "day", "from": "2026-11-16",
                            "to": "2026-11-26"}),
    ("/api/v1/rankings/grids", {"period": "month", "date": "2026-11-01"}),
    ("/api/v1/indicators/headline", {}),
    ("/api/v1/indicators/hotspots", {"period": "month", "date": "2026-11-01"}),
    ("/api/v1/indicators/alerts-daily", {}),
    ("/api/v1/indicators/cases-hourly", {"hours": "48"}),
    ("/api/v1/indicators/false-alarms", {"period": "month", "date": "2026-11-01"}),
    ("/api/v1/indicators/presence", {"period": "month", "date": "2026-11-01"}),
]


def _admin(dsn: str, **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True, **kw)


def _dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


@pytest.fixture
def reader(db_dsn: str) -> Iterator[tuple[str, str]]:
    """A login role with SELECT on every table of the center's database and nothing else:
    (role, password)."""
    role, password = f"gw_read_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    with _admin(db_dsn) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
    yield role, password
    with _admin(db_dsn) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def snapshot(db_dsn: str) -> Iterator[str]:
    """The name of the snapshot database, made by the test once its center has stopped (a
    template may have no other connections) and dropped here."""
    name = f"{_dbname(db_dsn)}_replica"
    yield name
    with _admin(db_dsn) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def _settings(db_dsn: str, port: int, tmp_path: Path, read_dsn: str = "") -> CenterSettings:
    settings = center_settings_for(db_dsn, port, clips={"dir": tmp_path / "clips"})
    settings.db = DatabaseSettings(dsn=db_dsn, pool_min=1, pool_max=4, read_dsn=read_dsn)
    return settings


def _figures(center: RunningCenter) -> list[Any]:
    op = center.client("op-01")
    out = []
    for path, params in READS:
        r = op.get(path, params=params, timeout=20)
        assert r.status_code == 200, (path, r.text)
        out.append(r.json())
    return out


async def _seed(center: RunningCenter) -> None:
    ctx: Context = center.app.state.center.ctx  # type: ignore[attr-defined]
    pool = AsyncConnectionPool(center.settings.db.dsn, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    try:
        await build(pool, ctx)  # test_kpi_api's scenario: 14 cases from Oct 10 to now
    finally:
        await pool.close()


def test_indicator_reads_come_from_the_read_dsn_with_the_same_figures_and_writes_do_not(
        db_dsn: str, mqtt_broker: Mosquitto, reader: tuple[str, str], snapshot: str,
        tmp_path: Path) -> None:
    with serve_center(_settings(db_dsn, mqtt_broker.port, tmp_path),
                      ManualClock(at(10, 10, 9, 0))) as primary_only:
        asyncio.run(_seed(primary_only))
        expected = _figures(primary_only)
    assert expected[4]["today"], "the scenario gives the headline figures something to count"

    with _admin(db_dsn) as conn:  # the replica, as of now
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(snapshot), sql.Identifier(_dbname(db_dsn))))
    role, password = reader
    read_dsn = psycopg.conninfo.make_conninfo(db_dsn, dbname=snapshot, user=role,
                                              password=password)

    with serve_center(_settings(db_dsn, mqtt_broker.port, tmp_path, read_dsn),
                      ManualClock(NOW)) as center:
        assert _figures(center) == expected

        # The center still writes, through the main DSN: a new case today.
        r = center.client("w-0111").post("/api/v1/reports", data={
            "event_type": "0506", "lon": str(MG011[0]), "lat": str(MG011[1]),
            "note": "after the snapshot"})
        assert r.status_code == 201, r.text
        new_id = r.json()["id"]
        assert center.client("op-01").get(f"/api/v1/tickets/{new_id}").status_code == 200
        # ... and the indicator figures are the replica's, which has not seen it yet.
        assert _figures(center) == expected

    # The role cannot write, on the replica or on the primary.
    for dbname in (snapshot, _dbname(db_dsn)):
        dsn = psycopg.conninfo.make_conninfo(db_dsn, dbname=dbname, user=role, password=password)
        with _admin(dsn) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE tickets SET description = 'x'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM ticket_events")


async def _start(settings: CenterSettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pytest.fail("the center started on an unusable read DSN")


@pytest.mark.parametrize("problem", ["no such database", "no SELECT on a table it reads"])
def test_an_unusable_read_dsn_stops_the_start_with_a_clear_error(
        db_dsn: str, mqtt_broker: Mosquitto, reader: tuple[str, str], tmp_path: Path,
        problem: str) -> None:
    role, password = reader
    dbname = _dbname(db_dsn)
    if problem == "no such database":
        dbname, reason = f"{dbname}_nowhere", "does not exist"
    else:
        with _admin(db_dsn) as conn:
            conn.execute(sql.SQL("REVOKE SELECT ON verdicts FROM {}").format(
                sql.Identifier(role)))
        reason = "permission denied for table verdicts"
    read_dsn = psycopg.conninfo.make_conninfo(db_dsn, dbname=dbname, user=role,
                                              password=password)
    with pytest.raises(ReadDsnUnusable) as caught:
        asyncio.run(_start(_settings(db_dsn, mqtt_broker.port, tmp_path, read_dsn)))
    message = str(caught.value)
    assert "GRIDWATCH_DB__READ_DSN" in message and reason in message
    assert password not in message
