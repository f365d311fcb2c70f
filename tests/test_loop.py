"""Whole-loop scenarios on a hand-moved clock against a real PostgreSQL: routing fallbacks,
deadlines and escalation, camera verification, rework, void / return, restarts, emergency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from center.domain.context import Context
from center.domain.district import DutyWindow, Person, load_district
from center.domain.event_types import load_event_types
from center.domain.ticket_states import IllegalTransition
from center.domain.time_limits import load_time_limits
from center.platform.clock import ManualClock
from center.services import scheduler
from center.services import tickets as service
from center.services.auth import Principal
from center.store import district_store, timers
from tests.mqtt_helpers import make_alert
from wire.paths import DEFAULTS_DIR

# Monday 2026-11-23 10:00 in Shanghai.
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def loop(db_dsn: str) -> AsyncIterator[tuple[AsyncConnectionPool, Context]]:
    ctx = Context(district=load_district(DEFAULTS_DIR / "district" / "district.yaml"),
                  event_types=load_event_types(DEFAULTS_DIR / "event_types.yaml"),
                  limits=load_time_limits(DEFAULTS_DIR / "time_limits.yaml"),
                  clock=ManualClock(T0))
    pool = AsyncConnectionPool(db_dsn, min_size=1, max_size=8, open=False)
    await pool.open(wait=True)
    async with pool.connection() as conn, conn.transaction():
        await district_store.import_district(conn, ctx.district, actor_id="test", at=T0)
    yield pool, ctx
    await pool.close()


async def _alert(pool, ctx, **kw) -> service.Change:
    async with pool.connection() as conn, conn.transaction():
        return await service.open_or_attach(conn, ctx, make_alert(**kw))


async def _act(pool, ctx, ticket_id: int, action: str, actor: str, **kw) -> service.Change:
    async with pool.connection() as conn, conn.transaction():
        return await service.apply(conn, ctx, ticket_id, action, actor_id=actor,
                                   role=ctx.role_of(actor) or actor, **kw)


async def _ledger(pool, ticket_id: int) -> list[tuple[str, str, str]]:
    async with pool.connection() as conn:
        return [(e.action, e.actor_id, e.to_state) for e in await service.ledger(conn, ticket_id)]


async def test_routes_to_a_post_then_b_then_leader(loop) -> None:
    pool, ctx = loop
    first = await _alert(pool, ctx)
    assert first.created and first.ticket.assignee_id == "w-0111"
    assert first.ticket.state == "dispatched" and first.notify == {"w-0111": "new"}
    # A post off duty: the on-duty B post gets the next case in that micro-grid.
    a = ctx.district.people["w-0111"]
    off = a.model_copy(update={"duty": [DutyWindow(days=["sat"], start="08:00", end="09:00")]})
    ctx.district = ctx.district.model_copy(
        update={"people": ctx.district.people | {"w-0111": off}})
    second = await _alert(pool, ctx, zone_id="z2")
    assert second.ticket.assignee_id == "w-0112"
    # B's duty is 07:00-23:00 Shanghai; at 23:30 only the micro-grid leader is left.
    ctx.clock.set(datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
    third = await _alert(pool, ctx, zone_id="z3")
    assert third.ticket.assignee_id == "l-011"


async def test_repeat_alerts_attach_and_parallel_alerts_open_one_ticket(loop) -> None:
    pool, ctx = loop

    async def one() -> service.Change:
        return await _alert(pool, ctx)

    changes = await asyncio.gather(*(one() for _ in range(8)))
    assert len({c.ticket.id for c in changes}) == 1
    assert sum(c.created for c in changes) == 1
    async with pool.connection() as conn:
        t = await service.get(conn, changes[0].ticket.id)
    assert t.alert_count == 8


async def test_accept_deadline_escalates_in_order_and_stops_on_acknowledge(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket  # 0506: accept within 15 min, round the clock
    assert t.stage_due_at == T0 + timedelta(minutes=15)
    ctx.clock.advance(minutes=14)
    assert await scheduler.fire_due(pool, ctx) == []
    ctx.clock.advance(minutes=2)
    [level1] = await scheduler.fire_due(pool, ctx)
    assert level1.ticket.escalation_level == 1 and level1.notify == {"l-011": "escalated (level 1)"}
    ctx.clock.advance(minutes=30)  # escalate_every_min
    [level2] = await scheduler.fire_due(pool, ctx)
    assert level2.ticket.escalation_level == 2
    assert set(level2.notify) == {"l-g01", "d-urban-01"}  # grid leader + owning department
    ctx.clock.advance(minutes=60)
    assert await scheduler.fire_due(pool, ctx) == []  # two levels only

    t2 = (await _alert(pool, ctx, zone_id="z2")).ticket
    ctx.clock.advance(minutes=16)
    [esc] = await scheduler.fire_due(pool, ctx)
    assert esc.ticket.id == t2.id
    await _act(pool, ctx, t2.id, "acknowledge", "l-011", note="on my way")
    ctx.clock.advance(minutes=31)
    assert await scheduler.fire_due(pool, ctx) == []  # the chain stopped
    actions = [a for a, _, _ in await _ledger(pool, t2.id)]
    assert actions == ["register", "dispatch", "escalate", "acknowledge"]


async def test_accepting_in_time_means_no_escalation(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    ctx.clock.advance(minutes=5)
    accepted = (await _act(pool, ctx, t.id, "accept", "w-0111")).ticket
    assert accepted.stage_due_at == ctx.clock.now() + timedelta(minutes=60)  # handle limit
    ctx.clock.advance(minutes=20)
    assert await scheduler.fire_due(pool, ctx) == []


async def test_camera_closes_the_loop_and_rating_closes_the_ledger(loop) -> None:
    pool, ctx = loop
    alert = make_alert()
    async with pool.connection() as conn, conn.transaction():
        t = (await service.open_or_attach(conn, ctx, alert)).ticket
    await _act(pool, ctx, t.id, "accept", "w-0111")
    await _act(pool, ctx, t.id, "arrive", "w-0111")
    await _act(pool, ctx, t.id, "resolve", "w-0111", note="moved the bike")
    async with pool.connection() as conn, conn.transaction():
        verified = await service.camera_reports_clear(
            conn, ctx, make_alert("end", alert_id=alert.alert_id, seq=1))
    assert verified is not None and verified.ticket.state == "verified"
    # The place is clear: a new violation there is a new case.
    again = await _alert(pool, ctx)
    assert again.created and again.ticket.id != t.id
    rated = await _act(pool, ctx, t.id, "rate", "public", satisfaction=5)
    assert rated.ticket.state == "closed" and rated.ticket.satisfaction == 5
    assert [a for a, _, _ in await _ledger(pool, t.id)] == [
        "register", "dispatch", "accept", "arrive", "resolve", "verify", "rate", "close"]


async def test_unrated_verified_case_closes_after_the_evaluation_window(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    for action in ("accept", "resolve"):
        await _act(pool, ctx, t.id, action, "w-0111")
    await _act(pool, ctx, t.id, "verify", "l-011")
    ctx.clock.advance(minutes=ctx.limits.evaluate_within_min + 1)
    closing = [c for c in await scheduler.fire_due(pool, ctx) if c.ticket.id == t.id]
    assert closing and closing[-1].ticket.state == "closed"


async def test_failed_verification_is_rework_and_counted(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    await _act(pool, ctx, t.id, "accept", "w-0111")
    await _act(pool, ctx, t.id, "resolve", "w-0111")
    again = await _alert(pool, ctx)  # the camera still sees a bike there
    assert again.ticket.id == t.id and again.ticket.state == "dispatched"
    assert again.ticket.rework_count == 1 and again.notify == {"w-0111": "rework"}
    await _act(pool, ctx, t.id, "accept", "w-0111")
    await _act(pool, ctx, t.id, "resolve", "w-0111")
    by_leader = await _act(pool, ctx, t.id, "rework", "l-011", note="still there")
    assert by_leader.ticket.rework_count == 2


async def test_return_and_void(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    returned = await _act(pool, ctx, t.id, "return", "w-0111", note="not my street")
    assert returned.ticket.state == "registered" and returned.ticket.assignee_id is None
    assert returned.notify == {"l-011": "returned"}
    re = await _act(pool, ctx, t.id, "reassign", "op-01", assignee_id="w-0121")
    assert re.ticket.assignee_id == "w-0121" and re.ticket.state == "dispatched"
    with pytest.raises(IllegalTransition, match="worker may not 'void'"):
        await _act(pool, ctx, t.id, "void", "w-0121")
    voided = await _act(pool, ctx, t.id, "void", "op-01", note="false alarm: a shadow")
    assert voided.ticket.state == "void" and voided.ticket.closed_at == T0
    async with pool.connection() as conn:
        assert await timers.pending(conn, t.id) == []
    with pytest.raises(IllegalTransition, match="not allowed in state 'void'"):
        await _act(pool, ctx, t.id, "accept", "w-0121")


async def test_extension_moves_deadlines(loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    accepted = (await _act(pool, ctx, t.id, "accept", "w-0111")).ticket
    await _act(pool, ctx, t.id, "request_extension", "w-0111", extension_min=45)
    approved = (await _act(pool, ctx, t.id, "approve_extension", "l-011")).ticket
    assert approved.stage_due_at == accepted.stage_due_at + timedelta(minutes=45)
    ctx.clock.advance(minutes=61)  # past the original handle limit, inside the extension
    assert await scheduler.fire_due(pool, ctx) == []
    ctx.clock.advance(minutes=45)
    assert [c.ticket.escalation_level for c in await scheduler.fire_due(pool, ctx)] == [1]


async def test_restart_mid_loop_loses_no_timer(db_dsn: str, loop) -> None:
    pool, ctx = loop
    t = (await _alert(pool, ctx)).ticket
    await pool.close()  # the center goes away with the ticket waiting for acceptance
    ctx.clock.advance(minutes=20)
    fresh = AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False)
    await fresh.open(wait=True)
    try:
        [esc] = await scheduler.fire_due(fresh, ctx)
        assert esc.ticket.id == t.id and esc.ticket.escalation_level == 1
        assert await scheduler.fire_due(fresh, ctx) == []  # fired once, not again
    finally:
        await fresh.close()


async def test_emergency_shortens_limits_and_raises_priority(loop) -> None:
    pool, ctx = loop
    normal = (await _alert(pool, ctx)).ticket
    ctx.emergency_scopes.add("g-01")
    urgent = (await _alert(pool, ctx, zone_id="z2")).ticket
    assert urgent.emergency and urgent.priority == ctx.limits.emergency.priority
    assert urgent.stage_due_at - T0 == (normal.stage_due_at - T0) / 2
    other_grid = (await _alert(pool, ctx, camera_id="cam-vtest", zone_id="z")).ticket
    assert not other_grid.emergency
    async with pool.connection() as conn:
        listed = await service.list_tickets(conn, scope=service.EVERYTHING, open_only=True)
    assert listed[0].id == urgent.id


async def test_manual_intake_is_routed_by_location(loop) -> None:
    pool, ctx = loop
    async with pool.connection() as conn, conn.transaction():
        patrol = await service.intake(conn, ctx, source="patrol", event_type="0504",
                                      lon=120.1565, lat=30.2712, description="goods on pavement",
                                      reporter="w-0121", actor_id="w-0121")
        resident = await service.intake(conn, ctx, source="resident", event_type="0506",
                                        lon=120.1612, lat=30.2718, description="bikes at gate",
                                        reporter=None, actor_id="resident")
        nowhere = await service.intake(conn, ctx, source="resident", event_type="0506",
                                       lon=100.0, lat=10.0, description="far away",
                                       reporter=None, actor_id="resident")
    assert (patrol.ticket.micro_grid_id, patrol.ticket.assignee_id) == ("mg-012", "w-0121")
    assert resident.ticket.micro_grid_id == "mg-021" and resident.ticket.assignee_id == "w-0211"
    assert nowhere.ticket.state == "registered" and nowhere.ticket.assignee_id is None
    assert len({patrol.ticket.public_token, resident.ticket.public_token}) == 2


async def test_each_persons_list_is_what_they_may_read(loop) -> None:
    """The SQL scope of a list and the check of one ticket read are one rule (Scope): for every
    person of the district, their list holds exactly the tickets they may open, the ones
    assigned to them outside their area or event types included."""
    pool, ctx = loop
    d = ctx.district
    made = [(await _alert(pool, ctx, camera_id=cam, zone_id="z", event_type=code)).ticket
            for cam in d.cameras for code in ("0504", "0506")]
    async with pool.connection() as conn, conn.transaction():
        nowhere = await service.intake(conn, ctx, source="resident", event_type="0506",
                                       lon=100.0, lat=10.0, description="far away",
                                       reporter=None, actor_id="resident")
    other_area, other_type = [t for t in made if t.micro_grid_id != "mg-021"
                              and t.event_type == "0506"][:2]
    await _act(pool, ctx, other_area.id, "reassign", "op-01", assignee_id="l-021")
    await _act(pool, ctx, other_type.id, "reassign", "op-01", assignee_id="d-market-01")
    async with pool.connection() as conn:
        everything = await service.list_tickets(conn, scope=service.EVERYTHING, limit=1000)
        assert {t.id for t in everything} == {t.id for t in made} | {nowhere.ticket.id}
        # Leaders of no area (the district file allows them) lead nothing: the list route
        # once left their list unfiltered.
        nobody = [Person(id=f"x-{role}", name="x", role=role)
                  for role in ("micro_grid_leader", "grid_leader", "department_staff")]
        for person in [*d.people.values(), *nobody]:
            who = Principal(person)
            listed = await service.list_tickets(conn, scope=who.scope(d), limit=1000)
            readable = [t for t in everything if who.sees_ticket(
                d, t.micro_grid_id, t.event_type, t.assignee_id)]
            assert [t.id for t in listed] == [t.id for t in readable], person.id
            if person.id in ("l-021", "d-market-01"):
                assert any(t.assignee_id == person.id for t in listed), person.id
            if person in nobody:
                assert listed == [], person.id
