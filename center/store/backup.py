"""Back up the center's database and restore it elsewhere (``gridwatch center backup|restore``).

A backup is one ``pg_dump --format=custom`` archive of the whole database: the district,
alerts and their pictures, tickets with their ledger, photos (``attachments`` keep their bytes
in the database), notifications, people and password hashes, and every sequence's position, so
a center started on the restored copy goes on numbering tickets after the last one. It is
taken from a consistent snapshot while the center keeps running. What lives outside the
database is not in it: the clip folder (``GRIDWATCH_CLIPS__DIR``), the generated MQTT accounts
and the secret files (docs/deployment.md "Backups" says how to keep those, and how to add WAL
archiving for point-in-time recovery on top).

The PostgreSQL client binaries do the work (``pg_dump``, ``pg_restore``): they are the only
tools that read and write this format, and they must be at least as new as the server. The
password is handed to them in ``PGPASSWORD``, never on their command line (``ps`` shows that).

A restore goes into an empty or new database only, in one transaction that stops at the first
error: it never merges into a live database, and a failed restore leaves nothing half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from center.store.migrate import available, ensure_database

#: Where Debian puts each PostgreSQL major version's binaries (``postgresql-client-<N>``).
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
#: The first bytes of a custom-format archive.
_ARCHIVE_MAGIC = b"PGDMP"
_TIMESCALE_ENTRY = re.compile(r"\bEXTENSION - timescaledb\b")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done: a tool, the archive or a database is missing or
    refuses. The message says which and what to do; nothing was changed."""


@dataclass(frozen=True)
class BackupInfo:
    """What ``backup`` wrote."""

    path: Path
    size_bytes: int
    tables: int
    seconds: float


@dataclass(frozen=True)
class RestoreInfo:
    """What ``restore`` did: the database it wrote, whether it created it, and the schema
    version the archive carried (older than this release: ``pending`` migrations to apply)."""

    database: str
    created: bool
    schema_version: int
    pending: int
    seconds: float


def find_tool(name: str, bin_dir: Path | None = None) -> Path:
    """The PostgreSQL client binary ``name``. With ``bin_dir`` only there (an explicit choice is
    never second-guessed); else on ``PATH``, else the newest ``/usr/lib/postgresql/<N>/bin``."""
    if bin_dir is not None:
        found = bin_dir / name
        if found.is_file() and os.access(found, os.X_OK):
            return found
        raise BackupError(f"{name} not found in {bin_dir} (the PostgreSQL client binaries)")
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    versions = sorted((p for p in DEBIAN_PG_ROOT.glob(f"*/bin/{name}") if p.is_file()),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else -1)
    if versions:
        return versions[-1]
    raise BackupError(f"{name} not found on PATH nor under {DEBIAN_PG_ROOT}: install the "
                      "PostgreSQL client binaries, as new as the server "
                      "(apt-get install postgresql-client)")


def _conninfo_and_env(dsn: str) -> tuple[str, dict[str, str], str]:
    """The DSN without its password, an environment carrying it, and the database name."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise BackupError(f"not a PostgreSQL DSN: {exc}") from None
    env = dict(os.environ)
    password = info.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    name = str(info.get("dbname") or "")
    if not name:
        raise BackupError("the DSN names no database (dbname)")
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()}), env, name


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {detail}")
    return done.stdout


def _check_reachable(dsn: str) -> None:
    try:
        with psycopg.connect(dsn, connect_timeout=10):
            pass
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the database: {str(exc).strip()}") from None


def backup(dsn: str, path: Path, *, bin_dir: Path | None = None) -> BackupInfo:
    """Write a custom-format archive of the database at ``dsn`` to ``path`` (mode 0600: it holds
    password hashes and personal data). Written beside ``path`` first and renamed when complete
    and readable, so ``path`` is either the previous backup or the whole new one."""
    pg_dump, pg_restore = find_tool("pg_dump", bin_dir), find_tool("pg_restore", bin_dir)
    conninfo, env, _ = _conninfo_and_env(dsn)
    _check_reachable(dsn)
    path = Path(path)
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent}: no such folder")
    tmp = path.with_name(f".{path.name}.partial")
    start = time.monotonic()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        _run([str(pg_dump), "--format=custom", "--file", str(tmp), "--dbname", conninfo],
             env, "pg_dump")
        listing = _run([str(pg_restore), "--list", str(tmp)], env, "reading the new archive")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    tables = sum(1 for line in listing.splitlines() if " TABLE DATA " in line)
    return BackupInfo(path, path.stat().st_size, tables, time.monotonic() - start)


def _archive_listing(path: Path, pg_restore: Path, env: dict[str, str]) -> str:
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    with path.open("rb") as f:
        if f.read(len(_ARCHIVE_MAGIC)) != _ARCHIVE_MAGIC:
            raise BackupError(f"{path}: not a pg_dump custom-format archive "
                              "(made by `gridwatch center backup` or pg_dump -Fc)")
    return _run([str(pg_restore), "--list", str(path)], env, f"reading {path}")


def _tables_in(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_class c"
                           " JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE c.relkind IN ('r', 'p')"
                           " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                           " AND n.nspname NOT LIKE '\\_timescaledb%'").fetchone()
    return int(row[0]) if row else 0


def _open_target(dsn: str, name: str) -> tuple[bool, int]:
    """Whether the target database had to be created, and how many tables it has. Connects to
    it first (a user allowed only there never needs the ``postgres`` database); only when that
    fails is it created through the server's ``postgres`` database."""
    try:
        return False, _tables_in(dsn)
    except psycopg.OperationalError:
        pass
    try:
        created = ensure_database(dsn)
        return created, 0 if created else _tables_in(dsn)
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the target server: {str(exc).strip()}") from None
    except psycopg.Error as exc:
        raise BackupError(f"cannot create database {name}: {str(exc).strip()}") from None


def _schema_version(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def restore(path: Path, dsn: str, *, bin_dir: Path | None = None) -> RestoreInfo:
    """Restore the archive at ``path`` into the database ``dsn`` names, creating it when it does
    not exist; refused when it has tables (never merged into live data). Objects are owned by
    the DSN's user (``--no-owner``, ``--no-acl``: the source's roles need not exist here).

    On TimescaleDB (the archive holds the extension) the extension's documented sequence runs
    around it: ``timescaledb_pre_restore()`` before, ``timescaledb_post_restore()`` after."""
    pg_restore = find_tool("pg_restore", bin_dir)
    conninfo, env, name = _conninfo_and_env(dsn)
    path = Path(path)
    listing = _archive_listing(path, pg_restore, env)
    start = time.monotonic()
    created, tables = _open_target(dsn, name)
    if tables:
        raise BackupError(f"database {name} is not empty ({tables} tables): restore into a new "
                          "database (it is created) or an empty one; nothing was changed")
    timescale = bool(_TIMESCALE_ENTRY.search(listing))
    if timescale:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("SELECT timescaledb_pre_restore()")
    try:
        _run([str(pg_restore), "--no-owner", "--no-acl", "--exit-on-error",
              "--single-transaction", "--dbname", conninfo, str(path)],
             env, f"pg_restore into {name}")
    finally:
        if timescale:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT timescaledb_post_restore()")
    version = _schema_version(dsn)
    pending = sum(1 for m in available() if m.version > version)
    return RestoreInfo(name, created, version, pending, time.monotonic() - start)
