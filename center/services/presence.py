"""Worker presence: duty check-in/out, positions shared while on duty, who may see them
(docs/presence.md).

Privacy is the shape of this module: a position is stored only inside an open duty period
(``center.store.presence`` locks it while writing), at most once per ``min_interval_s`` per
person, and only its own person may send it; operators and admins see everyone's, leaders
their area's workers, a worker only their own; engineers and department staff see none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from center.domain.context import Context
from center.domain.district import Person
from center.platform.settings import PresenceSettings
from center.services.auth import Principal
from center.store import presence as store
from center.store.db import DatabaseError, Pool

log = logging.getLogger(__name__)

#: What became of a position the phone sent.
Outcome = Literal["stored", "thinned", "off_duty"]
#: Who a person's position and duty events are pushed to besides the wall.
Publish = Callable[..., None]


class NotAllowed(PermissionError):
    """The person may not see (or send) these positions; the message says why."""


@dataclass(frozen=True)
class Duty:
    person_id: str
    on_duty: bool
    #: When the current state began (None: never checked in).
    since: datetime | None

    def view(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "on_duty": self.on_duty,
                "since": self.since.isoformat() if self.since else None}


def _duty(person_id: str, period: store.DutyPeriod | None) -> Duty:
    if period is None:
        return Duty(person_id, False, None)
    if period.ended_at is None:
        return Duty(person_id, True, period.started_at)
    return Duty(person_id, False, period.ended_at)


#: The websocket events that carry a worker's whereabouts (filtered by ``sees_all_positions``).
PRESENCE_EVENTS = frozenset({"position", "duty"})


def sees_all_positions(viewer: Principal) -> bool:
    """Whether a wall screen's person gets every worker's position on its socket: operators and
    admins do; an engineer's wall (a wall role too) does not, as ``Presence.visible`` says."""
    return viewer.is_operator


def district_day(ctx: Context, at: datetime) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of the district's day holding ``at``."""
    tz = ZoneInfo(ctx.district.timezone)
    day = at.astimezone(tz).date()
    start = datetime.combine(day, time(), tz)
    return start, datetime.combine(day + timedelta(days=1), time(), tz)


class Presence:
    def __init__(self, pool: Pool, ctx: Context, settings: PresenceSettings,
                 publish: Publish) -> None:
        self.pool, self.ctx, self.settings, self._publish = pool, ctx, settings, publish

    # --- who sees whom ---------------------------------------------------------------------

    def visible(self, viewer: Principal) -> set[str] | None:
        """The people whose presence ``viewer`` sees (None: everyone)."""
        if viewer.is_operator:
            return None
        d = self.ctx.district
        areas = viewer.micro_grids(d)
        if areas is not None:
            return {p.id for p in d.people.values()
                    if p.role == "worker" and p.micro_grid in areas}
        if viewer.role == "worker":
            return {viewer.id}
        raise NotAllowed(f"a {viewer.role} does not see workers' positions"
                         " (operators, admins, leaders for their area, workers their own)")

    def check_sees(self, viewer: Principal, person_id: str) -> None:
        seen = self.visible(viewer)
        if seen is not None and person_id not in seen:
            raise NotAllowed(f"{person_id!r} is not a worker {viewer.id} may see")

    def _watchers(self, person: Person) -> list[str]:
        """The leaders of a worker's micro-grid and grid (their phones and leader views get
        the worker's live position; wall screens get everyone's)."""
        d = self.ctx.district
        grid = d.grid_of(person.micro_grid)
        return [p.id for p in d.people.values()
                if (p.role == "micro_grid_leader" and p.micro_grid == person.micro_grid
                    and person.micro_grid)
                or (p.role == "grid_leader" and grid and p.grid == grid)] + [person.id]

    # --- duty -------------------------------------------------------------------------------

    async def duty(self, person_id: str) -> Duty:
        async with self.pool.connection() as conn:
            return _duty(person_id, await store.last_period(conn, person_id))

    async def set_duty(self, person: Person, on: bool) -> Duty:
        """Check in (``on``) or out. Checking out also takes the person off the wall's map:
        the last position stays in the series, but no marker claims they are out there."""
        now = self.ctx.clock.now()
        async with self.pool.connection() as conn, conn.transaction():
            if on:
                period: store.DutyPeriod | None = await store.check_in(conn, person.id, now)
            else:
                await store.check_out(conn, person.id, now)
                period = await store.last_period(conn, person.id)
        return self.push_duty(person, period)

    def push_duty(self, person: Person, period: store.DutyPeriod | None) -> Duty:
        """Tell the wall and the person's watchers their duty state: this replica's check-in
        or out, or another replica's (center/transport/replica_events.py)."""
        duty = _duty(person.id, period)
        self._publish("duty", self._describe(person) | duty.view(),
                      recipients=self._watchers(person))
        return duty

    # --- positions --------------------------------------------------------------------------

    async def report(self, person: Person, lon: float, lat: float,
                     accuracy_m: float | None) -> Outcome:
        """Store a position the person's own phone sent (the center's clock stamps it), if
        they are on duty and their last stored one is old enough; push it to the wall."""
        position = store.Position(person.id, self.ctx.clock.now(), lon, lat, accuracy_m)
        async with self.pool.connection() as conn, conn.transaction():
            period = await store.open_period(conn, person.id, for_share=True)
            if period is None:
                return "off_duty"
            stored = await store.store_position(
                conn, position, timedelta(seconds=self.settings.min_interval_s))
        if not stored:
            return "thinned"
        self.push_position(person, position, period.started_at)
        return "stored"

    def push_position(self, person: Person, position: store.Position, since: datetime) -> None:
        """Put a stored position of someone on duty ``since`` on the wall's map and their
        watchers' screens: this replica's, or another replica's (replica_events.py)."""
        self._publish("position", self._position_view(person, position, since),
                      recipients=self._watchers(person))

    async def last_positions(self, viewer: Principal) -> list[dict[str, Any]]:
        """The last position of each on-duty person the viewer sees (off-duty people are not
        shown where they were)."""
        seen = self.visible(viewer)
        async with self.pool.connection() as conn:
            positions = await store.last_positions(conn, None if seen is None else sorted(seen))
            duty = await store.on_duty(conn, [p.person_id for p in positions])
        people = self.ctx.district.people
        return [self._position_view(people[p.person_id], p, duty[p.person_id])
                for p in positions if p.person_id in duty and p.person_id in people]

    async def today_track(self, viewer: Principal, person_id: str) -> dict[str, Any]:
        """A person's positions since the district's local midnight, and their patrol
        distance over them."""
        self.check_sees(viewer, person_id)
        start, end = district_day(self.ctx, self.ctx.clock.now())
        async with self.pool.connection() as conn:
            fixes = await store.track(conn, person_id, start, end)
            walked = await store.patrol_per_day(
                conn, start, end, self.ctx.district.timezone,
                max_accuracy_m=self.settings.max_accuracy_m,
                max_speed_mps=self.settings.max_speed_mps, person_ids=[person_id])
        return {"person_id": person_id, "from": start.isoformat(), "to": end.isoformat(),
                "patrol_km": round(sum(w.metres for w in walked) / 1000, 3),
                "points": [{"at": f.at.isoformat(), "lon": f.lon, "lat": f.lat,
                            "accuracy_m": f.accuracy_m} for f in fixes]}

    # --- storage ----------------------------------------------------------------------------

    async def maintain(self) -> int:
        """The coming days' partitions and retention; returns the partitions dropped."""
        async with self.pool.connection() as conn:
            await store.ensure_partitions(conn)
            if self.settings.retention_days is None:
                return 0
            return await store.sweep(conn, self.ctx.clock.now(), self.settings.retention_days)

    async def run(self, every_s: float = 3600) -> None:
        """``maintain`` hourly, like the alerts' storage (a failed round is logged, not
        fatal: the next one catches up)."""
        while True:
            try:
                dropped = await self.maintain()
                if dropped:
                    log.info("position retention: dropped %d partitions", dropped)
            except DatabaseError as exc:
                log.warning("position storage maintenance failed: %s", exc)
            await asyncio.sleep(every_s)

    # --- views ------------------------------------------------------------------------------

    def _describe(self, person: Person) -> dict[str, Any]:
        return {"person_id": person.id, "name": person.name, "role": person.role,
                "post": person.post, "micro_grid_id": person.micro_grid}

    def _position_view(self, person: Person, p: store.Position, since: datetime
                       ) -> dict[str, Any]:
        age = (self.ctx.clock.now() - p.at).total_seconds()
        return self._describe(person) | {
            "at": p.at.isoformat(), "lon": p.lon, "lat": p.lat, "accuracy_m": p.accuracy_m,
            "on_duty": True, "since": since.isoformat(),
            "stale": age > self.settings.stale_after_s,
            "stale_after_s": self.settings.stale_after_s}
