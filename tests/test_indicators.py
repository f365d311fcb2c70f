"""Indicators on a fixed scenario, every figure checked against values worked out by hand.

The scenario (all times Shanghai, Monday 2026-11-23; the clock is a ManualClock shared with the
running center; limits from the default time_limits.yaml, round the clock: 0506 must close
within 120 min, 0504 within 240 min; dispatch to the A post is automatic at registration):

  ticket  type  micro-grid (grid)  owner   registered  due    what happens
  A       0506  mg-011 (g-01)      w-0111  10:00       12:00  accept 10:05, resolve 10:30,
                                                              verify 10:40, rated 5 at 10:45
  B       0506  mg-011 (g-01)      w-0111  10:10       12:10  accept 10:20, resolve 11:00,
                                                              REWORK 11:10, accept 11:15,
                                                              resolve 11:30, verify 11:40,
                                                              rated 3 at 11:50
  C       0504  mg-012 (g-01)      w-0121  10:00       14:00  accept 10:30, resolve 15:00,
                                                              verify 15:10 (LATE), not rated
  D       0504  mg-021 (g-02)      w-0211  11:00       15:00  accept 11:10, resolve 12:00,
                                                              verify 12:30, rated 4 at 13:00
  E       0506  mg-021 (g-02)      w-0211  12:00       14:00  never accepted (overdue, open)
  F       0506  mg-012 (g-01)      w-0121  12:30       14:30  VOIDED 12:40
  H       0506  outside every grid  -      13:00       15:00  operator dispatches to w-0211
                                                              at 13:20, VOIDED 13:30
  G       0504  mg-021 (g-02)      w-0211  16:00       20:00  just dispatched
  The indicators are read at 17:00 ("now").

Per ticket: completion (= verification) time, settle time (completion if on time, else the
deadline), minutes from registration to first dispatch / first accept / completion:
  A done 10:40 on time, settles 10:40; dispatch 0, accept 5,  close 40;  1 resolve
  B done 11:40 on time, settles 11:40; dispatch 0, accept 10, close 90;  2 resolves, 1 rework
  C done 15:10 late,    settles 14:00; dispatch 0, accept 30, close 310; 1 resolve
  D done 12:30 on time, settles 12:30; dispatch 0, accept 10, close 90;  1 resolve
  E not done,           settles 14:00 (<= 17:00, so due); dispatch 0
  F, H voided: never due; F dispatch 0, H dispatch 20 (13:00 -> 13:20)
  G not done, deadline 20:00 is after "now": not due yet; dispatch 0
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from center.domain.context import Context
from center.platform.clock import ManualClock
from center.services import tickets as service
from center.services.indicators import IndicatorRow, rank_grids

SH = ZoneInfo("Asia/Shanghai")
MG011, MG012, MG021, OUTSIDE = (120.152, 30.2715), (120.156, 30.2715), (120.160, 30.2715), \
    (120.10, 30.20)


def at(hh: int, mm: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


@pytest.fixture
def center_clock() -> ManualClock:
    return ManualClock(at(10, 0))


# Field order: registered, due, closed, on_time, closure_rate, on_time_rate, closed_in_period,
# voided, handled, rework, rework_rate, dispatch_min, accept_min, close_min, rated, satisfaction
FIELDS = ("registered", "due", "closed", "on_time", "closure_rate", "on_time_rate",
          "closed_in_period", "voided", "handled", "rework", "rework_rate", "dispatch_min",
          "accept_min", "close_min", "rated", "satisfaction")

# District: registered A..H = 8; due A,B,C,D,E = 5; closed A,B,C,D = 4; on time A,B,D = 3
# -> 4/5 = 0.8, 3/5 = 0.6; completed today 4; voided F,H = 2; resolves 1+2+1+1 = 5, rework 1
# -> 1/5 = 0.2; dispatch (7 x 0 + 20)/8 = 2.5; accept (5+10+30+10)/4 = 13.75 -> 13.8;
# close (40+90+310+90)/4 = 132.5; ratings 5,3,4 -> 12/3 = 4.0
DISTRICT = (8, 5, 4, 3, 0.8, 0.6, 4, 2, 5, 1, 0.2, 2.5, 13.8, 132.5, 3, 4.0)
# mg-011 = A,B: due 2 closed 2 on time 2; resolves 3, rework 1 -> 0.3333; accept (5+10)/2;
# close (40+90)/2 = 65; ratings 5,3 -> 4.0
MG_011 = (2, 2, 2, 2, 1.0, 1.0, 2, 0, 3, 1, 0.3333, 0.0, 7.5, 65.0, 2, 4.0)
# mg-012 = C,F: F voided; C due, closed late -> 1/1, 0/1; accept 30, close 310; no rating
MG_012 = (2, 1, 1, 0, 1.0, 0.0, 1, 1, 1, 0, 0.0, 0.0, 30.0, 310.0, 0, None)
# mg-021 = g-02 = D,E,G: due D,E; closed D (on time) -> 1/2, 1/2; G not due yet
MG_021 = (3, 2, 1, 1, 0.5, 0.5, 1, 0, 1, 0, 0.0, 0.0, 10.0, 90.0, 1, 4.0)
# No grid = H only: registered and voided, dispatched after 20 min, nothing due
NO_AREA = (1, 0, 0, 0, None, None, 0, 1, 0, 0, None, 20.0, None, None, 0, None)
# g-01 = A,B,C,F: due A,B,C; closed 3, on time A,B -> 1.0, 2/3 = 0.6667; resolves 4, rework 1
# -> 0.25; accept (5+10+30)/3 = 15; close (40+90+310)/3 = 146.67 -> 146.7; ratings 5,3
G_01 = (4, 3, 3, 2, 1.0, 0.6667, 3, 1, 4, 1, 0.25, 0.0, 15.0, 146.7, 2, 4.0)
# 0506 = A,B,E,F,H: due A,B,E; closed A,B (on time) -> 2/3; resolves 3, rework 1 -> 1/3;
# dispatch (0+0+0+0+20)/5 = 4; accept (5+10)/2; close (40+90)/2; ratings 5,3
T_0506 = (5, 3, 2, 2, 0.6667, 0.6667, 2, 2, 3, 1, 0.3333, 4.0, 7.5, 65.0, 2, 4.0)
# 0504 = C,D,G: due C,D; closed both, on time D -> 1.0, 0.5; accept (30+10)/2 = 20;
# close (310+90)/2 = 200; rating 4
T_0504 = (3, 2, 2, 1, 1.0, 0.5, 2, 0, 2, 0, 0.0, 0.0, 20.0, 200.0, 1, 4.0)
# w-0211 = D,E,G,H: due D,E, closed D -> 0.5, 0.5; H voided; dispatch (0+0+0+20)/4 = 5
W_0211 = (4, 2, 1, 1, 0.5, 0.5, 1, 1, 1, 0, 0.0, 5.0, 10.0, 90.0, 1, 4.0)

EXPECTED: dict[str, dict[str | None, tuple[Any, ...]]] = {
    "district": {"demo": DISTRICT},
    "grid": {"g-01": G_01, "g-02": MG_021, None: NO_AREA},
    "micro_grid": {"mg-011": MG_011, "mg-012": MG_012, "mg-021": MG_021, None: NO_AREA},
    "event_type": {"0504": T_0504, "0506": T_0506},
    # d-urban handles 0506 (among others), d-market handles 0504
    "department": {"d-market": T_0504, "d-urban": T_0506},
    "worker": {"w-0111": MG_011, "w-0121": MG_012, "w-0211": W_0211},
}


async def build_scenario(pool: AsyncConnectionPool, ctx: Context) -> dict[str, int]:
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    ids: dict[str, int] = {}

    async def reg(when: datetime, name: str, code: str, where: tuple[float, float]) -> None:
        clock.set(when)
        async with pool.connection() as conn, conn.transaction():
            change = await service.intake(conn, ctx, source="patrol", event_type=code,
                                          lon=where[0], lat=where[1], description=name,
                                          reporter=None, actor_id="w-0111")
        ids[name] = change.ticket.id

    async def act(when: datetime, name: str, action: str, actor: str, **kw: Any) -> None:
        clock.set(when)
        async with pool.connection() as conn, conn.transaction():
            await service.apply(conn, ctx, ids[name], action, actor_id=actor,
                                role=ctx.role_of(actor) or actor, **kw)

    await reg(at(10, 0), "A", "0506", MG011)
    await reg(at(10, 0), "C", "0504", MG012)
    await act(at(10, 5), "A", "accept", "w-0111")
    await reg(at(10, 10), "B", "0506", MG011)
    await act(at(10, 20), "B", "accept", "w-0111")
    await act(at(10, 30), "A", "resolve", "w-0111")
    await act(at(10, 30), "C", "accept", "w-0121")
    await act(at(10, 40), "A", "verify", "l-011")
    await act(at(10, 45), "A", "rate", "public", satisfaction=5)
    await act(at(11, 0), "B", "resolve", "w-0111")
    await reg(at(11, 0), "D", "0504", MG021)
    await act(at(11, 10), "B", "rework", "l-011")
    await act(at(11, 10), "D", "accept", "w-0211")
    await act(at(11, 15), "B", "accept", "w-0111")
    await act(at(11, 30), "B", "resolve", "w-0111")
    await act(at(11, 40), "B", "verify", "l-011")
    await act(at(11, 50), "B", "rate", "public", satisfaction=3)
    await act(at(12, 0), "D", "resolve", "w-0211")
    await reg(at(12, 0), "E", "0506", MG021)
    await act(at(12, 30), "D", "verify", "l-021")
    await reg(at(12, 30), "F", "0506", MG012)
    await act(at(12, 40), "F", "void", "op-01", note="false alarm")
    await act(at(13, 0), "D", "rate", "public", satisfaction=4)
    await reg(at(13, 0), "H", "0506", OUTSIDE)
    await act(at(13, 20), "H", "dispatch", "op-01", assignee_id="w-0211")
    await act(at(13, 30), "H", "void", "op-01", note="not in our district")
    await act(at(15, 0), "C", "resolve", "w-0121")
    await act(at(15, 10), "C", "verify", "l-012")
    await reg(at(16, 0), "G", "0504", MG021)
    clock.set(at(17, 0))
    return ids


@pytest.fixture
async def scenario(center) -> Any:
    ctx: Context = center.app.state.center.ctx
    pool = AsyncConnectionPool(center.settings.db.dsn, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    try:
        ids = await build_scenario(pool, ctx)
    finally:
        await pool.close()
    return center, ctx, ids


def _get(center: Any, path: str, **params: Any) -> httpx.Response:
    return center.client("op-01").get(path, params=params, timeout=10)


def _metrics(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[f] for f in FIELDS)


async def test_every_indicator_at_every_level_matches_the_hand_computation(scenario) -> None:
    center, ctx, _ids = scenario
    for level, expected in EXPECTED.items():
        r = _get(center, "/api/v1/indicators", level=level, period="day", date="2026-11-23")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["from"] == "2026-11-23T00:00:00+08:00"
        assert body["to"] == "2026-11-24T00:00:00+08:00"
        got = {row["key"]: _metrics(row) for row in body["rows"]}
        assert got == expected, level
        for row in body["rows"]:
            assert row["period_start"] == "2026-11-23T00:00:00+08:00"
            assert row["period_end"] == "2026-11-24T00:00:00+08:00"
    names = {row["key"]: row["name"] for row in _get(
        center, "/api/v1/indicators", level="grid", period="day", date="2026-11-23",
    ).json()["rows"]}
    assert names["g-01"] == "东街社区 East Street Community" and names[None] is None

    # The same day, seen from the week, month and quarter holding it.
    for period, start, end in (("week", "2026-11-23", "2026-11-30"),
                               ("month", "2026-11-01", "2026-12-01"),
                               ("quarter", "2026-10-01", "2027-01-01")):
        body = _get(center, "/api/v1/indicators", period=period, date="2026-11-25").json()
        assert (body["from"], body["to"]) == (start + "T00:00:00+08:00", end + "T00:00:00+08:00")
        assert [_metrics(r) for r in body["rows"]] == [DISTRICT]
    # Default: the current month (the clock says 2026-11-23).
    assert _get(center, "/api/v1/indicators").json()["from"] == "2026-11-01T00:00:00+08:00"

    # A series: day buckets from Sunday to Wednesday; only Monday has activity.
    body = _get(center, "/api/v1/indicators", period="day", **{
        "from": "2026-11-22", "to": "2026-11-26"}).json()
    assert [(r["period_start"], r["period_end"]) for r in body["rows"]] == [
        ("2026-11-23T00:00:00+08:00", "2026-11-24T00:00:00+08:00")]

    # "As of now": after 20:00 G's deadline has passed too, so it becomes due (and is open):
    # due 6, closed 4, on time 3 -> 4/6 = 0.6667, 3/6 = 0.5.
    ctx.clock.set(at(1, 0, day=24))
    [row] = _get(center, "/api/v1/indicators", period="day", date="2026-11-23").json()["rows"]
    assert (row["due"], row["closed"], row["on_time"]) == (6, 4, 3)
    assert (row["closure_rate"], row["on_time_rate"]) == (0.6667, 0.5)


async def test_csv_export_is_the_json_for_excel(scenario) -> None:
    center, _, _ = scenario
    params = {"level": "micro_grid", "period": "day", "date": "2026-11-23"}
    rows = _get(center, "/api/v1/indicators", **params).json()["rows"]
    r = _get(center, "/api/v1/indicators", format="csv", **params)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        'attachment; filename="indicators_micro_grid_2026-11-23_2026-11-23.csv"')
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    parsed = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(parsed) == len(rows) == 4
    for row, line in zip(rows, parsed, strict=True):
        assert list(line) == list(row)
        assert line == {k: "" if v is None else str(v) for k, v in row.items()}
    assert parsed[0]["name"] == "东街社区第1微网格 Micro-grid 1.1"


async def test_grid_ranking(scenario) -> None:
    center, _, _ = scenario
    body = _get(center, "/api/v1/rankings/grids", period="day", date="2026-11-23").json()
    # g-01 closed 3/3, g-02 closed 1/2.
    assert [(g["rank"], g["key"], g["closure_rate"]) for g in body["grids"]] == [
        (1, "g-01", 1.0), (2, "g-02", 0.5)]
    # 10:00-13:00: settled in the window are A, B (g-01) and D (g-02), all on time: rates tie
    # at 1.0 / 1.0 and the volume (due 2 against 1) puts g-01 first.
    body = _get(center, "/api/v1/rankings/grids",
                **{"from": "2026-11-23T10:00", "to": "2026-11-23T13:00"}).json()
    assert [(g["rank"], g["key"], g["due"], g["closure_rate"], g["on_time_rate"])
            for g in body["grids"]] == [(1, "g-01", 2, 1.0, 1.0), (2, "g-02", 1, 1.0, 1.0)]
    # A day with nothing: every grid is listed, all sharing the last rank.
    body = _get(center, "/api/v1/rankings/grids", period="day", date="2026-11-20").json()
    assert [(g["rank"], g["key"], g["due"]) for g in body["grids"]] == [
        (1, "g-01", 0), (1, "g-02", 0)]
    r = _get(center, "/api/v1/rankings/grids", format="csv", period="week", date="2026-11-23")
    parsed = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(p["rank"], p["key"]) for p in parsed] == [("1", "g-01"), ("2", "g-02")]


def _row(key: str, closure: float | None, on_time: float | None, due: int) -> IndicatorRow:
    t = datetime(2026, 1, 1, tzinfo=SH)
    return IndicatorRow(t, t, "grid", key, key, due, due, 0, 0, closure, on_time, 0, 0, 0, 0,
                        None, None, None, None, 0, None)


def test_ranking_rule_closure_then_on_time_then_volume() -> None:
    ranked = rank_grids([
        _row("g-w", None, None, 0),      # nothing due: last
        _row("g-x", 1.0, 0.5, 9),        # same closure, lower on-time rate
        _row("g-z", 1.0, 0.75, 2),       # ties with g-y on all three: shared rank, by id
        _row("g-y", 1.0, 0.75, 2),
        _row("g-v", 1.0, 0.75, 5),       # same rates as g-y/g-z, more volume
        _row("g-u", 0.9, 0.9, 50),       # lower closure rate loses whatever else
    ])
    assert [(g.rank, g.row.key) for g in ranked] == [
        (1, "g-v"), (2, "g-y"), (2, "g-z"), (4, "g-x"), (5, "g-u"), (6, "g-w")]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"level": "street"}, "level"),
    ({"period": "year"}, "period"),
    ({"format": "xml"}, "format"),
    ({"from": "2026-11-01"}, "give both `from` and `to`"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "`to` must be after `from`"),
    ({"from": "yesterday", "to": "2026-11-01"}, "`from`='yesterday' is not"),
    ({"date": "23/11/2026"}, "`date`='23/11/2026' is not a date"),
    ({"date": "2026-11-23", "from": "2026-11-01", "to": "2026-11-02"}, "`date` picks"),
    ({"period": "day", "from": "2020-01-01", "to": "2026-01-01"}, "too many day buckets"),
])
def test_bad_parameters_are_clear_422s(read_only_center: Any, params: dict[str, str],
                                       fragment: str) -> None:
    r = _get(read_only_center, "/api/v1/indicators", **params)
    assert r.status_code == 422
    assert fragment in r.text


@pytest.mark.parametrize("path", ["/api/v1/rankings/grids", "/api/v1/indicators/false-alarms"])
@pytest.mark.parametrize(("params", "fragment"), [
    ({"period": "year"}, "period"),
    ({"to": "2026-11-01"}, "give both `from` and `to`"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "`to` must be after `from`"),
    ({"date": "23/11/2026"}, "`date`='23/11/2026' is not a date"),
])
def test_every_windowed_route_answers_the_same_422s(read_only_center: Any, path: str,
                                                    params: dict[str, str], fragment: str) -> None:
    r = _get(read_only_center, path, **params)
    assert r.status_code == 422
    assert fragment in r.text


def test_windowed_routes_declare_the_same_window_parameters() -> None:
    """The indicators, the grid ranking and the false alarms take period/date/from/to from
    one dependency (``center.api.indicators.WindowQuery``): the same names, descriptions and
    schemas in the OpenAPI of each."""
    from fastapi import FastAPI

    from center.api.indicators import router

    app = FastAPI()
    app.include_router(router)
    paths = app.openapi()["paths"]

    def window(path: str) -> dict[str, Any]:
        return {p["name"]: p for p in paths[path]["get"]["parameters"]
                if p["name"] in ("period", "date", "from", "to")}

    assert sorted(window("/api/v1/indicators")) == ["date", "from", "period", "to"]
    for path in ("/api/v1/rankings/grids", "/api/v1/indicators/false-alarms"):
        assert window(path) == window("/api/v1/indicators")


def test_a_ranking_is_one_window(read_only_center: Any) -> None:
    r = _get(read_only_center, "/api/v1/rankings/grids", period="week",
             **{"from": "2026-11-01", "to": "2026-11-08"})
    assert r.status_code == 422 and "one window" in r.text


async def test_alerts_daily_counts_camera_alerts(center) -> None:
    from center.store import alerts as queries
    from tests.mqtt_helpers import make_alert

    alert = make_alert()
    async with await psycopg.AsyncConnection.connect(
            center.settings.db.dsn, autocommit=True) as conn:
        await queries.insert_alert(conn, alert)
        await queries.insert_alert(conn, make_alert("update", alert_id=alert.alert_id, seq=1))
    day = alert.last_seen_at.strftime("%Y-%m-%d")
    r = _get(center, "/api/v1/indicators/alerts-daily",
             **{"from": day + "T00:00:00Z", "to": day + "T23:59:59Z"})
    assert r.status_code == 200, r.text
    assert [(d["camera_id"], d["event_type"], d["alerts"], d["messages"]) for d in r.json()] == [
        ("cam-vn-01", "0506", 1, 2)]
