"""Alert intake: every message the edges send becomes a stored row, a ticket change and a push.
The MQTT side (connection, decoding, acknowledgement) is center/transport/ingest.py; this is
what the center does with a message once it is decoded.

Messages are taken in batches (``next_batch``): whatever is waiting when the previous batch is
done, up to ``AlertIntake.batch_max``, so a quiet center handles each alert at once and a busy
one amortises its round trips. One batch is one transaction: the alerts' keys are claimed
with one INSERT ... ON CONFLICT DO NOTHING, ticket work is done only for the ones that were
new, grouped by place (camera, zone, event type) so a storm of repeats for a place is one
UPDATE, the new alerts' rows go in with one INSERT that already names their tickets, and the
screens are told after the commit.

No message can stop the loop: whatever fails for one message -- bad JSON, text PostgreSQL
refuses, an event time outside the window (``wire.protocol.time_window_problem``), a camera
the district does not give to the sending edge, a re-sent ``(alert_id, seq)`` with other
content, or a bug -- sends that message to ``dead_letters`` with the reason (``Rejected``), and
it is acknowledged like any other. Only a database outage holds a batch: it is retried with
backoff and ``store_batch`` / ``one_by_one`` return only once the database took it, so the
transport acknowledges nothing meanwhile (see center/transport/ingest.py for the delivery
guarantee this gives).

With ``touch_interval_s`` > 0 (off by default), ticket pushes for an attach that changes
nothing a person acts on (``alert_count`` and ``last_alert_id`` only) go out at most once per
``touch_interval_s`` per ticket, the latest state re-read when the window ends; new tickets,
state and assignee changes and notifications go out at once. Wall-screen pushes of ``update``
alerts are likewise at most one per alert per ``touch_interval_s`` (``new`` and ``end``
always).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from center.domain.context import Context
from center.services import edge_state, tickets
from center.services.views import Views
from center.store import alerts
from center.store.db import Connection, DatabaseError, Pool, lock_race, unavailable
from wire.protocol import (
    MAX_STATUS_AGE,
    Alert,
    CameraStatus,
    EdgeStatus,
    Heartbeat,
    WsEventType,
    alert_time_problem,
    time_window_problem,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Place = tuple[str, str, str]  # camera, zone, event type: one open ticket each
#: ``publish(type, data)``: an event to the wall screens (``center.transport.push.Hub``).
Publish = Callable[[WsEventType, dict[str, Any]], None]
#: A committed ticket change to the wall, phones and notifiers (``transport.fanout.Announcer``).
Announce = Callable[[tickets.Change], None]


class Rejected(ValueError):
    """A message that can never be stored as sent: it goes to the dead-letter table."""


@dataclass
class IngestStats:
    """What ``/healthz`` and ``/metrics`` report of the ingest, in one object: the transport
    counts what it received and acknowledged (``received``, ``batches``, ``largest_batch``,
    ``acked``, ``slowest_batch_ms``), the intake what became of it."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    #: Re-sent ``(alert_id, seq)`` whose content differs from the stored copy (dead-lettered;
    #: the first copy is kept).
    conflicts: int = 0
    batches: int = 0
    largest_batch: int = 0
    acked: int = 0
    #: Ticket pushes held back (a later one for the same ticket within the window replaced
    #: them) and wall alert pushes skipped (``update`` alerts within the window).
    touches_coalesced: int = 0
    updates_skipped: int = 0
    #: Batches retried after a deadlock or serialization failure.
    lock_retries: int = 0
    #: Seconds the loop has spent holding a batch for the database.
    db_held_s: float = 0.0
    #: The longest a batch took, receipt to pushes (database holds included).
    slowest_batch_ms: float = 0.0


@dataclass(frozen=True)
class Received:
    """A decoded alert with the message that carried it (for its dead letter, if any)."""

    topic: str
    payload: bytes
    alert: Alert


@dataclass(frozen=True)
class DeadLetter:
    """A message refused before the batch's transaction, stored in it with the reason."""

    topic: str
    payload: bytes
    reason: str


async def next_batch(messages: AsyncIterator[_T], inbox: asyncio.Queue[_T], max_n: int,
                     linger_s: float = 0.0) -> list[_T]:
    """Wait for one message, then take what else is waiting in ``inbox``, up to ``max_n``.

    With ``linger_s`` > 0, wait up to that long for more (bigger batches, added latency).
    ``messages`` is what raises when the connection drops; ``inbox`` is the queue behind it.
    """
    batch = [await anext(messages)]
    deadline = asyncio.get_running_loop().time() + linger_s
    while len(batch) < max_n:
        try:
            batch.append(inbox.get_nowait())
            continue
        except asyncio.QueueEmpty:
            pass
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(inbox.get(), left))
        except TimeoutError:
            break
    return batch


def _runs(alerts: list[Alert]) -> list[list[Alert]]:
    """One place's alerts in order, cut into runs that attach together; each ``end`` alone."""
    runs: list[list[Alert]] = []
    for a in alerts:
        if a.kind != "end" and runs and runs[-1][-1].kind != "end":
            runs[-1].append(a)
        else:
            runs.append([a])
    return runs


class _TouchThrottle:
    """Ticket pushes that only touch a ticket (no new ticket, no state or assignee change, no
    one to notify) at most once per ``interval_s`` per ticket; the last one wins and is sent
    fresh from the database when the window ends (``due``). Anything else goes at once."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._pushed: dict[int, tuple[float, str, str | None]] = {}  # id -> (at, state, owner)
        self._held: set[int] = set()

    def offer(self, change: tickets.Change, now: float) -> bool:
        """True: push it now (and it is recorded as pushed); False: held for later."""
        t = change.ticket
        last = self._pushed.get(t.id)
        if (self.interval_s > 0 and last is not None and now - last[0] < self.interval_s
                and not change.created and not change.notify
                and (last[1], last[2]) == (t.state, t.assignee_id)):
            self._held.add(t.id)
            return False
        self._held.discard(t.id)
        self._pushed[t.id] = (now, t.state, t.assignee_id)
        return True

    def due(self, now: float) -> list[int]:
        """Held tickets whose window has ended (forgotten: push them); old entries pruned."""
        out = [i for i in self._held if now - self._pushed[i][0] >= self.interval_s]
        self._held.difference_update(out)
        for i in [i for i, v in self._pushed.items()
                  if now - v[0] >= self.interval_s and i not in self._held]:
            del self._pushed[i]
        return out

    def pushed(self, change: tickets.Change, now: float) -> None:
        t = change.ticket
        self._pushed[t.id] = (now, t.state, t.assignee_id)


class AlertIntake:
    #: Most messages per transaction; 1 gives the old one-transaction-per-message behaviour.
    batch_max = 500
    #: How long to wait for a batch to fill; 0 takes only what is already waiting.
    batch_linger_s = 0.0
    #: At most one "touch" ticket push per ticket, and one wall push per ``update`` alert, in
    #: this many seconds; 0 (the default) pushes every one. Measured at 1,000 alerts/s spread
    #: over 4,600 places it saved nothing (few repeats per ticket per window) and delayed the
    #: held pushes by design; it pays off in storms at few places (docs/performance.md).
    touch_interval_s = 0.0
    #: Longest wait between two tries while the database is down.
    db_retry_max_s = 5.0

    def __init__(self, pool: Pool, ctx: Context, views: Views, publish: Publish,
                 announce: Announce) -> None:
        self._pool = pool
        self._ctx = ctx
        self._views = views
        self._publish = publish
        self._announce = announce
        self.db_holding = False
        self.stats = IngestStats()
        self.edges_seen: dict[str, datetime] = {}
        self._throttle = _TouchThrottle(self.touch_interval_s)
        self._update_pushed: dict[UUID, float] = {}

    # --- checks on decoded messages (raise Rejected) ------------------------------------------

    def check_alert(self, alert: Alert) -> None:
        """An alert the district and the clock allow: its camera given to its edge, a known
        event type, times inside the window."""
        self.check_binding(alert.edge_id, alert.camera_id)
        if alert.event_type not in self._ctx.event_types:
            raise Rejected(f"unknown event_type {alert.event_type}")
        if problem := alert_time_problem(alert, self._ctx.clock.now()):
            raise Rejected(problem)

    def check_binding(self, edge_id: str, camera_id: str) -> None:
        """An edge speaks only for the cameras the district gives it (``edge_id`` of the
        camera): its MQTT account can publish under its own edge id only (the broker's ACL),
        and this closes the rest, alerts and statuses about someone else's camera."""
        if edge_state.not_given(self._ctx.district, edge_id, [camera_id]):
            cam = self._ctx.district.cameras.get(camera_id)
            owner = "not in the district" if cam is None else f"given to {cam.edge_id or 'no edge'}"
            raise Rejected(f"camera {camera_id} is {owner}, not to edge {edge_id}")

    def _check_time(self, at: datetime | None, what: str) -> None:
        if at is not None and (problem := time_window_problem(at, self._ctx.clock.now(),
                                                              MAX_STATUS_AGE, what)):
            raise Rejected(problem)

    # --- alerts: one transaction per batch -----------------------------------------------------

    async def store_batch(self, received: list[Received], rejected: list[DeadLetter]) -> None:
        """A batch's alerts and dead letters in one transaction, held and retried while the
        database is unreachable; returns once it committed (or its messages were dead-lettered)."""
        await self._hold_while_db_down(self._store_alerts, received, rejected)

    async def _hold_while_db_down(self, step: Callable[..., Awaitable[None]],
                                  *args: Any) -> None:
        """Run ``step`` until the database takes it. Nothing of the batch is acknowledged
        meanwhile, so the broker holds (and, past its in-flight limit, queues) the rest."""
        delay, started = 0.25, None
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    return await step(*args)
                except Exception as exc:
                    if sqlstate := lock_race(exc):  # deadlock or rollback: just retry
                        self.stats.lock_retries += 1
                        log.warning("batch rolled back (%s); retrying it", sqlstate)
                        await asyncio.sleep(0.01)
                        continue
                    if not unavailable(exc):
                        raise
                    if started is None:
                        started = loop.time()
                        self.db_holding = True
                    log.error("database unavailable (%s); holding the batch, retry in %.1fs",
                              exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.db_retry_max_s)
        finally:
            if started is not None:
                self.db_holding = False
                self.stats.db_held_s += loop.time() - started

    async def _store_alerts(self, received: list[Received], rejected: list[DeadLetter]) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for d in rejected:
                    await alerts.dead_letter(conn, d.topic, d.payload, d.reason)
                new = await alerts.claim_keys(conn, [r.alert for r in received])
                conflicts = await self._conflicts(conn, received, new)
                changes, links = await self._ticket_work(conn, new)
                ticket_of = {(a.alert_id, a.seq): t for a, t in links}
                await alerts.insert_rows(conn, new, ticket_of)
        except Exception as exc:  # a bug or a lost race: never let one message stop ingest
            if unavailable(exc) or lock_race(exc):
                raise
            if len(received) + len(rejected) > 1:
                log.exception("a batch of %d failed; storing its messages one by one",
                              len(received) + len(rejected))
                for d in rejected:
                    await self._store_alerts([], [d])
                for one in received:
                    await self._store_alerts([one], [])
            elif received:
                log.exception("alert could not be processed topic=%s", received[0].topic)
                await self._store_alerts([], [DeadLetter(
                    received[0].topic, received[0].payload, f"could not be processed: {exc!r}")])
            else:
                log.exception("dead letter could not be stored; dropped topic=%s",
                              rejected[0].topic)
            return
        self.stats.dead_letters += len(rejected) + conflicts
        self.stats.conflicts += conflicts
        self.stats.stored += len(new)
        self.stats.duplicates += len(received) - len(new) - conflicts
        try:
            self._push_stored(new, changes, ticket_of)
        except Exception:  # stored and committed: a failed push must not stop the loop
            log.exception("pushing %d stored alerts failed", len(new))
        log.info("alerts stored=%d duplicates=%d dead_letters=%d conflicts=%d"
                 " ticket_changes=%d", len(new), len(received) - len(new) - conflicts,
                 len(rejected), conflicts, len(changes))

    async def _conflicts(self, conn: Connection, received: list[Received],
                         new: list[Alert]) -> int:
        """Dead-letter the repeats of a stored ``(alert_id, seq)`` whose content differs."""
        stored = {id(a) for a in new}
        repeats = [r for r in received if id(r.alert) not in stored]
        if not repeats:
            return 0
        bad = {id(a) for a in await alerts.conflicting(conn, [r.alert for r in repeats])}
        for r in repeats:
            if id(r.alert) in bad:
                reason = (f"alert {r.alert.alert_id} seq {r.alert.seq} was stored before with"
                          " other content; the first copy is kept")
                log.warning("dead letter topic=%s reason=%s", r.topic, reason)
                await alerts.dead_letter(conn, r.topic, r.payload, reason)
        return len(bad)

    async def _ticket_work(self, conn: Connection, new: list[Alert],
                           ) -> tuple[list[tickets.Change], list[tuple[Alert, int]]]:
        """Tickets for newly stored alerts, place by place (in arrival order within a place):
        a run of ``new``/``update`` alerts attaches at once, each ``end`` verifies. Places whose
        ticket just needs the attach share one UPDATE; the rest go one place at a time."""
        by_place: dict[_Place, list[Alert]] = {}
        for a in new:
            by_place.setdefault((a.camera_id, a.zone_id, a.event_type), []).append(a)
        changes: list[tickets.Change] = []
        links: list[tuple[Alert, int]] = []

        def done(run: list[Alert], change: tickets.Change | None) -> None:
            if change is not None:
                changes.append(change)
                links.extend((a, change.ticket.id) for a in run)

        # The common case first, for all places at once: one run at a place whose ticket is
        # open and not handled is one attach.
        simple = [runs[0] for place in sorted(by_place)  # one lock order for every batch
                  if len(runs := _runs(by_place[place])) == 1 and runs[0][0].kind != "end"]
        attached = await tickets.attach_to_open(conn, self._ctx, simple)
        for run, change in zip(simple, attached, strict=True):
            done(run, change)
        attached_places = {(r[0].camera_id, r[0].zone_id, r[0].event_type)
                   for r, c in zip(simple, attached, strict=True) if c is not None}
        for place in sorted(by_place.keys() - attached_places):
            for run in _runs(by_place[place]):
                if run[0].kind == "end":
                    done(run, await tickets.camera_reports_clear(conn, self._ctx, run[0]))
                else:
                    done(run, await tickets.open_or_attach_many(conn, self._ctx, run))
        return changes, links

    # --- pushes after the commit -----------------------------------------------------------------

    def _push_stored(self, new: list[Alert], changes: list[tickets.Change],
                     ticket_of: dict[tuple[UUID, int], int]) -> None:
        now, received_at = asyncio.get_running_loop().time(), datetime.now(UTC)
        for a in new:
            self._push_alert(a, ticket_of.get((a.alert_id, a.seq)), now, received_at)
        for change in changes:
            if self._throttle.offer(change, now):
                self._announce(change)
            else:
                self.stats.touches_coalesced += 1

    def _push_alert(self, alert: Alert, ticket_id: int | None, now: float,
                    received_at: datetime) -> None:
        if alert.kind == "update" and self.touch_interval_s > 0:
            last = self._update_pushed.get(alert.alert_id)
            if last is not None and now - last < self.touch_interval_s:
                self.stats.updates_skipped += 1
                return
            self._update_pushed[alert.alert_id] = now
        row = alerts.AlertRow(
            alert_id=alert.alert_id, seq=alert.seq, kind=alert.kind, edge_id=alert.edge_id,
            camera_id=alert.camera_id, zone_id=alert.zone_id, event_type=alert.event_type,
            label=alert.label, score=alert.score, bbox=list(alert.bbox),
            started_at=alert.started_at, last_seen_at=alert.last_seen_at,
            received_at=received_at, ticket_id=ticket_id,
            has_snapshot=alert.snapshot_jpeg is not None, simulated=alert.simulated,
        )
        self._publish("alert", self._views.alert(row))

    async def flush_touches(self) -> None:
        """Push held "touch" ticket changes once their window ends, re-read from the database
        (so a push never carries an older state than one already sent from elsewhere). Runs
        until cancelled."""
        loop = asyncio.get_running_loop()
        every = max(self.touch_interval_s / 4, 0.05)
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            self._update_pushed = {k: v for k, v in self._update_pushed.items()
                                   if now - v < self.touch_interval_s}
            due = self._throttle.due(now)
            if not due:
                continue
            try:
                async with self._pool.connection() as conn:
                    fresh = await tickets.get_many(conn, due)
            except DatabaseError as exc:
                log.warning("could not re-read %d held ticket pushes: %s", len(due), exc)
                continue  # a later change to those tickets will be pushed
            for t in fresh:
                change = tickets.Change(t)
                self._throttle.pushed(change, now)
                self._announce(change)

    # --- every other message: one by one --------------------------------------------------------

    async def one_by_one(self, topic: str, payload: bytes,
                         step: Callable[[], Awaitable[None]]) -> None:
        """Handle one message that is not an alert (``step``: status, heartbeat, what the edge
        reports...), held while the database is down; what ``step`` refuses (``Rejected``) or
        fails on goes to the dead letters."""
        try:
            await self._hold_while_db_down(step)
            return
        except Rejected as exc:
            reason = str(exc)
            log.warning("dead letter topic=%s reason=%s", topic, reason)
        except Exception as exc:  # a bug or a value the database refuses: this message only
            reason = f"could not be processed: {exc!r}"
            log.exception("message could not be processed topic=%s", topic)
        try:
            await self._hold_while_db_down(self._store_dead_letter, topic, payload, reason)
        except Exception:
            log.exception("dead letter could not be stored; dropped topic=%s", topic)

    async def _store_dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        async with self._pool.connection() as conn:
            await alerts.dead_letter(conn, topic, payload, reason)
        self.stats.dead_letters += 1

    def heartbeat(self, beat: Heartbeat) -> None:
        self._check_time(beat.at, "at")
        self.edges_seen[beat.edge_id] = beat.at

    async def edge_status(self, edge: EdgeStatus) -> None:
        """An edge's state; when it went offline, so did its cameras (pushed)."""
        self._check_time(edge.at, "at")
        async with self._pool.connection() as conn:
            went_offline = await alerts.upsert_edge_status(conn, edge)
            statuses = await alerts.camera_statuses(conn)
        for camera_id in went_offline:
            self._publish("camera_status", self._views.camera(camera_id, statuses.get(camera_id)))

    async def camera_status(self, cam: CameraStatus) -> None:
        self.check_binding(cam.edge_id, cam.camera_id)
        self._check_time(cam.at, "at")
        async with self._pool.connection() as conn:
            await alerts.upsert_camera_status(conn, cam)
            statuses = await alerts.camera_statuses(conn)
        self._publish("camera_status",
                      self._views.camera(cam.camera_id, statuses.get(cam.camera_id)))
