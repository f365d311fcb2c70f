"""Fires due deadline and escalation timers: the loop's sense of time.

``fire_due()`` is one pass (tests call it after moving a ManualClock); ``run()`` repeats it every
second in the center. A timer whose stage is already done is a no-op: state, not the timer,
decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from center.domain import ticket_notes
from center.domain.context import Context
from center.domain.ticket_states import TERMINAL
from center.services import tickets
from center.store import timers
from center.store.db import DatabaseError, Pool

log = logging.getLogger(__name__)

_STAGE_STATES = {"accept": ("dispatched",), "handle": ("accepted", "handling")}


async def fire_due(pool: Pool, ctx: Context) -> list[tickets.Change]:
    changes: list[tickets.Change] = []
    async with pool.connection() as conn, conn.transaction():
        for timer in await timers.claim_due(conn, ctx.clock.now()):
            ticket = await tickets.get(conn, timer.ticket_id, for_update=True)
            if ticket.state in TERMINAL:
                continue
            if timer.kind in _STAGE_STATES:
                if ticket.state in _STAGE_STATES[timer.kind]:
                    changes.append(await tickets.escalate(
                        conn, ctx, ticket, 1, ticket_notes.STAGE_LIMIT.format(stage=timer.kind)))
            elif timer.kind == "escalate":
                if ticket.acknowledged_by is None and ticket.escalation_level < timer.level:
                    changes.append(await tickets.escalate(
                        conn, ctx, ticket, timer.level, ticket_notes.UNACKNOWLEDGED))
            elif timer.kind == "overall":
                if ticket.escalation_level == 0:
                    changes.append(await tickets.escalate(
                        conn, ctx, ticket, 1, ticket_notes.STAGE_LIMIT.format(stage="overall")))
            elif timer.kind == "evaluate" and ticket.state == "verified":
                changes.append(await tickets.apply(
                    conn, ctx, ticket.id, "close", actor_id="system", role="system",
                    note=ticket_notes.CLOSED_UNRATED))
    return changes


async def run(pool: Pool, ctx: Context,
              announce: Callable[[tickets.Change], None], interval: float = 1.0) -> None:
    while True:
        try:
            for change in await fire_due(pool, ctx):
                announce(change)
        except DatabaseError as exc:
            log.warning("timer pass failed (will retry): %s", exc)
        await asyncio.sleep(interval)
