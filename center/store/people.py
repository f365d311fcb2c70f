"""People's logins: password hashes (``district_people.password_hash``) and token generations
(``person_tokens``, migrations 0008 and 0009).

The rules (argon2 off the event loop, what a generation means, who may revoke whom) are
center/services/auth.py's; here is only how they are read and written. The blocking functions
at the end are for the commands that run outside an event loop (center/services/passwords.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from center.store.db import Connection, SyncConnection

#: The channel the trigger of migration 0008 (``person_tokens_notify()``) notifies on.
NOTIFY_CHANNEL = "gridwatch_tokens"


async def login_record(conn: Connection, person_id: str) -> tuple[str | None, int]:
    """An active person's password hash (None: no such person or no password) and token
    generation, read together so a token is never issued with a generation older than the
    hash it was checked against."""
    cur = await conn.execute(
        "SELECT p.password_hash, coalesce(t.generation, 0) FROM district_people p"
        " LEFT JOIN person_tokens t ON t.person_id = p.id WHERE p.id = %s AND p.active",
        (person_id,))
    row = await cur.fetchone()
    return (row[0], row[1]) if row else (None, 0)


async def replace_password_hash(conn: Connection, person_id: str, new_hash: str,
                                old_hash: str | None) -> bool:
    """Set a person's password hash only over ``old_hash`` (the one just checked), so a
    change made meanwhile is not overwritten; False when it was. The database trigger
    raises the person's token generation with it (migration 0008)."""
    cur = await conn.execute(
        "UPDATE district_people SET password_hash = %s WHERE id = %s AND password_hash = %s",
        (new_hash, person_id, old_hash))
    return cur.rowcount == 1


async def token_generation(conn: Connection, person_id: str) -> int:
    cur = await conn.execute("SELECT generation FROM person_tokens WHERE person_id = %s",
                             (person_id,))
    row = await cur.fetchone()
    return row[0] if row else 0


async def revoke_tokens(conn: Connection, person_id: str) -> int:
    """Log a person out everywhere: every token issued so far stops working. Returns the new
    generation (which new logins carry)."""
    cur = await conn.execute("SELECT person_tokens_revoke(%s)", (person_id,))  # migration 0009
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def token_generations(conn: Connection) -> list[tuple[str, int]]:
    """Every person's current token generation, as (person_id, generation)."""
    cur = await conn.execute("SELECT person_id, generation FROM person_tokens")
    return [(person_id, generation) for person_id, generation in await cur.fetchall()]


async def listen_token_changes(conn: Connection) -> None:
    """Subscribe ``conn`` (autocommit) to ``NOTIFY_CHANNEL``: from now on each change of a
    generation, whoever commits it, arrives in ``token_changes``."""
    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")


async def token_changes(conn: Connection, timeout_s: float) -> AsyncIterator[str]:
    """The payloads (JSON: person_id, generation) notified on ``conn`` until ``timeout_s``
    passes without one."""
    async for n in conn.notifies(timeout=timeout_s):
        yield n.payload


# --- blocking, for the commands -------------------------------------------------------------

def set_password_hash(conn: SyncConnection, person_id: str, new_hash: str) -> bool:
    """Set a person's password hash whatever it was (the trigger of migration 0008 revokes
    their tokens); False when there is no such person."""
    cur = conn.execute("UPDATE district_people SET password_hash = %s WHERE id = %s",
                       (new_hash, person_id))
    return cur.rowcount == 1


def active_people(conn: SyncConnection, *, only_missing: bool) -> list[tuple[str, str, str]]:
    """(id, role, name) of the active people, those without a password only if asked."""
    rows = conn.execute(
        "SELECT id, role, name FROM district_people WHERE active"
        + (" AND password_hash IS NULL" if only_missing else "") + " ORDER BY role, id"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]
