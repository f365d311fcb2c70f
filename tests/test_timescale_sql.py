"""The TimescaleDB branch of migration 0032 (compression, retention by drop_chunks), checked
as far as a machine without TimescaleDB allows (docs/deployment.md, "TimescaleDB").

TimescaleDB cannot be installed here, so the branch is never executed. What is checked:
PostgreSQL's own parser reads every statement of it whenever the migration runs (they are
static plpgsql statements, compiled with the block; a syntax error planted in the untaken
branch fails the migration, which shows the check is real); the named arguments of each
TimescaleDB function match its signature in TimescaleDB's source; the compression options
are ones TimescaleDB knows and name real columns; and on plain PostgreSQL the migration
changes nothing but the retention function, which still drops partitions.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from center.store.migrate import MIGRATIONS_DIR

MIGRATION = MIGRATIONS_DIR / "0032_timescale_compression.sql"

#: Parameter names of the TimescaleDB functions the migration calls, as declared in TimescaleDB's
#: sql/policy_api.sql and sql/ddl_api.sql (2.x; 2.17, the compose image's, adds optional
#: parameters after these, which are not used).
SIGNATURES: dict[str, tuple[str, ...]] = {
    "add_compression_policy": ("hypertable", "compress_after", "if_not_exists"),
    "remove_retention_policy": ("relation", "if_exists"),
    "drop_chunks": ("relation", "older_than", "newer_than", "verbose"),
}
#: The ALTER TABLE ... SET options of TimescaleDB's compression (docs: ALTER TABLE
#: (Compression)): the switch and its three settings.
COMPRESSION_OPTIONS = {"timescaledb.compress", "timescaledb.compress_segmentby",
                       "timescaledb.compress_orderby",
                       "timescaledb.compress_chunk_time_interval"}


def _calls(sql: str, function: str) -> list[str]:
    """The argument text of every call of ``function`` in ``sql`` (parentheses balanced)."""
    found = []
    for m in re.finditer(rf"\b{function}\(", sql):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        found.append(sql[m.end():i - 1])
    return found


def _run(dsn: str, sql: str) -> None:
    """Run ``sql`` in a transaction that is rolled back: the database is left as it was."""
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(sql)
        finally:
            conn.rollback()


def test_plain_postgresql_keeps_partitioned_tables_without_timescale_settings(
        db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT name FROM schema_migrations WHERE version = 32"
                            ).fetchone() == (MIGRATION.name,)
        assert conn.execute("SELECT count(*) FROM pg_extension"
                            " WHERE extname = 'timescaledb'").fetchone() == (0,)
        rows = conn.execute(
            "SELECT c.relname, c.reloptions, p.partrelid IS NOT NULL FROM pg_class c"
            " LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid"
            " WHERE c.relname IN ('alerts', 'worker_positions') ORDER BY 1").fetchall()
    assert rows == [("alerts", None, True), ("worker_positions", None, True)]


def test_every_statement_of_the_untaken_branch_is_parsed(db_dsn: str) -> None:
    sql = MIGRATION.read_text(encoding="utf-8")
    with psycopg.connect(db_dsn) as conn:
        # The parser reads the static statements of a DO block or function only with this on
        # (PostgreSQL's default, and the migrations' connection does not change it).
        assert conn.execute("SHOW check_function_bodies").fetchone() == ("on",)
    _run(db_dsn, sql)
    plants = {
        "ALTER TABLE ... SET (timescaledb...)": ("timescaledb.compress_segmentby = 'person_id'",
                                                 "timescaledb.compress_segmentby = = 'person_id'"),
        "add_compression_policy": ("compress_after => interval '8 days',",
                                   "compress_after => interval '8 days',,"),
        "remove_retention_policy": ("remove_retention_policy('alerts', if_exists",
                                    "remove_retention_policy('alerts' if_exists"),
        "drop_chunks": ("older_than => gridwatch_drop_daily_partitions.older_than",
                        "older_than => => gridwatch_drop_daily_partitions.older_than"),
    }
    for what, (good, bad) in plants.items():
        assert sql.count(good) == 1, what
        with pytest.raises(psycopg.errors.SyntaxError):
            _run(db_dsn, sql.replace(good, bad))


def test_timescale_calls_use_the_documented_parameters() -> None:
    sql = MIGRATION.read_text(encoding="utf-8")
    for function, params in SIGNATURES.items():
        calls = _calls(sql, function)
        assert calls, f"{function} is not called"
        for args in calls:
            named = re.findall(r"(\w+)\s*=>", args)
            assert set(named) <= set(params), (function, named)


def test_compression_options_are_timescale_options_on_real_columns(db_dsn: str) -> None:
    sql = MIGRATION.read_text(encoding="utf-8")
    settings = re.findall(r"ALTER TABLE (\w+) SET \((timescaledb\..*?)\);", sql, re.DOTALL)
    assert {table for table, _ in settings} == {"alerts", "worker_positions"}
    with psycopg.connect(db_dsn) as conn:
        for table, options in settings:
            given = dict(re.findall(r"(timescaledb\.\w+)(?:\s*=\s*'([^']*)')?", options))
            assert set(given) <= COMPRESSION_OPTIONS and "timescaledb.compress" in given
            columns = {r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped", (table,))}
            segmentby = given["timescaledb.compress_segmentby"].split(",")
            orderby = [re.sub(r"\s+(ASC|DESC)$", "", c.strip())
                       for c in given["timescaledb.compress_orderby"].split(",")]
            named = [c.strip() for c in segmentby] + orderby
            assert set(named) <= columns, (table, set(named) - columns)
            # Every primary-key column is segmented or ordered by (else TimescaleDB warns, and
            # a unique check on a compressed chunk cannot narrow its batches).
            key = {r[0] for r in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                " WHERE i.indrelid = %s::regclass AND i.indisprimary", (table,))}
            assert key <= set(named), (table, key - set(named))

