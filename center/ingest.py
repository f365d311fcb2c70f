"""MQTT ingest: every message the edges send becomes a stored row, a ticket change and a push.

Messages are taken in batches (``next_batch``): whatever is waiting when the previous batch is
done, up to ``batch_max``, so a quiet center handles each alert at once and a busy one
amortises its round trips. One batch is one transaction: all alerts go in with one pipelined
INSERT ... ON CONFLICT DO NOTHING, ticket work is done only for the ones that were new, grouped
by place (camera, zone, event type) so a storm of repeats for a place is one UPDATE, and the
screens are told after the commit. A malformed message goes to the dead-letter table with the
reason and never stops the loop.

Delivery is at least once, with a window. The center subscribes with a fixed client id and a
persistent session, so the broker keeps QoS 1 alerts while the center is away. But paho (under
aiomqtt) sends the PUBACK as soon as a message is read off the socket, before it is stored:
from then on the message lives only in this process's inbox. A database outage stalls the loop
and the inbox grows in memory (nothing is dropped while the process lives); a crash or kill
loses what was in the inbox and the batch in flight. Acknowledging after the commit (paho's
``manual_ack``) closes that window; that is issue 7.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiomqtt
import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from center.context import Context
from center.db import queries
from center.protocol import (
    CENTER_SUBSCRIPTIONS,
    QOS_RELIABLE,
    TOPIC_ROOT,
    Alert,
    CameraStatus,
    EdgeStatus,
    Heartbeat,
    parse_alert,
)
from center.push import Hub
from center.settings import MqttSettings
from center.tickets import service as tickets
from center.views import Views

log = logging.getLogger(__name__)
_M = TypeVar("_M", Heartbeat, CameraStatus, EdgeStatus)
_T = TypeVar("_T")
_Place = tuple[str, str, str]  # camera, zone, event type: one open ticket each


class Rejected(ValueError):
    """A message that can never be stored as sent: it goes to the dead-letter table."""


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    largest_batch: int = 0


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


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


class Ingest:
    #: Most messages per transaction; 1 gives the old one-transaction-per-message behaviour.
    batch_max = 500
    #: How long to wait for a batch to fill; 0 takes only what is already waiting.
    batch_linger_s = 0.0

    def __init__(self, mqtt: MqttSettings, pool: AsyncConnectionPool, ctx: Context,
                 views: Views, hub: Hub,
                 announce: Callable[[tickets.Change], None]) -> None:
        self._mqtt = mqtt
        self._pool = pool
        self._ctx = ctx
        self._views = views
        self._hub = hub
        self._announce = announce
        self.connected = False
        self.stats = IngestStats()
        self.edges_seen: dict[str, datetime] = {}

    async def run(self) -> None:
        """Consume forever, reconnecting to the broker with backoff."""
        backoff = 0.5
        # Our own handle on the queue aiomqtt fills, so a batch is taken without a task per
        # message; it outlives reconnections (what arrived is still to be stored).
        inbox: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        while True:
            try:
                async with aiomqtt.Client(
                    self._mqtt.host, self._mqtt.port, identifier=self._mqtt.client_id,
                    username=self._mqtt.username, password=self._mqtt.password,
                    clean_session=False, keepalive=30,
                    queue_type=lambda maxsize: inbox,  # type: ignore[arg-type]
                ) as client:
                    for topic in CENTER_SUBSCRIPTIONS:
                        await client.subscribe(topic, qos=QOS_RELIABLE)
                    self.connected, backoff = True, 0.5
                    log.info("mqtt connected host=%s port=%s", self._mqtt.host, self._mqtt.port)
                    while True:
                        batch = await next_batch(client.messages, inbox, self.batch_max,
                                                 self.batch_linger_s)
                        await self.handle_batch(
                            [(str(m.topic), _bytes(m.payload)) for m in batch])
            except aiomqtt.MqttError as exc:
                self.connected = False
                log.warning("mqtt unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def handle(self, topic: str, payload: bytes) -> None:
        """Store one message (a batch of one)."""
        await self.handle_batch([(topic, payload)])

    async def handle_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Store a batch of (topic, payload): its alerts and dead letters in one transaction,
        status and heartbeats one by one. Held and retried while the database is unreachable."""
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
        if alerts or rejected:
            await self._hold_while_db_down(self._store_alerts, alerts, rejected)

    async def _hold_while_db_down(self, step: Callable[..., Awaitable[None]],
                                  *args: Any) -> None:
        delay = 0.5
        while True:
            try:
                return await step(*args)
            except psycopg.OperationalError as exc:
                log.error("database unavailable (%s); holding messages", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _store_alerts(self, alerts: list[_Received],
                            rejected: list[tuple[str, bytes, str]]) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for topic, payload, reason in rejected:
                    await queries.dead_letter(conn, topic, payload, reason)
                new = await queries.insert_alerts(conn, [r.alert for r in alerts])
                changes, links = await self._ticket_work(conn, new)
                await queries.link_alerts_to_tickets(conn, links)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a bug or a lost race: never let one message stop ingest
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
        self.stats.dead_letters += len(rejected)
        self.stats.stored += len(new)
        self.stats.duplicates += len(alerts) - len(new)
        ticket_of = {(a.alert_id, a.seq): t for a, t in links}
        for a in new:
            self._push_alert(a, ticket_of.get((a.alert_id, a.seq)))
        for change in changes:
            self._announce(change)
        log.info("alerts stored=%d duplicates=%d dead_letters=%d ticket_changes=%d",
                 len(new), len(alerts) - len(new), len(rejected), len(changes))

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
        except Rejected as exc:
            self.stats.dead_letters += 1
            log.warning("dead letter topic=%s reason=%s", topic, exc)
            await self._hold_while_db_down(self._store_dead_letter, topic, payload, str(exc))

    async def _store_dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        async with self._pool.connection() as conn:
            await queries.dead_letter(conn, topic, payload, reason)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        kind, ids = _split_topic(topic)
        if kind == "status" and len(ids) in (1, 2):
            if payload:  # an empty retained message only clears the retained slot
                await self._status(ids, payload)
        elif kind == "heartbeat" and len(ids) == 1:
            beat = self._validate(Heartbeat, payload)
            self.edges_seen[beat.edge_id] = beat.at
        else:
            raise Rejected(f"unknown topic {topic}")

    @staticmethod
    def _validate(model: type[_M], payload: bytes) -> _M:
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            raise Rejected(_reason(exc)) from None

    def _parse_alert(self, edge_id: str, camera_id: str, payload: bytes) -> Alert:
        try:
            alert = parse_alert(payload)
        except ValidationError as exc:
            raise Rejected(_reason(exc)) from None
        if (alert.edge_id, alert.camera_id) != (edge_id, camera_id):
            raise Rejected(f"payload names edge {alert.edge_id}/camera {alert.camera_id} but "
                           f"was published under {edge_id}/{camera_id}")
        if alert.event_type not in self._ctx.event_types:
            raise Rejected(f"unknown event_type {alert.event_type}")
        return alert

    def _push_alert(self, alert: Alert, ticket_id: int | None) -> None:
        row = queries.AlertRow(
            alert_id=alert.alert_id, seq=alert.seq, kind=alert.kind, edge_id=alert.edge_id,
            camera_id=alert.camera_id, zone_id=alert.zone_id, event_type=alert.event_type,
            label=alert.label, score=alert.score, bbox=list(alert.bbox),
            started_at=alert.started_at, last_seen_at=alert.last_seen_at,
            received_at=datetime.now(UTC), ticket_id=ticket_id,
            has_snapshot=alert.snapshot_jpeg is not None,
        )
        self._hub.publish("alert", self._views.alert(row))

    async def _status(self, ids: list[str], payload: bytes) -> None:
        if len(ids) == 1:
            edge = self._validate(EdgeStatus, payload)
            if edge.edge_id != ids[0]:
                raise Rejected(f"edge status for {edge.edge_id} published under {ids[0]}")
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
        async with self._pool.connection() as conn:
            await queries.upsert_camera_status(conn, cam)
            statuses = await queries.camera_statuses(conn)
        self._hub.publish("camera_status",
                          self._views.camera(cam.camera_id, statuses.get(cam.camera_id)))
