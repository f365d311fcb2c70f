"""Push across center replicas: the walls and phones connected to this replica hear the ticket
changes and phone notifications committed by the others (docs/scaling.md "Replicas"), and the
wall's other live events -- alert feed, camera status, presence, the emergency switch --
which center/transport/replica_events.py reads and pushes.

Each replica's writes notify through PostgreSQL (the triggers of migration 0028, inside the
writing transaction, so what commits is told even when its replica dies the next moment; ids
only, NOTIFY carries at most 8000 bytes). Here one connection LISTENs, skips what this
replica wrote (its own ``Announcer`` has pushed it already), reads the tickets named and
pushes them to the local hub: ticket views to the walls (and scoped leaders) as the
``Announcer`` does, and a phone notification, with its id, to that person's phones on this
replica (the receipt they send back marks the row delivered, whoever wrote it).

Why LISTEN/NOTIFY and not internal MQTT topics: the change and its notification commit in
one transaction, so there is no window where a ticket changed and nobody was told (an MQTT
publish after the commit has one); the center already runs such a listener for token
revocations (center/services/auth.py), with the same reconnect behaviour; and it needs no
broker accounts or ACL for center-to-center topics.

Order per ticket: notifications arrive in commit order and each batch reads the tickets as
they are now, so a replica never pushes a view older than one it pushed before (``_pushed``
also drops one that loses a race with a later read); the wall drops a view older than the one
it shows, so a late relayed view never undoes this replica's own newer push either.

While the listener's connection is down, notifications are lost; when it is back it pushes
every ticket changed since the last one it heard (``CATCH_UP_LIMIT``) and tells its walls to
reload the rest (``WallEvents.catch_up``); phones get missed notifications on their next
connect, from the rows (center/transport/push.py ``_catch_up``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from center.services.presence import Presence
from center.services.views import Views
from center.store import db, replicas
from center.store.tickets import Ticket
from center.transport.push import Hub
from center.transport.replica_events import WallBatch, WallEvents

log = logging.getLogger(__name__)

#: The listener's ``application_name`` (``pg_stat_activity``), followed by the replica's name.
LISTENER_NAME = "gridwatch-replica-listener"
#: Quiet this long: check that the connection lives. Lost: retry after ``RETRY_S``.
PING_S = 30.0
RETRY_S = 2.0
#: Most notifications taken into one read of the database.
BATCH = 500
#: Most tickets pushed again after the listener reconnects.
CATCH_UP_LIMIT = 2000
#: Tickets whose last pushed ``updated_at`` is remembered.
REMEMBERED = 50_000


@dataclass
class RelayStats:
    heard: int = 0
    own: int = 0
    tickets_pushed: int = 0
    phone_pushes: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class _PhoneNote:
    notification_id: int
    ticket_id: int
    person_id: str
    reason: str


class ReplicaPush:
    """One replica's listener. ``run(dsn)`` until cancelled; ``listening`` says whether it
    hears the others now."""

    def __init__(self, replica: str, pool: db.Pool, views: Views, hub: Hub,
                 presence: Presence) -> None:
        self.replica = replica
        self._pool = pool
        self._views = views
        self._hub = hub
        self._wall = WallEvents(views, hub, presence)
        self.listening = False
        self.stats = RelayStats()
        #: ticket id -> (updated_at, state, assignee) of the view last pushed from here
        #: (bounded, oldest out).
        self._pushed: OrderedDict[int, tuple[datetime, str, str | None]] = OrderedDict()
        self._heard_at: datetime | None = None

    def status(self) -> dict[str, Any]:
        return {"replica": self.replica, "listening": self.listening, **vars(self.stats),
                **vars(self._wall.stats)}

    async def run(self, dsn: str) -> None:
        """LISTEN, catch up after a lost connection, relay the notifications in batches."""
        while True:
            heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            pusher = asyncio.create_task(self._pusher(heard), name="replica-push")
            try:
                async with await db.connect(dsn, autocommit=True,
                                            application_name=f"{LISTENER_NAME} {self.replica}"
                                            ) as conn:
                    await replicas.listen(conn)
                    self.listening = True
                    if self._heard_at is None:  # the first LISTEN: clients load on connect
                        self._heard_at = datetime.now(UTC)
                    else:  # after LISTEN: nothing falls in between
                        self.stats.reconnects += 1
                        await self._catch_up(self._heard_at)
                    while True:
                        async for note in replicas.notified(conn, PING_S):
                            heard.put_nowait(note)
                        await asyncio.wait_for(db.ping(conn), PING_S)  # quiet: still alive?
            except asyncio.CancelledError:
                raise
            except (db.DatabaseError, OSError, TimeoutError) as exc:
                log.warning("replica push listener: %s; retrying in %.0f s", exc, RETRY_S)
            finally:
                self.listening = False
                pusher.cancel()
            await asyncio.sleep(RETRY_S)

    async def _pusher(self, heard: asyncio.Queue[tuple[str, str]]) -> None:
        """Take what has been heard, up to ``BATCH`` at a time, and push it: one read of the
        database per batch, however many notifications name the same tickets."""
        while True:
            notes = [await heard.get()]
            while len(notes) < BATCH and not heard.empty():
                notes.append(heard.get_nowait())
            changed: list[int] = []
            phones: list[_PhoneNote] = []
            wall = WallBatch()
            for channel, payload in notes:
                self._take(channel, payload, changed, phones, wall)
            try:
                await self._push(changed, phones, wall)
            except Exception:  # never the end of the relay: the next batch goes on
                log.exception("replica push: a batch of %d notification(s) failed", len(notes))

    def _take(self, channel: str, payload: str, changed: list[int],
              phones: list[_PhoneNote], wall: WallBatch) -> None:
        self.stats.heard += 1
        try:
            msg = json.loads(payload)
            if msg["r"] == self.replica:
                self.stats.own += 1
                return
            if channel == replicas.TICKET_CHANNEL:
                changed.append(int(msg["t"]))
            elif channel == replicas.PHONE_CHANNEL:
                phones.append(_PhoneNote(int(msg["n"]), int(msg["t"]), str(msg["p"]),
                                         str(msg["reason"])))
            elif channel == replicas.WALL_CHANNEL:
                wall.take(msg)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable %s notification", channel)

    async def _push(self, changed: list[int], phones: list[_PhoneNote],
                    wall: WallBatch) -> None:
        """One batch: its rows read in one connection, then pushed (alerts first, as this
        replica's intake pushes its own before the tickets they changed)."""
        if not changed and not phones and not wall:
            return
        ids = dict.fromkeys([*changed, *(p.ticket_id for p in phones)])
        try:
            async with self._pool.connection() as conn:
                now = await replicas.tickets(conn, list(ids)) if ids else []
                wall_rows = await self._wall.read(conn, wall)
        except db.DatabaseError as exc:  # the walls reload on reconnect; phones catch up
            log.warning("replica push: %d ticket(s) and wall events not read: %s", len(ids),
                        exc)
            return
        self._wall.push(wall_rows)
        by_id = {t.id: t for t in now}
        for ticket_id in dict.fromkeys(changed):
            if (t := by_id.get(ticket_id)) is not None:
                self._push_ticket(t)
        for note in phones:
            if (t := by_id.get(note.ticket_id)) is not None:
                data = self._views.ticket(t) | {
                    "notification_id": note.notification_id,
                    "notification_ids": [note.notification_id], "reason": note.reason}
                self.stats.phone_pushes += self._hub.send_to(note.person_id, "ticket", data,
                                                             [note.notification_id])
        if now and (latest := max(t.updated_at for t in now)) > (self._heard_at or latest):
            self._heard_at = latest

    def _push_ticket(self, t: Ticket) -> None:
        """A ticket view to this replica's walls and scoped leaders, unless one as new or
        newer went out from here already; and to the assignee's phones when, against the last
        view pushed from here, only its counts changed. Such a touch (another alert at the
        ticket) has no notification row to relay (center/transport/fanout.py); any other
        change reaches the phones as its notification, with its id and reason."""
        last = self._pushed.get(t.id)
        if last is not None and t.updated_at <= last[0]:
            return
        self._pushed[t.id] = (t.updated_at, t.state, t.assignee_id)
        self._pushed.move_to_end(t.id)
        while len(self._pushed) > REMEMBERED:
            self._pushed.popitem(last=False)
        touch = last is not None and last[1:] == (t.state, t.assignee_id)
        self._hub.publish("ticket", self._views.ticket(t),
                          recipients=(t.assignee_id,) if touch and t.assignee_id else ())
        self.stats.tickets_pushed += 1

    async def _catch_up(self, since: datetime) -> None:
        """Push the tickets changed since the last one heard (a second earlier, for clocks of
        other writers), as if notified; the walls reload the rest (``WallEvents.catch_up``)."""
        async with self._pool.connection() as conn:
            missed = await replicas.changed_since(conn, since - timedelta(seconds=1),
                                                  CATCH_UP_LIMIT)
            await self._wall.catch_up(conn, since)
        for t in missed:
            self._push_ticket(t)
        log.info("replica push listener back: %d ticket(s) pushed again", len(missed))

