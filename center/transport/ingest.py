"""MQTT ingest: every message the edges send becomes a stored row, a ticket change and a push.

Messages are taken in batches (``next_batch``): whatever is waiting when the previous batch is
done, up to ``batch_max``, so a quiet center handles each alert at once and a busy one
amortises its round trips. One batch is one transaction: all alerts go in with one pipelined
INSERT ... ON CONFLICT DO NOTHING, ticket work is done only for the ones that were new, grouped
by place (camera, zone, event type) so a storm of repeats for a place is one UPDATE, and the
screens are told after the commit.

No message can stop the loop: whatever fails for one message -- bad JSON, text PostgreSQL
refuses, an event time outside the window (``wire.protocol.time_window_problem``), a camera
the district does not give to the sending edge, a re-sent ``(alert_id, seq)`` with other
content, or a bug -- sends that message to ``dead_letters`` with the reason, and it is
acknowledged like any other. Only a database outage holds a batch (see below). ``stall()`` says
when the loop has nevertheless stopped making progress, for ``/healthz`` and ``/metrics``.

Delivery is at least once, with no window: a QoS 1 message is acknowledged to the broker
only after the batch that stored it has committed (``_Acker``). The center subscribes with a
fixed client id and a persistent session, so whatever it has not acknowledged -- the batch in
flight, what waits in the inbox, what the broker still queues -- is redelivered when it comes
back after a crash or a kill, and stored once (``ON CONFLICT DO NOTHING`` on (alert_id, seq);
ticket work is done only for rows that were new, in the same transaction). While PostgreSQL is
down the batch is held and retried with backoff, nothing is acknowledged, and the broker keeps
the rest: it stops sending once the center has ``max_inflight_messages`` unacknowledged (so
that also bounds the inbox and the batch size) and queues up to ``max_queued_messages`` for
the session. See docs/performance.md, "Center ingest and dispatch", for the broker settings
this needs.

aiomqtt has no manual-acknowledgement API yet (empicano/aiomqtt#345, draft PR #346); paho
2.x has one (``manual_ack_set(True)``, ``ack(mid, qos)``). We reach aiomqtt's paho client in
one place (``_paho``), the workaround that issue documents. Under aiomqtt, paho is driven from
this event loop's thread (its socket is watched with ``add_reader``/``add_writer``), so
``ack()`` runs on the thread that reads the socket: no locking question, unlike paho's own
network thread (``loop_start``), where ``ack()`` would append to the outgoing deque from a
second thread without a lock.

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
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import aiomqtt
import paho.mqtt.client as paho_mqtt
import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from center.domain.context import Context
from center.platform.settings import MqttSettings
from center.services import edge_state, model_rollout, tickets
from center.services.clips import ClipRefused, ClipService
from center.services.views import Views
from center.store import alerts as queries
from center.transport.push import Hub
from wire.errors import describe
from wire.protocol import (
    CENTER_SUBSCRIPTIONS,
    MAX_STATUS_AGE,
    QOS_RELIABLE,
    TOPIC_ROOT,
    Alert,
    CameraStatus,
    EdgeStatus,
    Heartbeat,
    alert_time_problem,
    parse_alert,
    time_window_problem,
)

log = logging.getLogger(__name__)
_M = TypeVar("_M", Heartbeat, CameraStatus, EdgeStatus)
_T = TypeVar("_T")
_Place = tuple[str, str, str]  # camera, zone, event type: one open ticket each
_LOCK_RACE = (psycopg.errors.DeadlockDetected, psycopg.errors.TransactionRollback)


def _db_outage(exc: BaseException) -> bool:
    """An error that says the database is unreachable or unwell (hold the batch and retry),
    rather than that one message cannot be stored (dead-letter it). A program limit (a value
    too big for an index, say) is the message's fault."""
    return (isinstance(exc, psycopg.OperationalError)
            and not isinstance(exc, psycopg.errors.ProgramLimitExceeded))


class Rejected(ValueError):
    """A message that can never be stored as sent: it goes to the dead-letter table."""


@dataclass
class IngestStats:
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


@dataclass(frozen=True)
class _Received:
    topic: str
    payload: bytes
    alert: Alert


def _split_topic(topic: str) -> tuple[str, list[str]]:
    """``gridwatch/v1/<kind>/<ids...>`` as (kind, ids)."""
    parts = topic.split("/")
    root_len = len(TOPIC_ROOT.split("/"))
    return (parts[root_len], parts[root_len + 1:]) if len(parts) > root_len else ("", [])


def _alert_topic_ids(topic: str) -> tuple[str, str] | None:
    """(edge_id, camera_id) of an alert topic, else None."""
    kind, ids = _split_topic(topic)
    return (ids[0], ids[1]) if kind == "alerts" and len(ids) == 2 else None


def _bytes(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()


def _paho(client: aiomqtt.Client) -> paho_mqtt.Client:
    """The paho client inside aiomqtt: the only place we reach in, for manual acks (see the
    module docstring). Fails loudly if a future aiomqtt moves it."""
    inner = client._client
    if not isinstance(inner, paho_mqtt.Client):
        raise TypeError(f"aiomqtt.Client._client is {type(inner)!r}, not a paho client")
    return inner


class _Acker:
    """Acknowledges messages of one connection, after they are stored, in the order received
    (MQTT 3.1.1 4.6: PUBACKs go out in the order the PUBLISHes came)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = _paho(client)
        self._paho.manual_ack_set(True)  # before connecting: nothing is ever acked on receipt
        self.live = True  # false once the connection is gone: the broker redelivers instead

    def ack(self, messages: list[aiomqtt.Message]) -> int:
        if not self.live:
            return 0
        n = 0
        for m in messages:
            if m.qos > 0:
                self._paho.ack(m.mid, m.qos)
                n += 1
        return n


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


class Ingest:
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

    def __init__(self, mqtt: MqttSettings, pool: AsyncConnectionPool, ctx: Context,
                 views: Views, hub: Hub,
                 announce: Callable[[tickets.Change], None], *,
                 stall_after_s: float = 60.0) -> None:
        self._mqtt = mqtt
        self._pool = pool
        self._ctx = ctx
        self._views = views
        self._hub = hub
        self._announce = announce
        #: Alert clip chunks go there (center.services.clips; set by the app); None: refused.
        self.clips: ClipService | None = None
        self.connected = False
        self.db_holding = False
        self.stats = IngestStats()
        self.edges_seen: dict[str, datetime] = {}
        self._throttle = _TouchThrottle(self.touch_interval_s)
        self._update_pushed: dict[UUID, float] = {}
        self.stall_after_s = stall_after_s
        #: Monotonic time of the last batch handled (or of the start), the batch in hand
        #: (started at, size), the connection's inbox, and why the loop ended if it did.
        self._progress_at = time.monotonic()
        self._in_hand: tuple[float, int] | None = None
        self._inbox: asyncio.Queue[aiomqtt.Message] | None = None
        self.failure: str | None = None
        self._client: aiomqtt.Client | None = None  # while connected, for ``publish``

    async def run(self) -> None:
        """Consume forever, reconnecting to the broker with backoff."""
        flusher = asyncio.create_task(self._flush_touches(), name="ingest-touches")
        try:
            await self._consume()
        except Exception as exc:  # never silent: /healthz reports it and a supervisor restarts
            self.failure, self.connected = repr(exc), False
            log.exception("ingest stopped")
            raise
        finally:
            flusher.cancel()

    def waiting(self) -> int:
        """Messages received from the broker and not yet taken into a batch."""
        return self._inbox.qsize() if self._inbox is not None else 0

    def progress(self) -> dict[str, Any]:
        """How the loop is moving, for ``/healthz`` and ``/metrics``."""
        now = time.monotonic()
        return {"waiting": self.waiting(),
                "in_hand": self._in_hand[1] if self._in_hand else 0,
                "in_hand_s": round(now - self._in_hand[0], 3) if self._in_hand else 0.0,
                "last_progress_s": round(now - self._progress_at, 3),
                "stalled": self.stall()}

    def stall(self) -> str | None:
        """Why the loop is not making progress, or None: it ended, or it has had messages in
        hand (received, not yet acknowledged) for ``stall_after_s``. An idle loop is waiting
        in ``next_batch``, which takes a message as soon as it arrives, so messages that wait
        are always behind a batch in hand."""
        if self.failure is not None:
            return f"the ingest loop ended: {self.failure}"
        if self._in_hand is None:
            return None
        held = time.monotonic() - self._in_hand[0]
        if held <= self.stall_after_s:
            return None
        why = " (database unavailable)" if self.db_holding else ""
        return (f"{self._in_hand[1]} message(s) received {held:.0f}s ago are not acknowledged"
                f" yet{why}; {self.waiting()} more waiting")

    async def _consume(self) -> None:
        backoff = 0.5
        while True:
            # Our own handle on the queue aiomqtt fills, so a batch is taken without a task per
            # message. One per connection: what a dead connection left unacknowledged is the
            # broker's to redeliver, and must not be acknowledged on the next one.
            inbox: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
            client = aiomqtt.Client(
                self._mqtt.host, self._mqtt.port, identifier=self._mqtt.client_id,
                **self._mqtt.client_kwargs(), clean_session=False, keepalive=30,
                # called once, in Client.__init__; the default binds this connection's inbox
                queue_type=lambda maxsize, inbox=inbox: inbox,  # type: ignore[arg-type]
            )
            acker = _Acker(client)
            self._inbox = inbox
            assigner: asyncio.Task[None] | None = None
            try:
                async with client:
                    for topic in CENTER_SUBSCRIPTIONS:
                        await client.subscribe(topic, qos=QOS_RELIABLE)
                    self.connected, backoff = True, 0.5
                    self._client = client
                    log.info("mqtt connected host=%s port=%s", self._mqtt.host, self._mqtt.port)
                    # Model assignments go out on this connection, the center's only one.
                    assigner = asyncio.create_task(
                        model_rollout.publish_assignments(self._pool, self.publish),
                        name="model-assignments")
                    while True:
                        batch = await next_batch(client.messages, inbox, self.batch_max,
                                                 self.batch_linger_s)
                        self._in_hand = (time.monotonic(), len(batch))
                        await self.handle_batch(
                            [(str(m.topic), _bytes(m.payload)) for m in batch])
                        self.stats.acked += acker.ack(batch)  # stored and committed: ack
                        self._progress_at, self._in_hand = time.monotonic(), None
            except aiomqtt.MqttError as exc:
                self.connected, self._in_hand = False, None
                log.warning("mqtt unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                acker.live, self._inbox = False, None
                self._client = None
                if assigner is not None:
                    assigner.cancel()
                    assigner = None

    async def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 on the ingest's connection, the center's only one: a broker with
        accounts binds the client id to the account (docs/security.md), so a second connection
        of the center's account would take over this persistent session and cut ingest off.
        Raises ``aiomqtt.MqttError`` while the broker is unreachable."""
        client = self._client
        if client is None:
            raise aiomqtt.MqttError("the center is not connected to the broker")
        await client.publish(topic, payload, qos=QOS_RELIABLE, retain=retain)

    async def handle(self, topic: str, payload: bytes) -> None:
        """Store one message (a batch of one)."""
        await self.handle_batch([(topic, payload)])

    async def handle_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Store a batch of (topic, payload): its alerts and dead letters in one transaction,
        status and heartbeats one by one. Held and retried while the database is unreachable."""
        t0 = time.perf_counter()
        self.stats.received += len(messages)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(messages))
        alerts: list[_Received] = []
        rejected: list[tuple[str, bytes, str]] = []
        for topic, payload in messages:
            ids = _alert_topic_ids(topic)
            if ids is None:
                await self._handle_other(topic, payload)
                continue
            try:
                alerts.append(_Received(topic, payload, self._parse_alert(*ids, payload)))
            except Rejected as exc:
                log.warning("dead letter topic=%s reason=%s", topic, exc)
                rejected.append((topic, payload, str(exc)))
            except Exception as exc:  # a bug: that message is refused, the others go on
                log.exception("alert could not be parsed topic=%s", topic)
                rejected.append((topic, payload, f"could not be processed: {exc!r}"))
        if alerts or rejected:
            await self._hold_while_db_down(self._store_alerts, alerts, rejected)
        self.stats.slowest_batch_ms = max(self.stats.slowest_batch_ms,
                                          (time.perf_counter() - t0) * 1000)

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
                except _LOCK_RACE as exc:  # deadlock or serialization failure: just retry
                    self.stats.lock_retries += 1
                    log.warning("batch rolled back (%s); retrying it", exc.sqlstate)
                    await asyncio.sleep(0.01)
                except psycopg.OperationalError as exc:
                    if not _db_outage(exc):
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

    async def _store_alerts(self, alerts: list[_Received],
                            rejected: list[tuple[str, bytes, str]]) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for topic, payload, reason in rejected:
                    await queries.dead_letter(conn, topic, payload, reason)
                new = await queries.insert_alerts(conn, [r.alert for r in alerts])
                conflicts = await self._conflicts(conn, alerts, new)
                changes, links = await self._ticket_work(conn, new)
                await queries.link_alerts_to_tickets(conn, links)
        except Exception as exc:  # a bug or a lost race: never let one message stop ingest
            if _db_outage(exc) or isinstance(exc, _LOCK_RACE):
                raise
            if len(alerts) + len(rejected) > 1:
                log.exception("a batch of %d failed; storing its messages one by one",
                              len(alerts) + len(rejected))
                for r in rejected:
                    await self._store_alerts([], [r])
                for one in alerts:
                    await self._store_alerts([one], [])
            elif alerts:
                log.exception("alert could not be processed topic=%s", alerts[0].topic)
                await self._store_alerts(
                    [], [(alerts[0].topic, alerts[0].payload, f"could not be processed: {exc!r}")])
            else:
                log.exception("dead letter could not be stored; dropped topic=%s", rejected[0][0])
            return
        self.stats.dead_letters += len(rejected) + conflicts
        self.stats.conflicts += conflicts
        self.stats.stored += len(new)
        self.stats.duplicates += len(alerts) - len(new) - conflicts
        try:
            self._push_stored(new, changes, links)
        except Exception:  # stored and committed: a failed push must not stop the loop
            log.exception("pushing %d stored alerts failed", len(new))
        log.info("alerts stored=%d duplicates=%d dead_letters=%d conflicts=%d"
                 " ticket_changes=%d", len(new), len(alerts) - len(new) - conflicts,
                 len(rejected), conflicts, len(changes))

    async def _conflicts(self, conn: psycopg.AsyncConnection, alerts: list[_Received],
                         new: list[Alert]) -> int:
        """Dead-letter the repeats of a stored ``(alert_id, seq)`` whose content differs."""
        stored = {id(a) for a in new}
        repeats = [r for r in alerts if id(r.alert) not in stored]
        if not repeats:
            return 0
        bad = {id(a) for a in await queries.conflicting(conn, [r.alert for r in repeats])}
        for r in repeats:
            if id(r.alert) in bad:
                reason = (f"alert {r.alert.alert_id} seq {r.alert.seq} was stored before with"
                          " other content; the first copy is kept")
                log.warning("dead letter topic=%s reason=%s", r.topic, reason)
                await queries.dead_letter(conn, r.topic, r.payload, reason)
        return len(bad)

    def _push_stored(self, new: list[Alert], changes: list[tickets.Change],
                     links: list[tuple[Alert, int]]) -> None:
        ticket_of = {(a.alert_id, a.seq): t for a, t in links}
        now = asyncio.get_running_loop().time()
        for a in new:
            self._push_alert(a, ticket_of.get((a.alert_id, a.seq)), now)
        for change in changes:
            if self._throttle.offer(change, now):
                self._announce(change)
            else:
                self.stats.touches_coalesced += 1

    async def _ticket_work(self, conn: psycopg.AsyncConnection, new: list[Alert],
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

    async def _handle_other(self, topic: str, payload: bytes) -> None:
        """Status and heartbeat messages (and unknown topics), one by one."""
        try:
            await self._hold_while_db_down(self._dispatch, topic, payload)
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
            await queries.dead_letter(conn, topic, payload, reason)
        self.stats.dead_letters += 1

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        kind, ids = _split_topic(topic)
        if kind == "status" and len(ids) in (1, 2):
            if payload:  # an empty retained message only clears the retained slot
                await self._status(ids, payload)
        elif kind == "heartbeat" and len(ids) == 1:
            beat = self._validate(Heartbeat, payload)
            self._check_time(beat.at, "at")
            self.edges_seen[beat.edge_id] = beat.at
        elif kind in edge_state.KINDS:
            if reason := await edge_state.handle(self._pool, self._ctx.district, kind, ids,
                                                 payload):
                raise Rejected(reason)
        elif kind == "clips" and len(ids) == 2 and self.clips is not None:
            self._check_binding(ids[0], ids[1])
            try:
                await self.clips.receive(ids[0], ids[1], payload, self._ctx.clock.now())
            except ClipRefused as exc:
                raise Rejected(str(exc)) from None
        else:
            raise Rejected(f"unknown topic {topic}")

    @staticmethod
    def _validate(model: type[_M], payload: bytes) -> _M:
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            raise Rejected(describe(exc, with_input=False)) from None

    def _parse_alert(self, edge_id: str, camera_id: str, payload: bytes) -> Alert:
        try:
            alert = parse_alert(payload)
        except ValidationError as exc:
            raise Rejected(describe(exc, with_input=False)) from None
        if (alert.edge_id, alert.camera_id) != (edge_id, camera_id):
            raise Rejected(f"payload names edge {alert.edge_id}/camera {alert.camera_id} but "
                           f"was published under {edge_id}/{camera_id}")
        self._check_binding(edge_id, camera_id)
        if alert.event_type not in self._ctx.event_types:
            raise Rejected(f"unknown event_type {alert.event_type}")
        if problem := alert_time_problem(alert, self._ctx.clock.now()):
            raise Rejected(problem)
        return alert

    def _check_binding(self, edge_id: str, camera_id: str) -> None:
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

    def _push_alert(self, alert: Alert, ticket_id: int | None, now: float) -> None:
        if alert.kind == "update" and self.touch_interval_s > 0:
            last = self._update_pushed.get(alert.alert_id)
            if last is not None and now - last < self.touch_interval_s:
                self.stats.updates_skipped += 1
                return
            self._update_pushed[alert.alert_id] = now
        row = queries.AlertRow(
            alert_id=alert.alert_id, seq=alert.seq, kind=alert.kind, edge_id=alert.edge_id,
            camera_id=alert.camera_id, zone_id=alert.zone_id, event_type=alert.event_type,
            label=alert.label, score=alert.score, bbox=list(alert.bbox),
            started_at=alert.started_at, last_seen_at=alert.last_seen_at,
            received_at=datetime.now(UTC), ticket_id=ticket_id,
            has_snapshot=alert.snapshot_jpeg is not None,
        )
        self._hub.publish("alert", self._views.alert(row))

    async def _flush_touches(self) -> None:
        """Push held "touch" ticket changes once their window ends, re-read from the database
        (so a push never carries an older state than one already sent from elsewhere)."""
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
            except psycopg.Error as exc:
                log.warning("could not re-read %d held ticket pushes: %s", len(due), exc)
                continue  # a later change to those tickets will be pushed
            for t in fresh:
                change = tickets.Change(t)
                self._throttle.pushed(change, now)
                self._announce(change)

    async def _status(self, ids: list[str], payload: bytes) -> None:
        if len(ids) == 1:
            edge = self._validate(EdgeStatus, payload)
            if edge.edge_id != ids[0]:
                raise Rejected(f"edge status for {edge.edge_id} published under {ids[0]}")
            self._check_time(edge.at, "at")
            async with self._pool.connection() as conn:
                went_offline = await queries.upsert_edge_status(conn, edge)
                statuses = await queries.camera_statuses(conn)
            for camera_id in went_offline:
                self._hub.publish("camera_status",
                                  self._views.camera(camera_id, statuses.get(camera_id)))
            return
        cam = self._validate(CameraStatus, payload)
        if [cam.edge_id, cam.camera_id] != ids:
            raise Rejected(f"camera status for {cam.edge_id}/{cam.camera_id} published under "
                           f"{'/'.join(ids)}")
        self._check_binding(cam.edge_id, cam.camera_id)
        self._check_time(cam.at, "at")
        async with self._pool.connection() as conn:
            await queries.upsert_camera_status(conn, cam)
            statuses = await queries.camera_statuses(conn)
        self._hub.publish("camera_status",
                          self._views.camera(cam.camera_id, statuses.get(cam.camera_id)))
