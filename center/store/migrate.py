"""Schema migrations: numbered SQL files in ``migrations/``, applied once each, in order.

Dry run by default (``gridwatch center migrate`` lists what is pending and changes nothing;
``--commit`` applies), so running it just to look is always safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: Any constant; serialises concurrent migrators (two centers starting at once).
_LOCK_KEY = 0x6772_6964


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def available() -> list[Migration]:
    found = []
    for p in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _NAME.match(p.name)
        if not m:
            raise ValueError(f"migration file {p.name} is not named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), p))
    return found


def _applied(conn: psycopg.Connection) -> set[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}


def pending(conn: psycopg.Connection) -> list[Migration]:
    done = _applied(conn)
    return [m for m in available() if m.version not in done]


def migrate(dsn: str, *, commit: bool, up_to: int | None = None) -> list[Migration]:
    """Pending migrations; applied (each in its own transaction) when ``commit``. ``up_to``
    stops after that version: a database as an older release left it, for upgrade tests."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            todo = [m for m in pending(conn) if up_to is None or m.version <= up_to]
            if commit:
                for m in todo:
                    with conn.transaction():
                        conn.execute(m.path.read_text(encoding="utf-8"))
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (m.version, m.name),
                        )
            return todo
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def ensure_database(dsn: str) -> bool:
    """Create the database named in ``dsn`` if it does not exist; True if it was created."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = str(info.get("dbname") or "postgres")
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return True
