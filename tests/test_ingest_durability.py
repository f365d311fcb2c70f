"""Issue 7 drills, small: no alert is lost and no ticket doubled when the center is killed
mid-storm, or when PostgreSQL goes away for a while. Real Mosquitto, real PostgreSQL, the real
center as its own process (``python -m gridwatch.cli center run``), so SIGKILL is a real crash.

The center acknowledges a QoS 1 message only after the batch that stored it has committed, so
whatever it had not stored is redelivered by the broker to its persistent session.
``GRIDWATCH_TEST_PG_OUTAGE_S`` sets the PostgreSQL outage (10 s here; the drill in
docs/performance.md uses 60 s).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from center.store.migrate import migrate
from simulators.local_services import Mosquitto, Postgres, free_port, stop_process
from tests import plain_http
from tests.mqtt_helpers import Storm, forget_session, make_alert
from tests.waiting import wait_until
from wire.protocol import Alert

CAMERAS = ("cam-vn-01", "cam-bj-01", "cam-vtest")  # the default district's cameras
PLACES = [(c, z, e) for c in CAMERAS for z in ("z1", "z2", "z3") for e in ("0506", "0504")]
PG_OUTAGE_S = float(os.environ.get("GRIDWATCH_TEST_PG_OUTAGE_S", "10"))

Key = tuple[uuid.UUID, int]


def _storm(n: int, dup: float, seed: int) -> tuple[list[Alert], set[Key]]:
    """``n`` distinct alert messages over the places (a tenth are ``update`` seq 1 of an earlier
    alert), plus ``dup`` of them again (redeliveries), shuffled."""
    rng = random.Random(seed)
    alerts: list[Alert] = []
    updated: set[uuid.UUID] = set()
    for i in range(n):
        if i % 10 == 9:
            first = alerts[rng.randrange(len(alerts))]
            if first.seq == 0 and first.alert_id not in updated:
                updated.add(first.alert_id)
                alerts.append(make_alert("update", alert_id=first.alert_id, seq=1,
                                         camera_id=first.camera_id, zone_id=first.zone_id,
                                         event_type=first.event_type, snapshot=False))
                continue
        cam, zone, event_type = rng.choice(PLACES)
        alerts.append(make_alert(camera_id=cam, zone_id=zone, event_type=event_type,
                                 snapshot=False))
    distinct = {(a.alert_id, a.seq) for a in alerts}
    assert len(distinct) == len(alerts)
    messages = alerts + rng.sample(alerts, int(n * dup))
    rng.shuffle(messages)
    # An update must follow its new (the edge sends them in order); redeliveries anywhere.
    seen: set[uuid.UUID] = set()
    ordered, later = [], []
    for a in messages:
        if a.seq == 1 and a.alert_id not in seen:
            later.append(a)
        else:
            seen.add(a.alert_id)
            ordered.append(a)
    return ordered + later, distinct


class _CenterProcess:
    """``python -m gridwatch.cli center run`` with its settings in the environment."""

    def __init__(self, dsn: str, mqtt_port: int, client_id: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRIDWATCH_DB__DSN": dsn,
                    "GRIDWATCH_MQTT__PORT": str(mqtt_port),
                    "GRIDWATCH_MQTT__CLIENT_ID": client_id,
                    "GRIDWATCH_HTTP__PORT": str(self.port)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> _CenterProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridwatch.cli", "center", "run"], env=self.env,
                cwd=self.log.parent, stdout=out, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"the center exited:\n{self.log.read_text()[-3000:]}")
            try:
                return bool(plain_http.get(self.url + "/healthz", timeout=2).json()["mqtt"])
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=30, what="the center process up and subscribed")
        return self

    def health(self) -> httpx.Response:
        return plain_http.get(self.url + "/healthz", timeout=5)

    def kill(self) -> None:
        assert self.proc is not None
        stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout=15)


@contextmanager
def _center(dsn: str, port: int, tmp: Path, client_id: str) -> Iterator[_CenterProcess]:
    c = _CenterProcess(dsn, port, client_id, tmp / "center.log")
    try:
        yield c
    finally:
        c.stop()
        forget_session(port, client_id)


def _count(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def _reconciled(dsn: str, distinct: set[Key]) -> bool:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        rows = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        counted = conn.execute("SELECT coalesce(sum(alert_count), 0) FROM tickets").fetchone()[0]
    return rows == len(distinct) and counted == rows


def _assert_reconciled(dsn: str, distinct: set[Key]) -> None:
    """Every distinct (alert_id, seq) stored once and linked; one open ticket per place; the
    tickets' alert_count adds up to the rows."""
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT alert_id, seq FROM alerts").fetchall()
        assert len(stored) == len(set(stored)), "an alert stored twice"
        assert set(stored) == distinct, (f"lost {len(distinct - set(stored))},"
                                         f" unexpected {len(set(stored) - distinct)}")
        assert conn.execute(
            "SELECT count(*) FROM alerts WHERE ticket_id IS NULL").fetchone()[0] == 0
        per_place = conn.execute(
            "SELECT camera_id, zone_id, event_type, count(*), count(*) FILTER (WHERE is_open)"
            " FROM tickets GROUP BY 1, 2, 3").fetchall()
        assert all(n == 1 and n_open == 1 for *_, n, n_open in per_place), per_place
        used = {(c, z, e) for c, z, e in conn.execute(
            "SELECT DISTINCT camera_id, zone_id, event_type FROM alerts").fetchall()}
        assert {p[:3] for p in per_place} == used
        assert conn.execute("SELECT sum(alert_count) FROM tickets").fetchone()[0] == len(stored)
        linked = conn.execute("SELECT t.id, t.alert_count, count(a.*) FROM tickets t"
                              " JOIN alerts a ON a.ticket_id = t.id GROUP BY 1, 2").fetchall()
        assert all(count == n for _, count, n in linked), linked


def test_center_killed_mid_storm_loses_nothing(db_dsn: str, mqtt_broker: Mosquitto,
                                               tmp_path: Path):
    """SIGKILL the center while a storm is arriving, start it again: every alert is stored
    exactly once, one ticket per place. (With acknowledge-on-receipt the inbox and the batch in
    flight were lost with the process.)"""
    messages, distinct = _storm(3000, dup=0.1, seed=7)
    client_id = f"center-drill-{uuid.uuid4().hex[:8]}"
    with _center(db_dsn, mqtt_broker.port, tmp_path, client_id) as center:
        center.start()
        pub = Storm(mqtt_broker.port, messages, rate=1500)
        pub.start()
        wait_until(lambda: _count(db_dsn) >= 300, timeout=30, what="the storm being stored")
        center.kill()
        killed_at = _count(db_dsn)
        assert killed_at < len(distinct), "the storm was over before the kill"
        pub.join(60)
        assert pub.error is None and pub.sent == len(messages)
        center.start()  # same client id: the broker hands back the unacknowledged session
        wait_until(lambda: _reconciled(db_dsn, distinct), timeout=60,
                   what="every alert stored after the restart")
        stats = wait_until(lambda: (s := center.health().json()["ingest"])["acked"]
                           == s["received"] and s, timeout=10, what="every message acked")
    _assert_reconciled(db_dsn, distinct)
    assert stats["stored"] == len(distinct) - killed_at


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[tuple[Postgres, str]]:
    """A PostgreSQL of this test's own, which it stops and starts again on the same port."""
    pg = Postgres(tmp_path / "pg").start()
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE drill")
        dsn = pg.dsn("drill")
        migrate(dsn, commit=True)
        yield pg, dsn
    finally:
        pg.stop("immediate")


def test_postgres_down_during_storm_catches_up(own_pg: tuple[Postgres, str],
                                               mqtt_broker: Mosquitto, tmp_path: Path):
    """PostgreSQL stops for PG_OUTAGE_S mid-storm: the broker keeps taking the edges' alerts,
    /healthz says degraded, and the center catches up when the database is back."""
    pg, dsn = own_pg
    rate = 400.0
    messages, distinct = _storm(int(rate * (PG_OUTAGE_S + 6)), dup=0.05, seed=11)
    with _center(dsn, mqtt_broker.port, tmp_path, f"center-pg-{uuid.uuid4().hex[:8]}") as c:
        c.start()
        pub = Storm(mqtt_broker.port, messages, rate=rate)
        pub.start()
        wait_until(lambda: _count(dsn) >= 200, timeout=30, what="the storm being stored")
        pg.stop("fast")
        down_at = time.monotonic()
        health = wait_until(lambda: (r := c.health()).status_code == 503 and r, timeout=10,
                            what="/healthz degraded")
        assert health.json()["status"] == "degraded" and health.json()["database"] is False
        # The outage lasts PG_OUTAGE_S: its length is the drill's input, not a wait for a result.
        time.sleep(max(0.0, PG_OUTAGE_S - (time.monotonic() - down_at)))
        during = c.health().json()["ingest"]
        pg.start()
        wait_until(lambda: _reconciled(dsn, distinct), timeout=60,
                   what="every alert stored after PostgreSQL came back")
        pub.join(30)
        assert pub.error is None and pub.sent == len(messages)
        health = wait_until(lambda: (r := c.health()).status_code == 200 and r, timeout=10,
                            what="/healthz ok again")
        stats = health.json()["ingest"]
    _assert_reconciled(dsn, distinct)
    assert during["acked"] <= stats["acked"]
    assert stats["db_held_s"] > 0
    assert stats["stored"] == len(distinct)
