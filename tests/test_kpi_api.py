"""The headline figures (GET /indicators/headline) and the hotspots (GET /indicators/hotspots)
on tickets seeded at known times with a hand-moved clock, every figure worked out by hand.

The wall once read "今日结案率 100.0 %" while cases were open: the rate counts the cases due
so far today, which says nothing of the cases not due yet. The scenario reproduces exactly
that (every case due today closed, four open now) and checks that the API names both.

Times are Shanghai; "now" is Wednesday 2026-11-25 12:00. Limits (default time_limits.yaml,
round the clock): 0506 overall 120 min (accept within 15), 0504 overall 240 min (accept
within 30, handle within 120). All cases are hand reports at mg-011's point unless noted.

  case  type  opened           what happens                              settles (due)
  P1    0506  Oct 10 10:00     verified 10:30, on time                   Oct 10 10:30
  P2    0506  Oct 20 09:00     verified 12:00, late (due 11:00)          Oct 20 11:00
  P3    0506  Oct 28 10:00     verified 10:30                            Oct 28 (after the
                                                                         like-for-like cut)
  W1    0506  Nov 17 10:00     verified 10:30, on time                   Nov 17 10:30
  W2    0506  Nov 17 11:00     verified 14:00, late (due 13:00)          Nov 17 13:00
  W3    0506  Nov 19 10:00     verified 10:20 (Thursday: after the cut)  Nov 19 10:20
  Y1    0506  Nov 22 20:00     never accepted: open and overdue now      Nov 22 22:00
  T1    0506  Nov 24 09:00     verified 09:30                            Nov 24 09:30
  D1    0506  Nov 25 08:00     verified 08:30                            today 08:30
  D2    0506  Nov 25 09:00     verified 10:30 (due 11:00)                today 10:30
  V1    0506  Nov 25 09:30     voided 09:40: never due, not a hotspot
  O1    0504  Nov 25 11:00     accepted 11:10: open, due 15:00           not yet
  O2    0504  Nov 25 11:20     at mg-012, accepted 11:25: open           not yet
  O3    0506  Nov 25 11:50     camera cam-vn-01 (mg-011): open, accept   not yet
                               due 12:05

Trends compare this period so far with the same stretch of the previous one: the week
Mon Nov 23 00:00 .. now against Mon Nov 16 00:00 .. Wed Nov 18 12:00; the month Nov 1 00:00 ..
now (24 days 12 h) against Oct 1 00:00 .. Oct 25 12:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from psycopg_pool import AsyncConnectionPool

from center.domain.context import Context
from center.platform.clock import ManualClock
from center.services import tickets as service
from tests.mqtt_helpers import make_alert

SH = ZoneInfo("Asia/Shanghai")
MG011, MG012 = (120.152, 30.2715), (120.156, 30.2715)


def at(month: int, day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SH)


NOW = at(11, 25, 12, 0)


@pytest.fixture
def center_clock() -> ManualClock:
    return ManualClock(at(10, 10, 9, 0))


async def build(pool: AsyncConnectionPool, ctx: Context) -> None:
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    ids: dict[str, int] = {}
    where: dict[str, str] = {}
    owner: dict[str, str | None] = {}

    async def reg(name: str, when: datetime, code: str, point: tuple[float, float] = MG011,
                  ) -> None:
        clock.set(when)
        async with pool.connection() as conn, conn.transaction():
            change = await service.intake(conn, ctx, source="patrol", event_type=code,
                                          lon=point[0], lat=point[1], description=name,
                                          reporter=None, actor_id="w-0111")
        ids[name] = change.ticket.id
        where[name] = change.ticket.micro_grid_id or ""
        owner[name] = change.ticket.assignee_id

    async def act(name: str, when: datetime, action: str, **kw: Any) -> None:
        clock.set(when)
        async with pool.connection() as conn, conn.transaction():
            leader = ctx.district.leader_of(where[name])
            assert leader is not None
            actor = {"verify": leader.id, "void": "op-01"}.get(action, owner[name])
            assert actor is not None
            await service.apply(conn, ctx, ids[name], action, actor_id=actor,
                                role=ctx.role_of(actor) or actor, **kw)

    async def done(name: str, accept: datetime, resolve: datetime, verify: datetime) -> None:
        await act(name, accept, "accept")
        await act(name, resolve, "resolve")
        await act(name, verify, "verify")

    for name, opened, finished in [
        ("P1", at(10, 10, 10, 0), at(10, 10, 10, 30)),
        ("P2", at(10, 20, 9, 0), at(10, 20, 12, 0)),
        ("P3", at(10, 28, 10, 0), at(10, 28, 10, 30)),
        ("W1", at(11, 17, 10, 0), at(11, 17, 10, 30)),
        ("W2", at(11, 17, 11, 0), at(11, 17, 14, 0)),
        ("W3", at(11, 19, 10, 0), at(11, 19, 10, 20)),
    ]:
        await reg(name, opened, "0506")
        await done(name, opened + timedelta(minutes=5), finished - timedelta(minutes=5),
                   finished)
    await reg("Y1", at(11, 22, 20, 0), "0506")
    await reg("T1", at(11, 24, 9, 0), "0506")
    await done("T1", at(11, 24, 9, 5), at(11, 24, 9, 20), at(11, 24, 9, 30))
    await reg("D1", at(11, 25, 8, 0), "0506")
    await done("D1", at(11, 25, 8, 5), at(11, 25, 8, 20), at(11, 25, 8, 30))
    await reg("D2", at(11, 25, 9, 0), "0506")
    await reg("V1", at(11, 25, 9, 30), "0506")
    await act("V1", at(11, 25, 9, 40), "void", note="false alarm")
    await done("D2", at(11, 25, 9, 50), at(11, 25, 10, 20), at(11, 25, 10, 30))
    await reg("O1", at(11, 25, 11, 0), "0504")
    await act("O1", at(11, 25, 11, 10), "accept")
    await reg("O2", at(11, 25, 11, 20), "0504", MG012)
    await act("O2", at(11, 25, 11, 25), "accept")
    clock.set(at(11, 25, 11, 50))
    async with pool.connection() as conn, conn.transaction():
        await service.open_or_attach(conn, ctx, make_alert(camera_id="cam-vn-01"))
    clock.set(NOW)


@pytest.fixture
async def kpi(center) -> Any:
    ctx: Context = center.app.state.center.ctx
    pool = AsyncConnectionPool(center.settings.db.dsn, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    try:
        await build(pool, ctx)
    finally:
        await pool.close()
    return center


def _get(center: Any, who: str, path: str, **params: str) -> Any:
    r = center.client(who).get(path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


COUNTS = ("registered", "due", "closed", "on_time", "closed_in_period", "voided",
          "closure_rate", "on_time_rate")


def figures(part: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(part[k] for k in COUNTS)


async def test_due_today_rate_is_full_while_cases_are_open_now_and_the_api_says_both(kpi,
                                                                                    ) -> None:
    body = _get(kpi, "op-01", "/api/v1/indicators/headline")
    assert body["scope"] == {"level": "district", "key": "demo", "name": body["scope"]["name"]}
    assert body["as_of"] == NOW.isoformat()
    # Today: D1, D2, V1, O1, O2, O3 opened; due so far D1, D2, both closed on time: 100 %...
    assert figures(body["today"]) == (6, 2, 2, 2, 2, 1, 1.0, 1.0)
    assert body["today"]["from"] == "2026-11-25T00:00:00+08:00"
    assert body["today"]["to"] == "2026-11-25T12:00:00+08:00"
    # ...while O1, O2, O3 (not due yet) and Y1 (overdue since Sunday) are open now.
    assert body["now"] == {"open": 4, "overdue": 1}


async def test_week_over_week_and_month_over_month(kpi) -> None:
    trends = _get(kpi, "op-01", "/api/v1/indicators/headline")["trends"]
    week, month = trends["week"], trends["month"]
    # This week: T1, D1, D2, V1, O1, O2, O3 opened; due T1, D1, D2, all closed on time.
    assert figures(week["current"]) == (7, 3, 3, 3, 3, 1, 1.0, 1.0)
    assert (week["current"]["from"], week["current"]["to"]) == (
        "2026-11-23T00:00:00+08:00", "2026-11-25T12:00:00+08:00")
    # Same stretch last week: W1, W2 (W3 is Thursday); W2 closed late.
    assert figures(week["previous"]) == (2, 2, 2, 1, 2, 0, 1.0, 0.5)
    assert (week["previous"]["from"], week["previous"]["to"]) == (
        "2026-11-16T00:00:00+08:00", "2026-11-18T12:00:00+08:00")
    assert week["change"] == {"registered": 5, "due": 1, "closed": 1, "on_time": 2,
                              "closed_in_period": 1, "voided": 1, "closure_rate": 0.0,
                              "on_time_rate": 0.5}
    assert week["change_ratio"] == {"registered": 2.5, "due": 0.5, "closed": 0.5, "on_time": 2.0,
                                    "closed_in_period": 0.5, "voided": None}
    # This month: W1, W2, W3, Y1, T1, D1, D2, V1, O1, O2, O3; due W1, W2, W3, Y1, T1, D1, D2;
    # closed all but Y1; on time all but W2 and Y1 -> 6/7, 5/7.
    assert figures(month["current"]) == (11, 7, 6, 5, 6, 1, 0.8571, 0.7143)
    # Oct 1 .. Oct 25 12:00: P1, P2 (P3 is Oct 28); P2 late.
    assert figures(month["previous"]) == (2, 2, 2, 1, 2, 0, 1.0, 0.5)
    assert (month["previous"]["from"], month["previous"]["to"]) == (
        "2026-10-01T00:00:00+08:00", "2026-10-25T12:00:00+08:00")
    assert month["change"]["registered"] == 9 and month["change_ratio"]["registered"] == 4.5
    assert month["change"]["closure_rate"] == -0.1429
    assert month["change"]["on_time_rate"] == 0.2143


async def test_a_leader_gets_the_figures_of_their_own_area(kpi) -> None:
    body = _get(kpi, "l-012", "/api/v1/indicators/headline")
    assert body["scope"]["level"] == "micro_grid" and body["scope"]["key"] == "mg-012"
    assert figures(body["today"]) == (1, 0, 0, 0, 0, 0, None, None)
    assert body["now"] == {"open": 1, "overdue": 0}
    assert body["trends"]["week"]["change"]["closure_rate"] is None
    grid = _get(kpi, "l-g01", "/api/v1/indicators/headline")
    assert grid["scope"]["key"] == "g-01" and grid["now"] == {"open": 4, "overdue": 1}
    assert kpi.client("w-0111").get("/api/v1/indicators/headline").status_code == 403
    assert kpi.client("w-0111").get("/api/v1/indicators/hotspots").status_code == 403


async def test_hotspots_count_cases_per_place_with_coordinates(kpi) -> None:
    body = _get(kpi, "op-01", "/api/v1/indicators/hotspots", period="month", date="2026-11-25")
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00+08:00",
                                          "2026-12-01T00:00:00+08:00")
    # November, voided V1 left out: 8 reports at mg-011's point, O2 at mg-012, O3 at a camera.
    assert body["cases"] == 10
    got = {(p["kind"], p["micro_grid_id"]): (p["cases"], p["open"]) for p in body["places"]}
    assert got == {("report", "mg-011"): (8, 2), ("report", "mg-012"): (1, 1),
                   ("camera", "mg-011"): (1, 1)}
    first = body["places"][0]
    assert first["kind"] == "report" and first["lon"] == pytest.approx(MG011[0], abs=6e-4)
    assert first["lat"] == pytest.approx(MG011[1], abs=6e-4)
    camera = next(p for p in body["places"] if p["kind"] == "camera")
    assert (camera["key"], camera["lon"], camera["lat"]) == ("cam-vn-01", 120.152, 30.2715)
    areas = {a["id"]: (a["cases"], a["open"]) for a in body["micro_grids"]}
    assert areas == {"mg-011": (9, 3), "mg-012": (1, 1)}
    assert all(a["lon"] is not None and a["grid_id"] == "g-01" for a in body["micro_grids"])
    # October: P1, P2, P3.
    october = _get(kpi, "op-01", "/api/v1/indicators/hotspots", period="month",
                   date="2026-10-01")
    assert october["cases"] == 3
    mine = _get(kpi, "l-012", "/api/v1/indicators/hotspots", period="month", date="2026-11-25")
    assert mine["cases"] == 1 and [p["micro_grid_id"] for p in mine["places"]] == ["mg-012"]
