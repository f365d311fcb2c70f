"""MQTT ingest: every message the edges send becomes a stored row, a ticket change and a push.

A malformed message goes to the dead-letter table with the reason and never stops the loop.
The center subscribes with a fixed client id and a persistent session, so the broker keeps
QoS 1 alerts while the center is down; a database outage stalls this loop (the broker queues)
until the database is back, instead of losing what arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

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


class Rejected(ValueError):
    """A message that can never be stored as sent: it goes to the dead-letter table."""


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


class Ingest:
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
        while True:
            try:
                async with aiomqtt.Client(
                    self._mqtt.host, self._mqtt.port, identifier=self._mqtt.client_id,
                    username=self._mqtt.username, password=self._mqtt.password,
                    clean_session=False, keepalive=30,
                ) as client:
                    for topic in CENTER_SUBSCRIPTIONS:
                        await client.subscribe(topic, qos=QOS_RELIABLE)
                    self.connected, backoff = True, 0.5
                    log.info("mqtt connected host=%s port=%s", self._mqtt.host, self._mqtt.port)
                    async for message in client.messages:
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode()
                        await self.handle(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                self.connected = False
                log.warning("mqtt unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def handle(self, topic: str, payload: bytes) -> None:
        """Store one message; retried while the database is unreachable."""
        self.stats.received += 1
        delay = 0.5
        while True:
            try:
                await self._dispatch(topic, payload)
                return
            except Rejected as exc:
                self.stats.dead_letters += 1
                log.warning("dead letter topic=%s reason=%s", topic, exc)
                await self._store_dead_letter(topic, payload, str(exc))
                return
            except psycopg.OperationalError as exc:
                log.error("database unavailable (%s); holding message topic=%s", exc, topic)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _store_dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        async with self._pool.connection() as conn:
            await queries.dead_letter(conn, topic, payload, reason)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        root_len = len(TOPIC_ROOT.split("/"))
        kind, ids = (parts[root_len], parts[root_len + 1:]) if len(parts) > root_len else ("", [])
        if kind == "alerts" and len(ids) == 2:
            await self._alert(ids[0], ids[1], payload)
        elif kind == "status" and len(ids) in (1, 2):
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

    async def _alert(self, edge_id: str, camera_id: str, payload: bytes) -> None:
        try:
            alert = parse_alert(payload)
        except ValidationError as exc:
            raise Rejected(_reason(exc)) from None
        if (alert.edge_id, alert.camera_id) != (edge_id, camera_id):
            raise Rejected(f"payload names edge {alert.edge_id}/camera {alert.camera_id} but "
                           f"was published under {edge_id}/{camera_id}")
        if alert.event_type not in self._ctx.event_types:
            raise Rejected(f"unknown event_type {alert.event_type}")
        change = None
        async with self._pool.connection() as conn, conn.transaction():
            if not await queries.insert_alert(conn, alert):
                self.stats.duplicates += 1
                return
            if alert.kind == "end":
                change = await tickets.camera_reports_clear(conn, self._ctx, alert)
            else:
                change = await tickets.open_or_attach(conn, self._ctx, alert)
            if change is not None:
                await queries.link_alert_to_ticket(conn, alert, change.ticket.id)
        self.stats.stored += 1
        ticket = change.ticket if change else None
        log.info("alert stored camera=%s alert_id=%s seq=%d kind=%s ticket=%s",
                 alert.camera_id, alert.alert_id, alert.seq, alert.kind,
                 ticket.id if ticket else None)
        self._push_alert(alert, ticket)
        if change is not None:
            self._announce(change)

    def _push_alert(self, alert: Alert, ticket: tickets.Ticket | None) -> None:
        row = queries.AlertRow(
            alert_id=alert.alert_id, seq=alert.seq, kind=alert.kind, edge_id=alert.edge_id,
            camera_id=alert.camera_id, zone_id=alert.zone_id, event_type=alert.event_type,
            label=alert.label, score=alert.score, bbox=list(alert.bbox),
            started_at=alert.started_at, last_seen_at=alert.last_seen_at,
            received_at=datetime.now(UTC), ticket_id=ticket.id if ticket else None,
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
