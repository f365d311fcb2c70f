"""Whether a draining replica may leave its MQTT share group (docs/scaling.md, "Removing a
replica").

A replica that unsubscribes hands the group's next messages to the others; if it was the
last member, the broker has nobody to give them to and drops them (a persistent session
without a subscription queues nothing). So a replica leaves the group only while another
replica stays: one that is connected (its LISTEN connection, named
``<listener name> <client id>``, is in ``pg_stat_activity``, whose ``application_name`` every
role may read) and not itself draining. A draining replica says so with a connection of its
own named ``gridwatch-draining <client id>``, held until it exits, and decides under a
transaction-level advisory lock: of two replicas draining at once, the second sees the first
as draining, so the last one never leaves (its session keeps its share, as after a kill).
"""

from __future__ import annotations

from center.store.db import Connection

#: The application_name prefix of a draining replica's marking connection.
DRAINING_NAME = "gridwatch-draining"

_OTHERS_STAYING = """
SELECT count(*) FROM pg_stat_activity AS a
WHERE a.application_name LIKE %(listener)s || ' %%'
  AND a.application_name <> %(listener)s || ' ' || %(me)s
  AND NOT EXISTS (
      SELECT 1 FROM pg_stat_activity AS d
      WHERE d.application_name = %(draining)s || ' '
                                 || substr(a.application_name, length(%(listener)s) + 2))
"""


async def others_staying(conn: Connection, me: str, listener_name: str) -> int:
    """How many other replicas are connected and not draining; call it on ``me``'s marking
    connection (named ``DRAINING_NAME me``) inside a transaction, which the lock serializes
    with the other replicas' decisions until it ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridwatch-replica-drain'))")
    cur = await conn.execute(_OTHERS_STAYING, {"listener": listener_name, "me": me,
                                               "draining": DRAINING_NAME})
    row = await cur.fetchone()
    return int(row[0]) if row else 0
