"""The restore drill (docs/deployment.md "Backups"): a running center's database is backed up
with `gridwatch center backup`, restored with `gridwatch center restore` into a new database,
and a center started on the copy serves the same tickets, ledger and photos and goes on taking
alerts (its sequences continue after the last ticket). On the test harness's real PostgreSQL,
with the real pg_dump/pg_restore; the failures name what is missing and change nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from center.cli import center as center_cli
from center.store.backup import BackupError, backup, restore
from simulators.local_services import free_port
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.mqtt_helpers import Publisher, make_alert, tiny_jpeg, wait_until


def _cli(*args: str, dsn: str) -> Any:
    result = CliRunner().invoke(center_cli, list(args), env={"GRIDWATCH_DB__DSN": dsn},
                                catch_exceptions=False)
    return result


def _worked_case(c: RunningCenter, mqtt_port: int) -> tuple[int, bytes]:
    """A camera case taken through accept, arrive and resolve with a photo: alerts with a
    snapshot, a ticket, its ledger and an attachment. Returns the ticket id and the photo."""
    ticket = c.dispatched_case(mqtt_port)
    base = f"/api/v1/tickets/{ticket['id']}"
    worker = c.client("w-0111")
    for action in ("accept", "arrive"):
        assert worker.post(base + "/actions", json={"action": action}).status_code == 200
    photo = tiny_jpeg()
    up = worker.post(base + "/attachments", files={"photo": ("after.jpg", photo, "image/jpeg")})
    assert up.status_code == 201
    done = worker.post(base + "/actions", json={"action": "resolve", "note": "bikes moved",
                                                "attachment_ids": [up.json()["id"]]})
    assert done.json()["state"] == "handled"
    return ticket["id"], photo


def _seen_by(c: RunningCenter) -> dict[str, Any]:
    """What an operator sees: every ticket (id, place, state) and each one's whole ledger."""
    op = c.client("op-01")
    tickets = sorted(op.get("/api/v1/tickets").json(), key=lambda t: t["id"])
    keys = ("id", "state", "camera_id", "event_type", "source", "assignee_id")
    return {"tickets": [{k: t.get(k) for k in keys} for t in tickets],
            "ledgers": {t["id"]: op.get(f"/api/v1/tickets/{t['id']}").json()["events"]
                        for t in tickets}}


def test_a_center_on_the_restored_database_serves_the_same_cases_and_takes_new_alerts(
        db_dsn: str, pg_admin_dsn: str, mqtt_broker, tmp_path: Path) -> None:
    archive = tmp_path / "gridwatch.dump"
    with serve_center(center_settings_for(db_dsn, mqtt_broker.port,
                                          clips={"dir": tmp_path / "clips"})) as source:
        ticket_id, photo = _worked_case(source, mqtt_broker.port)
        before = _seen_by(source)
        # Taken while the center runs, as in production.
        made = _cli("backup", str(archive), dsn=db_dsn)
        assert made.exit_code == 0, made.output
    assert archive.stat().st_mode & 0o077 == 0, "the archive holds password hashes: 0600"
    with psycopg.connect(db_dsn) as conn:
        alerts_before = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert alerts_before >= 1

    copy_name = f"restored_{uuid.uuid4().hex[:10]}"
    copy_dsn = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=copy_name)
    try:
        done = _cli("restore", str(archive), "--dsn", copy_dsn, dsn=db_dsn)
        assert done.exit_code == 0, done.output
        assert f"into new database {copy_name}" in done.output

        with serve_center(center_settings_for(copy_dsn, mqtt_broker.port,
                                              clips={"dir": tmp_path / "clips-2"})) as copy:
            assert _seen_by(copy) == before
            leader = copy.client("l-011")
            resolve = next(e for e in before["ledgers"][ticket_id] if e["action"] == "resolve")
            got = leader.get(resolve["attachments"][0])
            assert got.status_code == 200 and got.content == photo

            # New alerts are taken and numbered after the restored ones (sequences restored).
            pub = Publisher(mqtt_broker.port)
            pub.alert(make_alert(camera_id="cam-bj-01"))
            pub.close()
            op = copy.client("op-01")
            fresh = wait_until(lambda: [t for t in op.get("/api/v1/tickets").json()
                                        if t["id"] not in before["ledgers"]],
                               15, "a ticket for the new alert on the restored center")
            assert fresh[0]["camera_id"] == "cam-bj-01" and fresh[0]["id"] > ticket_id
        with psycopg.connect(copy_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == alerts_before + 1
            old_max, new_min = conn.execute(
                "SELECT max(id) FILTER (WHERE ticket_id <> %(t)s),"
                " min(id) FILTER (WHERE ticket_id = %(t)s) FROM ticket_events",
                {"t": fresh[0]["id"]}).fetchone()
            assert new_min > old_max, "the ledger's numbering goes on after the restored rows"
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {copy_name} WITH (FORCE)")


def test_backup_and_restore_refuse_clearly_and_change_nothing(
        db_dsn: str, pg_admin_dsn: str, tmp_path: Path) -> None:
    archive = tmp_path / "empty.dump"
    backup(db_dsn, archive)

    with pytest.raises(BackupError, match=r"pg_dump not found in .*empty-bin"):
        backup(db_dsn, tmp_path / "x.dump", bin_dir=tmp_path / "empty-bin")
    missing = _cli("restore", str(archive), "--dsn", db_dsn, "--pg-bin",
                   str(tmp_path / "empty-bin"), dsn=db_dsn)
    assert missing.exit_code == 1 and "pg_restore not found in" in missing.output
    with pytest.raises(BackupError, match="no such folder"):
        backup(db_dsn, tmp_path / "nowhere" / "x.dump")
    with pytest.raises(BackupError, match="cannot connect to the database"):
        backup(psycopg.conninfo.make_conninfo(db_dsn, port=free_port()), tmp_path / "y.dump")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.dump"], "no partial files"

    with pytest.raises(BackupError, match="no such backup file"):
        restore(tmp_path / "none.dump", db_dsn)
    text = tmp_path / "notes.sql"
    text.write_text("SELECT 1;\n", encoding="utf-8")
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        restore(text, db_dsn)
    with pytest.raises(BackupError, match="cannot connect to the target server"):
        restore(archive, psycopg.conninfo.make_conninfo(db_dsn, port=free_port()))

    empty = f"empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {empty}")
    try:
        into_empty = restore(archive, psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=empty))
        assert (into_empty.database, into_empty.created, into_empty.pending) == (empty, False, 0)
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {empty} WITH (FORCE)")

    with psycopg.connect(db_dsn) as conn:
        people = conn.execute("SELECT count(*) FROM district_people").fetchone()[0]
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'marker')")
    with pytest.raises(BackupError, match=r"is not empty \(\d+ tables\).*nothing was changed"):
        restore(archive, db_dsn)
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM district_people").fetchone()[0] == people
        assert conn.execute("SELECT 1 FROM schema_migrations WHERE version = 9999").fetchone()
