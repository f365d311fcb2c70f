"""Notifications for ticket changes: phone messages with receipts, and outbound notifiers.

``Announcer`` (center/transport/fanout.py) hands each committed ticket change to
``Notifications.submit`` (a ``put_nowait``, never a wait). One background task writes the
notification rows in batches: one ``ws`` row per person whose phone gets the change, one row
per outbound notifier whose
``events`` match. Then the phones get the ticket with its ``notification_id`` and the outbound
rows go to the sender (``center/services/notify/outbound.py``).

The hub reports receipts back through the same object (it is the hub's ``ReceiptSink``):
``delivered`` when the message was written to a phone's socket, ``read`` when the phone says it
showed the card. Receipts are queued and written in batches by a second task. A person with no
phone connected keeps their rows undelivered; when a phone of theirs connects, ``catch_up``
re-sends them, one message per ticket, with the ticket as it is now. The statements on these
rows are in center/store/notifications.py.

Example (what a phone receives, in ``WsEvent.data``)::

    {"id": 12, "state": "dispatched", ..., "notification_id": 31,
     "notification_ids": [31], "reason": "new"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from center.platform.settings import NotifierSettings
from center.platform.tasks import cancel_and_wait
from center.services import tickets
from center.services.notify.formats import event_of
from center.services.notify.outbound import Outbound
from center.services.tickets import Change
from center.services.views import Views
from center.store import notifications
from center.store.db import Connection, DatabaseError, Pool
from wire.protocol import WsEventType

log = logging.getLogger(__name__)

#: Reason given to an assignee whose phone gets a change nobody was explicitly notified of.
UPDATE = "update"
BATCH = 200


class ReceiptSink(Protocol):
    """Where the hub reports notification receipts; must not block (queue and return)."""

    def delivered(self, person_id: str, notification_ids: Sequence[int]) -> None: ...

    def read(self, person_id: str, notification_id: int | None,
             ticket_id: int | None) -> None: ...

    async def catch_up(self, person_id: str) -> list[tuple[dict[str, Any], list[int]]]:
        """(ticket data, notification ids) for what the person's phone has not received."""
        ...


class Phones(Protocol):
    """What notifications need of the websocket hub (center/transport/push.py ``Hub``): stated
    here, in the service, so the service does not import the transport that carries it."""

    receipts: ReceiptSink | None

    def publish(self, type_: WsEventType, data: dict[str, Any], *,
                recipients: Collection[str] = (), walls: bool = True) -> None: ...

    def send_to(self, person_id: str, type_: WsEventType, data: dict[str, Any],
                notification_ids: Sequence[int]) -> int: ...


@dataclass
class _Job:
    change: Change
    data: dict[str, Any]
    recipients: frozenset[str]


@dataclass(frozen=True)
class _Receipt:
    kind: str  # "delivered" | "read"
    person_id: str
    at: datetime
    ids: tuple[int, ...] = ()
    ticket_id: int | None = None


class Notifications:
    def __init__(self, settings: NotifierSettings, views: Views, hub: Phones) -> None:
        self.settings = settings
        self.targets = settings.all_targets()  # in create_app: a broken file fails the start
        self._pool: Pool | None = None
        self._views = views
        self._hub = hub
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(settings.queue_size)
        self._receipts: asyncio.Queue[_Receipt] = asyncio.Queue(settings.queue_size)
        self.outbound = Outbound(settings, self.targets)
        self.dropped = 0  # changes pushed without notification rows (queue full, db error)
        self.running = False

    # --- from announce ---------------------------------------------------------------------

    def submit(self, change: Change, data: dict[str, Any], recipients: Collection[str]) -> None:
        """Queue a committed change: its people's phones get it once their rows exist.
        Without a running writer, or with its queue full, the phones get it at once, without
        receipts: a notification problem never keeps a ticket from a phone."""
        if not recipients and not (change.notify and self.targets):
            return
        try:
            if not self.running:
                raise asyncio.QueueFull
            self._jobs.put_nowait(_Job(change, data, frozenset(recipients)))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("notifications not running or queue full: ticket=%s pushed without"
                        " receipts", change.ticket.id)
            self._hub.publish("ticket", data, recipients=recipients, walls=False)

    # --- ReceiptSink (called by the hub) ---------------------------------------------------

    def delivered(self, person_id: str, notification_ids: Sequence[int]) -> None:
        self._receipt(_Receipt("delivered", person_id, datetime.now(UTC),
                               tuple(notification_ids)))

    def read(self, person_id: str, notification_id: int | None, ticket_id: int | None) -> None:
        ids = (notification_id,) if notification_id is not None else ()
        self._receipt(_Receipt("read", person_id, datetime.now(UTC), ids, ticket_id))

    def _receipt(self, receipt: _Receipt) -> None:
        try:
            self._receipts.put_nowait(receipt)
        except asyncio.QueueFull:  # lost receipts only mean a re-send on the next connect
            log.warning("receipt queue full: dropped %s person=%s", receipt.kind,
                        receipt.person_id)

    async def catch_up(self, person_id: str) -> list[tuple[dict[str, Any], list[int]]]:
        """The person's undelivered phone notifications (newest ``catch_up_limit``), one entry
        per ticket with the ticket as it is now, oldest ticket first."""
        if self.settings.catch_up_limit == 0 or self._pool is None:
            return []
        async with self._pool.connection() as conn:
            rows = await notifications.undelivered(conn, person_id,
                                                   self.settings.catch_up_limit)
            per_ticket: dict[int, list[tuple[int, str]]] = {}
            for row in rows:
                per_ticket.setdefault(row.ticket_id, []).append((row.id, row.reason))
            out = []
            for ticket_id, items in sorted(per_ticket.items(), key=lambda kv: kv[1][-1][0]):
                ticket = await tickets.get(conn, ticket_id)
                ids = [nid for nid, _ in items]
                reasons = [r for _, r in items if r != UPDATE] or [UPDATE]
                data = self._views.ticket(ticket) | {
                    "notification_id": ids[-1], "notification_ids": ids,
                    "reason": reasons[-1], "catch_up": True}
                out.append((data, ids))
        return out

    # --- background ------------------------------------------------------------------------

    async def run(self, pool: Pool) -> None:
        """Write notifications and receipts and send outbound ones until cancelled."""
        self._pool = pool
        self._hub.receipts = self
        self.running = True
        try:
            # The HTTP client only where there is somewhere to send: building one loads the
            # CA bundle into an SSL context (0.06-0.5 s of the event loop at every start).
            async with (httpx.AsyncClient(follow_redirects=False) if self.outbound.targets
                        else contextlib.nullcontext()) as client:
                self.outbound.client, self.outbound.pool = client, pool
                tasks = [asyncio.create_task(self._write_notifications(), name="notify-rows"),
                         asyncio.create_task(self._write_receipts(), name="notify-receipts"),
                         asyncio.create_task(self.outbound.run(), name="notify-outbound")]
                try:
                    await asyncio.gather(*tasks)
                finally:
                    await cancel_and_wait(tasks)
        finally:
            self.running = False
            if self._hub.receipts is self:
                self._hub.receipts = None

    async def _write_notifications(self) -> None:
        while True:
            jobs = [await self._jobs.get()]
            while len(jobs) < BATCH and not self._jobs.empty():
                jobs.append(self._jobs.get_nowait())
            try:
                made = await self._insert(jobs)
            except Exception as exc:  # database trouble (or a bug): the phones still get it
                log.warning("writing %d notifications failed, pushed without receipts: %s",
                            len(jobs), exc, exc_info=not isinstance(exc, DatabaseError))
                self.dropped += len(jobs)
                for job in jobs:
                    self._hub.publish("ticket", job.data, recipients=job.recipients, walls=False)
                continue
            for job, phones, outbound in made:
                for person_id, nid, reason in phones:
                    data = job.data | {"notification_id": nid, "notification_ids": [nid],
                                       "reason": reason}
                    self._hub.send_to(person_id, "ticket", data, [nid])
                for nid in outbound:
                    self.outbound.enqueue(nid)

    async def _insert(self, jobs: list[_Job]
                      ) -> list[tuple[_Job, list[tuple[str, int, str]], list[int]]]:
        assert self._pool is not None
        now = datetime.now(UTC)
        made = []
        wanted = [(job.change.ticket.id, person_id, job.change.notify.get(person_id, UPDATE))
                  for job in jobs for person_id in sorted(job.recipients)]
        async with self._pool.connection() as conn, conn.transaction():
            ids = iter(await notifications.add_phones(
                conn, [(t, p, event_of(reason), reason) for t, p, reason in wanted], now))
            for job in jobs:
                ticket_id = job.change.ticket.id
                phones = [(person_id, next(ids), job.change.notify.get(person_id, UPDATE))
                          for person_id in sorted(job.recipients)]
                outbound = []
                for event, reason, who in _events(job.change):
                    payload = {"event": event, "reason": reason, "recipients": who,
                               "at": now.isoformat(),
                               "ticket": {k: v for k, v in job.data.items() if k != "notify"}}
                    for target in self.targets:
                        if target.events and event not in target.events:
                            continue
                        outbound.append(await notifications.add_outbound(
                            conn, ticket_id, target.type, target.name, event, reason, payload,
                            now))
                made.append((job, phones, outbound))
        return made

    async def _write_receipts(self) -> None:
        while True:
            batch = [await self._receipts.get()]
            while len(batch) < BATCH * 5 and not self._receipts.empty():
                batch.append(self._receipts.get_nowait())
            try:
                assert self._pool is not None
                # Pipelined, in order: each run of delivered receipts is one statement (a
                # receipt per message pushed: issue 16), each read receipt one.
                async with self._pool.connection() as conn, conn.transaction(), \
                        conn.pipeline():
                    delivered: list[tuple[int, str, datetime]] = []
                    for r in batch:
                        if r.kind == "delivered":
                            delivered += ((i, r.person_id, r.at) for i in r.ids)
                            continue
                        await notifications.mark_delivered_many(conn, delivered)
                        delivered = []
                        await _store_read(conn, r)
                    await notifications.mark_delivered_many(conn, delivered)
            except Exception as exc:  # undelivered rows are simply re-sent later
                log.warning("writing %d receipts failed: %s", len(batch), exc,
                            exc_info=not isinstance(exc, DatabaseError))


def _events(change: Change) -> list[tuple[str, str, dict[str, str]]]:
    """(event, reason, {person: reason}) per distinct event in the change's notify map."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for person_id, reason in change.notify.items():
        event = event_of(reason)
        out.setdefault(event, (reason, {}))[1][person_id] = reason
    return [(event, reason, who) for event, (reason, who) in out.items()]


async def _store_read(conn: Connection, r: _Receipt) -> None:
    await notifications.mark_read(conn, r.person_id, r.at,
                                  notification_id=r.ids[0] if r.ids else None,
                                  ticket_id=r.ticket_id)
