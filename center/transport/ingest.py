"""MQTT ingest: the center's one broker connection. It subscribes, takes messages in batches,
decodes each with ``wire.protocol``, hands it to the service for its topic and acknowledges
the batch once that is done. What a message becomes (stored rows, ticket changes, pushes, dead
letters, batching and push throttling) is ``center.services.alert_intake``.

Topics go through one table (``Ingest._routes``): ``alerts`` are decoded here and stored
together, one transaction per batch (``AlertIntake.store_batch``); every other topic kind
(status, heartbeat, what the edges report, alert clips, live view) has a handler that decodes
its message and calls its service, one message at a time (``AlertIntake.one_by_one``). A
handler refuses a message by raising ``Rejected``: it goes to the dead letters and is
acknowledged like any other. A topic kind with no handler is refused as unknown.

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
this needs. ``stall()`` says when the loop has nevertheless stopped making progress, for
``/healthz`` and ``/metrics``.

Drain (``drain``, on SIGTERM: docs/deployment.md "Removing a replica"): a replica unsubscribes,
so the broker gives the group's new messages to the other replicas, and goes on storing and
acknowledging what it was already given -- the batch in hand, its inbox, and what the broker
had queued for its session (Mosquitto still delivers those after the UNSUBACK) -- until none
has come for ``DRAIN_QUIET_S``. Its session is then empty: nothing waits for it to come back.
A single center (no share group) must not unsubscribe: its session is what keeps the alerts
published while it restarts. Nor must the last replica of a group (the app asks the database,
center/store/replica_drain.py). These finish the batch in hand and take no more; the rest is
redelivered to them on their next start under the same client id.

aiomqtt has no manual-acknowledgement API yet (empicano/aiomqtt#345, draft PR #346); paho
2.x has one (``manual_ack_set(True)``, ``ack(mid, qos)``). We reach aiomqtt's paho client in
one place (``_paho``), the workaround that issue documents. Under aiomqtt, paho is driven from
this event loop's thread (its socket is watched with ``add_reader``/``add_writer``), so
``ack()`` runs on the thread that reads the socket: no locking question, unlike paho's own
network thread (``loop_start``), where ``ack()`` would append to the outgoing deque from a
second thread without a lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import aiomqtt
import paho.mqtt.client as paho_mqtt
from pydantic import ValidationError

from center.domain.context import Context
from center.platform.settings import MqttSettings
from center.services import edge_state, model_rollout
from center.services.alert_intake import (
    AlertIntake,
    Announce,
    DeadLetter,
    Received,
    Rejected,
    next_batch,
)
from center.services.clips import ClipService
from center.services.live import LiveService
from center.services.views import Views
from center.store.db import Pool
from center.transport import live as live_messages
from center.transport.push import Hub
from wire.errors import describe
from wire.protocol import (
    CENTER_SUBSCRIPTIONS,
    QOS_RELIABLE,
    TOPIC_ROOT,
    Alert,
    CameraStatus,
    EdgeConfigState,
    EdgeStatus,
    Heartbeat,
    parse_alert,
)

log = logging.getLogger(__name__)
_M = TypeVar("_M", Heartbeat, CameraStatus, EdgeStatus, EdgeConfigState)
#: A topic's handler: called with the topic's ids (``gridwatch/v1/<kind>/<ids...>``) and the
#: payload; decodes it and hands it to its service; raises ``Rejected`` to dead-letter it.
Route = Callable[[list[str], bytes], Awaitable[None]]


#: A draining replica is done once no message has come for this long after its UNSUBACK.
DRAIN_QUIET_S = 1.0

#: Topic kinds every replica must see itself, never shared: a live stream's segments are
#: assembled in the memory of the replica whose viewer asked for it (center/services/live.py),
#: so each replica takes every live message and keeps those of its own streams (others'
#: are dropped quietly, ``LiveService.chunk``/``state``).
PER_REPLICA_KINDS = live_messages.KINDS


def subscriptions(share_group: str) -> list[str]:
    """The center's topic filters. With a share group (N replicas, docs/scaling.md), each
    edge-to-center topic whose message must be handled once -- alerts, statuses, heartbeats,
    what the edges report, clip chunks -- is ``$share/<group>/<filter>``: the broker gives
    each message to one member of the group (MQTT 5 shared subscriptions; Mosquitto 2 offers
    them to v3.1.1 clients too), and a QoS 1 message stays that member's until it
    acknowledges it. Live view kinds stay plain (``PER_REPLICA_KINDS``)."""
    if not share_group:
        return list(CENTER_SUBSCRIPTIONS)
    return [topic if _split_topic(topic)[0] in PER_REPLICA_KINDS
            else f"$share/{share_group}/{topic}" for topic in CENTER_SUBSCRIPTIONS]


def _split_topic(topic: str) -> tuple[str, list[str]]:
    """``gridwatch/v1/<kind>/<ids...>`` as (kind, ids)."""
    parts = topic.split("/")
    root_len = len(TOPIC_ROOT.split("/"))
    return (parts[root_len], parts[root_len + 1:]) if len(parts) > root_len else ("", [])


def _bytes(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()


def _validate(model: type[_M], payload: bytes) -> _M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise Rejected(describe(exc, with_input=False)) from None


class _Inbox(asyncio.Queue[aiomqtt.Message]):
    """The connection's inbox (aiomqtt puts each message received into it), stamped with the
    time the last message arrived: a draining replica is done when nothing came for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.last_put = time.monotonic()

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self.last_put = time.monotonic()
        super().put_nowait(item)


async def _polled(done: Callable[[], bool], until: float) -> bool:
    """Whether ``done()`` came true before ``until`` (``time.monotonic()``), looking every
    20 ms: the drain waits on the ingest loop's state, which signals no event."""
    while True:
        if done():
            return True
        if time.monotonic() >= until:
            return False
        await asyncio.sleep(0.02)


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


class Ingest:
    def __init__(self, mqtt: MqttSettings, pool: Pool, ctx: Context, views: Views, hub: Hub,
                 announce: Announce, *, stall_after_s: float = 60.0) -> None:
        self._mqtt = mqtt
        self._pool = pool
        self._ctx = ctx
        #: What the messages become (the batching and throttling knobs are its class's).
        self.intake = AlertIntake(pool, ctx, views, hub.publish, announce)
        self.stats = self.intake.stats
        #: Live view segments and states go there (center.transport.live; set by the app);
        #: None: refused.
        self.live: LiveService | None = None
        #: Alert clip chunks go there (center.services.clips; set by the app); None: refused.
        self.clips: ClipService | None = None
        #: (topic kind, number of ids) -> handler; alerts are batched, not routed.
        self._routes: dict[tuple[str, int], Route] = {
            ("status", 1): self._edge_status,
            ("status", 2): self._camera_status,
            ("heartbeat", 1): self._heartbeat,
            ("config-state", 1): self._config_state,
            ("frames", 2): self._frame,
            ("clips", 2): self._clip,
        }
        for kind in live_messages.KINDS:
            self._routes[(kind, 2)] = partial(self._live, kind)
        self.connected = False
        self.stall_after_s = stall_after_s
        #: Monotonic time of the last batch handled (or of the start), the batch in hand
        #: (started at, size), the connection's inbox, and why the loop ended if it did.
        self._progress_at = time.monotonic()
        self._in_hand: tuple[float, int] | None = None
        self._inbox: _Inbox | None = None
        #: Set by ``drain``; ``_holding``: it takes no more batches (it stays subscribed).
        self.draining = False
        self._holding = False
        self.failure: str | None = None
        self._client: aiomqtt.Client | None = None  # while connected, for ``publish``

    async def run(self) -> None:
        """Consume forever, reconnecting to the broker with backoff."""
        flusher = asyncio.create_task(self.intake.flush_touches(), name="ingest-touches")
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
        why = " (database unavailable)" if self.intake.db_holding else ""
        return (f"{self._in_hand[1]} message(s) received {held:.0f}s ago are not acknowledged"
                f" yet{why}; {self.waiting()} more waiting")

    async def _consume(self) -> None:
        backoff = 0.5
        while True:
            # Our own handle on the queue aiomqtt fills, so a batch is taken without a task per
            # message. One per connection: what a dead connection left unacknowledged is the
            # broker's to redeliver, and must not be acknowledged on the next one.
            inbox = _Inbox()
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
                    for topic in ([] if self.draining else
                                  subscriptions(self._mqtt.share_group)):
                        await client.subscribe(topic, qos=QOS_RELIABLE)
                    self.connected, backoff = True, 0.5
                    self._client = client
                    log.info("mqtt connected host=%s port=%s", self._mqtt.host, self._mqtt.port)
                    # Model assignments go out on this connection, the center's only one.
                    assigner = asyncio.create_task(
                        model_rollout.publish_assignments(self._pool, self.publish),
                        name="model-assignments")
                    while True:
                        if self._holding:
                            await asyncio.Future()  # drained in place: cancelled at exit
                        batch = await next_batch(client.messages, inbox, self.intake.batch_max,
                                                 self.intake.batch_linger_s)
                        self._in_hand = (time.monotonic(), len(batch))
                        await self.handle_batch(
                            [(str(m.topic), _bytes(m.payload)) for m in batch])
                        self.stats.acked += acker.ack(batch)  # stored and committed: ack
                        self._progress_at, self._in_hand = time.monotonic(), None
            except aiomqtt.MqttError as exc:
                self.connected, self._in_hand = False, None
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    # Stopping, and aiomqtt's disconnect on the way out failed (it waits for
                    # the broker up to its timeout): never a reconnect during a shutdown.
                    raise asyncio.CancelledError from exc
                log.warning("mqtt unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                acker.live, self._inbox = False, None
                self._client = None
                if assigner is not None:
                    assigner.cancel()
                    assigner = None

    async def drain(self, until: float, *, leave_group: bool) -> bool:
        """Stop taking new messages (module docstring, "Drain"): with ``leave_group`` (a
        replica while others stay), unsubscribe and store and acknowledge everything this
        replica was given; else finish the batch in hand and stay subscribed. True once done,
        False when ``until`` (a ``time.monotonic()``) came first -- what is unacknowledged then
        stays in the broker session, for this client id's next start."""
        self.draining = True
        client = self._client
        if not (leave_group and self._mqtt.share_group):
            self._holding = True
            return await _polled(lambda: self._in_hand is None, until)
        if client is None:
            log.warning("draining while not connected to the broker: what the group gives "
                        "this replica's session waits for its next start")
            return False
        try:
            await client.unsubscribe(subscriptions(self._mqtt.share_group),
                                     timeout=max(0.1, until - time.monotonic()))
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("drain: unsubscribe failed (%s); the session keeps its share", exc)
            return False
        log.info("drain: unsubscribed; storing what this replica was given")
        return await _polled(self._quiet, until)

    def _quiet(self) -> bool:
        """Nothing in hand or waiting, and no message for ``DRAIN_QUIET_S`` (longer than a
        batch's linger, so a message being gathered into a batch is never missed)."""
        inbox = self._inbox
        if inbox is None or self._in_hand is not None or inbox.qsize():
            return False
        quiet_s = max(DRAIN_QUIET_S, 2 * self.intake.batch_linger_s)
        return time.monotonic() - inbox.last_put >= quiet_s

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
        every other message one by one, in order, through its route. Returns once all of it
        is stored (held and retried while the database is unreachable)."""
        t0 = time.perf_counter()
        self.stats.received += len(messages)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(messages))
        alerts: list[Received] = []
        rejected: list[DeadLetter] = []
        for topic, payload in messages:
            kind, ids = _split_topic(topic)
            if kind != "alerts" or len(ids) != 2:
                await self.intake.one_by_one(topic, payload,
                                             partial(self._route, topic, kind, ids, payload))
                continue
            try:
                alerts.append(Received(topic, payload, self._alert(ids[0], ids[1], payload)))
            except Rejected as exc:
                log.warning("dead letter topic=%s reason=%s", topic, exc)
                rejected.append(DeadLetter(topic, payload, str(exc)))
            except Exception as exc:  # a bug: that message is refused, the others go on
                log.exception("alert could not be parsed topic=%s", topic)
                rejected.append(DeadLetter(topic, payload, f"could not be processed: {exc!r}"))
        if alerts or rejected:
            await self.intake.store_batch(alerts, rejected)
        self.stats.slowest_batch_ms = max(self.stats.slowest_batch_ms,
                                          (time.perf_counter() - t0) * 1000)

    def _alert(self, edge_id: str, camera_id: str, payload: bytes) -> Alert:
        try:
            alert = parse_alert(payload)
        except ValidationError as exc:
            raise Rejected(describe(exc, with_input=False)) from None
        if (alert.edge_id, alert.camera_id) != (edge_id, camera_id):
            raise Rejected(f"payload names edge {alert.edge_id}/camera {alert.camera_id} but "
                           f"was published under {edge_id}/{camera_id}")
        self.intake.check_alert(alert)
        return alert

    async def _route(self, topic: str, kind: str, ids: list[str], payload: bytes) -> None:
        route = self._routes.get((kind, len(ids)))
        if route is None:
            raise Rejected(f"unknown topic {topic}")
        await route(ids, payload)

    # --- routes: decode, check the topic against the payload, hand on --------------------------

    async def _heartbeat(self, ids: list[str], payload: bytes) -> None:
        self.intake.heartbeat(_validate(Heartbeat, payload))

    async def _edge_status(self, ids: list[str], payload: bytes) -> None:
        if not payload:  # an empty retained message only clears the retained slot
            return
        edge = _validate(EdgeStatus, payload)
        if edge.edge_id != ids[0]:
            raise Rejected(f"edge status for {edge.edge_id} published under {ids[0]}")
        await self.intake.edge_status(edge)

    async def _camera_status(self, ids: list[str], payload: bytes) -> None:
        if not payload:
            return
        cam = _validate(CameraStatus, payload)
        if [cam.edge_id, cam.camera_id] != ids:
            raise Rejected(f"camera status for {cam.edge_id}/{cam.camera_id} published under "
                           f"{'/'.join(ids)}")
        await self.intake.camera_status(cam)

    async def _config_state(self, ids: list[str], payload: bytes) -> None:
        if not payload:
            return
        state = _validate(EdgeConfigState, payload)
        if state.edge_id != ids[0]:
            raise Rejected(f"config state of edge {state.edge_id} published under {ids[0]}")
        if reason := await edge_state.store_config(self._pool, self._ctx.district, state):
            raise Rejected(reason)

    async def _frame(self, ids: list[str], payload: bytes) -> None:
        if not payload:
            return
        if reason := await edge_state.store_frame(self._pool, self._ctx.district, ids[0], ids[1],
                                                  payload):
            raise Rejected(reason)

    async def _live(self, kind: str, ids: list[str], payload: bytes) -> None:
        if self.live is None:  # no live view in this center: as any topic without a handler
            raise Rejected(f"unknown topic {TOPIC_ROOT}/{kind}/{'/'.join(ids)}")
        if reason := live_messages.handle(self.live, self._ctx.district, kind, ids, payload):
            raise Rejected(reason)

    async def _clip(self, ids: list[str], payload: bytes) -> None:
        if self.clips is None:
            raise Rejected(f"unknown topic {TOPIC_ROOT}/clips/{'/'.join(ids)}")
        self.intake.check_binding(ids[0], ids[1])
        await self.clips.receive(ids[0], ids[1], payload, self._ctx.clock.now())
