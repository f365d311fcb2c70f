"""The wall's live events other than tickets, across center replicas: the alert feed, camera
status, worker presence, the emergency switch with its broadcast, operators' verdicts and
stored alert clips committed by another replica, pushed to this replica's walls and phones as
the replica that wrote them pushed them to its own (docs/scaling.md "Replicas"). The
emergency switch also changes this replica's ``Context.emergency_scopes``: new cases here get
the emergency deadlines too.

``center/transport/replica_push.py`` hears the notifications of the triggers of migrations
0030 and 0033 on its LISTEN connection, skips this replica's own and hands the rest here a
batch at a time: ``WallBatch`` gathers what a batch names, ``WallEvents.read`` reads those
rows in one connection (the alerts of a whole batch in one query) and ``WallEvents.push``
sends them.

The alert feed is the high-volume one: the trigger sends one NOTIFY per 80 alerts of an
insert, never one per alert, naming each by its primary key, and the listener reads them back
by index, so relaying costs a replica one query per batch and the views it would have built
for its own alerts.

A verdict on a case is one event naming the case's alerts, as on the replica that recorded
it (one per 300 alerts of a case: migration 0033); its worker is the case's assignee as read.
A clip's event is built as the storing replica builds it (``clip_event``).

Order: notifications come in commit order and alerts are pushed in the order they were
inserted, so an alert's messages reach the wall in seq order. Camera and presence rows are
read as they are now; a state older than one pushed from here already is not pushed again
(``_newer``), so a late read never takes a wall back.

Catch-up: while the listener is down the notifications are lost. When it is back the
emergency scopes are read again and the walls are told to reload (a ``summary``, the event
after which a wall that fell behind in a storm refetches its feed, cameras, tickets and
workers), which is what a wall does on its own (re)connect: the alert feed is the latest 50
from ``GET /alerts``, not a replay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from center.services import verdicts
from center.services.clips import StoredClip, clip_event
from center.services.presence import Presence
from center.services.views import Views
from center.store import clips, district_store, replicas
from center.store import verdicts as verdict_store
from center.store.alerts import AlertRow, CameraStatusRow
from center.store.db import Connection
from center.store.presence import DutyPeriod, Position, last_period, last_positions, on_duty
from center.transport.push import Hub

log = logging.getLogger(__name__)

#: The alert keys' observed_at come as µs since this (exact, unlike a float of seconds).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class WallStats:
    alerts_pushed: int = 0
    cameras_pushed: int = 0
    presence_pushed: int = 0
    emergency_pushed: int = 0
    verdicts_pushed: int = 0
    clips_pushed: int = 0


@dataclass
class WallBatch:
    """What one batch of wall-event notifications names (each id once, alerts in order)."""

    alerts: dict[tuple[UUID, int, datetime], None] = field(default_factory=dict)
    cameras: dict[str, None] = field(default_factory=dict)
    positions: dict[str, None] = field(default_factory=dict)
    duty: dict[str, None] = field(default_factory=dict)
    emergency: dict[str, None] = field(default_factory=dict)
    broadcasts: dict[int, None] = field(default_factory=dict)
    #: The verdict ids of each recording heard (one event each).
    verdicts: list[list[int]] = field(default_factory=list)
    clips: dict[UUID, None] = field(default_factory=dict)

    def take(self, msg: dict[str, Any]) -> None:
        """One payload of migration 0030 (ValueError, KeyError or TypeError when unreadable)."""
        kind = msg["k"]
        if kind == "alerts":
            self.alerts.update(((UUID(a), int(s), _EPOCH + timedelta(microseconds=int(us))), None)
                               for a, s, us in msg["a"])
        elif kind == "camera":
            self.cameras[str(msg["c"])] = None
        elif kind == "position":
            self.positions[str(msg["p"])] = None
        elif kind == "duty":
            self.duty[str(msg["p"])] = None
        elif kind == "emergency":
            self.emergency[str(msg["s"])] = None
        elif kind == "broadcast":
            self.broadcasts[int(msg["l"])] = None
        elif kind == "verdicts":
            self.verdicts.append([int(v) for v in msg["v"]])
        elif kind == "clip":
            self.clips[UUID(msg["i"])] = None
        else:
            raise ValueError(f"unknown wall event kind {kind!r}")

    def __bool__(self) -> bool:
        return bool(self.alerts or self.cameras or self.positions or self.duty
                    or self.emergency or self.broadcasts or self.verdicts or self.clips)


@dataclass
class WallRows:
    """The rows a ``WallBatch`` names, as they are now."""

    alerts: list[AlertRow] = field(default_factory=list)
    cameras: list[CameraStatusRow] = field(default_factory=list)
    positions: list[tuple[Position, datetime]] = field(default_factory=list)
    duty: list[tuple[str, DutyPeriod | None]] = field(default_factory=list)
    #: The emergency switches named (scope, active, since, actor_id, note), and broadcasts
    #: (id, at, actor_id, scope, note).
    emergency: list[dict[str, Any]] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    #: The ``verdict`` events and their recipients, one per recording, in the order recorded.
    verdicts: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    clips: list[StoredClip] = field(default_factory=list)


class WallEvents:
    """Reads and pushes the wall events another replica committed."""

    def __init__(self, views: Views, hub: Hub, presence: Presence) -> None:
        self._views, self._hub, self._presence = views, hub, presence
        self.stats = WallStats()
        #: updated_at of the camera status, ``at`` of the position, last pushed from here.
        #: Bounded by the district's cameras and people.
        self._camera_at: dict[str, datetime] = {}
        self._position_at: dict[str, datetime] = {}

    async def read(self, conn: Connection, batch: WallBatch) -> WallRows:
        rows = WallRows()
        if batch.alerts:
            rows.alerts = await replicas.alerts(conn, list(batch.alerts))
        if batch.cameras:
            rows.cameras = await replicas.camera_statuses(conn, list(batch.cameras))
        if batch.positions:
            fixes = await last_positions(conn, list(batch.positions))
            since = await on_duty(conn, [p.person_id for p in fixes])
            rows.positions = [(p, since[p.person_id]) for p in fixes if p.person_id in since]
        for person_id in batch.duty:
            rows.duty.append((person_id, await last_period(conn, person_id)))
        if batch.emergency:
            rows.emergency = [m for m in await district_store.emergency_modes(conn)
                              if m["scope"] in batch.emergency]
        if batch.broadcasts:
            rows.broadcasts = await replicas.broadcasts(conn, list(batch.broadcasts))
        if batch.verdicts:
            rows.verdicts = await _verdict_events(conn, batch.verdicts)
        for clip_id in batch.clips:
            if (row := await clips.get(conn, clip_id)) is not None:
                rows.clips.append(StoredClip(row, await clips.alert_place(conn, row.alert_id)))
        return rows

    def push(self, rows: WallRows) -> None:
        """The emergency switches and broadcasts, the alerts (in insert order), verdicts and
        clips, then camera states, duty and positions."""
        for mode in rows.emergency:
            self._switch(mode)
        for sent in rows.broadcasts:
            self._hub.publish("broadcast", {"scope": sent["scope"], "text": sent["note"],
                                            "from": sent["actor_id"],
                                            "at": sent["at"].isoformat()},
                              recipients=self._everyone_in(sent["scope"]))
            self.stats.emergency_pushed += 1
        for alert in rows.alerts:
            self._hub.publish("alert", self._views.alert(alert))
        self.stats.alerts_pushed += len(rows.alerts)
        for data, recipients in rows.verdicts:
            self._hub.publish("verdict", data, recipients=recipients)
        self.stats.verdicts_pushed += len(rows.verdicts)
        for stored in rows.clips:
            data, recipients = clip_event(stored)
            self._hub.publish("clip", data, recipients=recipients)
        self.stats.clips_pushed += len(rows.clips)
        for cam in rows.cameras:
            if _newer(self._camera_at, cam.camera_id, cam.updated_at):
                self._hub.publish("camera_status", self._views.camera(cam.camera_id, cam))
                self.stats.cameras_pushed += 1
        people = self._views.ctx.district.people
        for person_id, period in rows.duty:
            if (person := people.get(person_id)) is not None:
                self._presence.push_duty(person, period)
                self.stats.presence_pushed += 1
        for fix, since in rows.positions:
            if ((person := people.get(fix.person_id)) is not None
                    and _newer(self._position_at, fix.person_id, fix.at)):
                self._presence.push_position(person, fix, since)
                self.stats.presence_pushed += 1

    def _switch(self, mode: dict[str, Any]) -> None:
        """Another replica's emergency switch: this replica's cases follow it from now on, and
        its screens are told as center/api/district.py tells the writer's."""
        scopes = self._views.ctx.emergency_scopes
        (scopes.add if mode["active"] else scopes.discard)(mode["scope"])
        self._hub.publish("emergency", {"scope": mode["scope"], "active": mode["active"],
                                        "note": mode["note"], "at": mode["since"].isoformat()},
                          recipients=self._everyone_in(mode["scope"]))
        self.stats.emergency_pushed += 1

    def _everyone_in(self, scope: str) -> list[str]:
        """The people of an emergency's scope (the district, or a grid), as the switch names
        them."""
        return [p.id for p in self._views.ctx.district.people_in(
            None if scope == "district" else scope)]

    async def catch_up(self, conn: Connection, since: datetime) -> None:
        """After the listener was away: the emergency scopes as stored now, and every wall
        here reloads its lists (``summary``)."""
        self._views.ctx.emergency_scopes = {
            m["scope"] for m in await district_store.emergency_modes(conn) if m["active"]}
        self._hub.publish("summary", {"folded": {}, "since": since.isoformat()})
        log.info("replica push listener back: the walls reload what they may have missed")


async def _verdict_events(conn: Connection, recordings: list[list[int]]
                          ) -> list[tuple[dict[str, Any], list[str]]]:
    """One ``verdict`` event per recording heard, with its case's assignee as it is now."""
    made = {v.id: v for v in await verdict_store.by_ids(
        conn, [i for ids in recordings for i in ids])}
    cases = {v.ticket_id for v in made.values() if v.ticket_id is not None}
    assignee = {t.id: t.assignee_id for t in await replicas.tickets(conn, list(cases))}
    events = []
    for ids in recordings:
        if rows := [made[i] for i in ids if i in made]:
            case = rows[0].ticket_id
            events.append(verdicts.event(rows, assignee.get(case) if case else None))
    return events


def _newer(pushed: dict[str, datetime], key: str, at: datetime) -> bool:
    """Whether ``at`` is newer than the state of ``key`` pushed last (and remember it)."""
    last = pushed.get(key)
    if last is not None and at <= last:
        return False
    pushed[key] = at
    return True
