"""The database handles the other layers pass around, named here so that only the store imports
the driver (the "SQL only in the store" contract in pyproject.toml, docs/architecture.md).

Routes and services hold a ``Pool``, open a ``Connection`` and a transaction around one unit of
work (the route, the ingest batch, the timer pass) and hand the connection to store functions,
which run the SQL and return rows. So a service decides what is one transaction; the store
decides how it is written.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Connection = AsyncConnection[Any]
Pool = AsyncConnectionPool
#: Any error of the database driver (connection lost, pool timeout, a statement refused), for
#: the loops that log a failed round and go on without importing the driver.
DatabaseError = psycopg.Error
#: A blocking connection, for the commands that run outside an event loop (set-password,
#: gen-passwords, the demo's credentials).
SyncConnection = psycopg.Connection[Any]

__all__ = ["Connection", "DatabaseError", "Pool", "SyncConnection", "connect", "connect_sync",
           "lock_race", "open_pool", "ping", "unavailable"]


def unavailable(exc: BaseException) -> bool:
    """An error that says the database is unreachable or unwell (hold the work and retry),
    rather than that one message cannot be stored (dead-letter it). A program limit (a value
    too big for an index, say) is the message's fault."""
    return (isinstance(exc, psycopg.OperationalError)
            and not isinstance(exc, psycopg.errors.ProgramLimitExceeded))


def lock_race(exc: BaseException) -> str | None:
    """The SQLSTATE of a deadlock (40P01) or another transaction rollback (40000): the
    transaction was rolled back and can simply be run again; else None. psycopg raises a
    serialization failure (40001) as a class of its own, not a ``TransactionRollback``, so it
    is not counted here (``unavailable`` says yes to it, as ingest has always treated it)."""
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.TransactionRollback):
        return exc.sqlstate or "40000"
    return None


async def _read_only(conn: Connection) -> None:
    await conn.set_read_only(True)


async def open_pool(dsn: str, *, min_size: int, max_size: int, wait_s: float = 30,
                    read_only: bool = False) -> Pool:
    """An open pool; waits (up to ``wait_s``) until its first connections are made, so a
    center with an unreachable database fails its start instead of its first request.
    ``read_only``: every transaction on it is READ ONLY (the indicator reads' pool)."""
    pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False,
                               configure=_read_only if read_only else None)
    await pool.open(wait=True, timeout=wait_s)
    return pool


async def connect(dsn: str, *, autocommit: bool = False,
                  application_name: str | None = None) -> Connection:
    """A connection of its own, outside any pool: a command's (``gridwatch center
    import-district``, ``gridwatch model``), or a listener's that holds it for ``LISTEN``.
    Use as ``async with await connect(dsn) as conn``."""
    return await AsyncConnection.connect(dsn, autocommit=autocommit,
                                         application_name=application_name)  # None: unset


def connect_sync(dsn: str) -> SyncConnection:
    """A blocking connection of its own (``with connect_sync(dsn) as conn``)."""
    return psycopg.connect(dsn)


async def ping(conn: Connection) -> None:
    """A round trip that touches no table: is this connection (and the database) alive?"""
    await conn.execute("SELECT 1")
