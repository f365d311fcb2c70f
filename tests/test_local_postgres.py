"""The private PostgreSQL of the demo and the tests (``simulators.local_services.Postgres``):
password authentication only, the password in a 0600 pgpass file that the DSN names, and a
cluster made by an older gridwatch (``trust`` for every local user) moved over at start
(issue 11: anyone on the box could read the JWT signing key from the demo's database)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from simulators.local_services import PG_BIN, Postgres, free_port, pgpass_password


def _refused(conninfo: str) -> str:
    """The error PostgreSQL gives a connection; fails the test if it is let in."""
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(conninfo).close()
    return str(caught.value)


def _auth_methods(pg: Postgres) -> list[tuple[str]]:
    """What the running cluster's pg_hba.conf asks of a connection."""
    with psycopg.connect(pg.dsn()) as conn:
        return conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()


def _without_password(pg: Postgres, tmp_path: Path) -> list[str]:
    """Connection strings for the superuser, over TCP and the socket, with no password (an
    empty pgpass file, so no ~/.pgpass of whoever runs the tests can step in)."""
    empty = tmp_path / "empty.pgpass"
    empty.touch(mode=0o600)
    common = f"port={pg.port} user=postgres dbname=postgres passfile={empty}"
    return [f"host=127.0.0.1 {common}", f"host={pg.data_dir} {common}"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Postgres]:
    pg = Postgres(tmp_path / "pg").start()
    try:
        yield pg
    finally:
        pg.stop("immediate")


def test_connections_without_the_password_are_refused(cluster: Postgres,
                                                       tmp_path: Path) -> None:
    assert cluster.password_file == tmp_path / "pg.pgpass"
    assert cluster.password_file.stat().st_mode & 0o777 == 0o600
    password = pgpass_password(cluster.password_file)
    assert password and password not in cluster.dsn()
    with psycopg.connect(cluster.dsn()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert _auth_methods(cluster) == [("scram-sha-256",)]
    for conninfo in _without_password(cluster, tmp_path):
        assert "no password supplied" in _refused(conninfo)
    assert "password authentication failed" in _refused(
        f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres password=guess")


def _as_postgres(*cmd: str) -> None:
    """Run a PostgreSQL binary as the older gridwatch did (as the postgres user when root)."""
    full = [str(PG_BIN / cmd[0]), *cmd[1:]]
    if os.geteuid() == 0:
        full = ["runuser", "-u", "postgres", "--", *full]
    subprocess.run(full, check=True, capture_output=True, text=True)


def test_a_trust_cluster_of_an_older_version_is_moved_to_passwords(tmp_path: Path) -> None:
    """The demo's data folder from before: initdb --auth=trust, a database with rows. At the
    next start the rows are still there and the password is required."""
    data = tmp_path / "pg"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        os.chmod(tmp_path, 0o755)
    _as_postgres("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8")
    port = free_port()
    _as_postgres("pg_ctl", "-D", str(data), "-w", "-l", str(data / "server.log"), "-o",
                 f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", "start")
    try:
        old = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(old, autocommit=True) as conn:  # trust: no password at all
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('from before')")
    finally:
        _as_postgres("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")

    pg = Postgres(data, port).start()
    try:
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("from before",)]
        for conninfo in _without_password(pg, tmp_path):
            assert "no password supplied" in _refused(conninfo)
        assert _auth_methods(pg) == [("scram-sha-256",)]
    finally:
        pg.stop("immediate")
