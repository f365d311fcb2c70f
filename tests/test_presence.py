"""Worker presence through the real center and PostgreSQL: positions are stored only while
their worker is on duty and only from that worker, thinned per person, seen by whom the roles
allow, pushed to the wall, kept by retention; and the routing suggestion when the A post is
off duty (docs/presence.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from center.domain.geo import haversine_m
from center.store import presence as store
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until

P = "/api/v1/presence"
#: Near camera cam-vn-01 (micro-grid mg-011) and somewhere in mg-021.
NEAR_VN = {"lon": 120.1522, "lat": 30.2716, "accuracy_m": 8}


@pytest.fixture
def center_settings() -> dict[str, Any]:
    return {"presence": {"min_interval_s": 1.0}}


def _duty(center: RunningCenter, person: str, on: bool) -> dict[str, Any]:
    r = center.client(person).post(P + "/duty", json={"on_duty": on})
    assert r.status_code == 200, r.text
    return r.json()


def _stored(dsn: str, person: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM worker_positions WHERE person_id = %s",
                           (person,)).fetchone()
        return int(row[0]) if row else 0


def _receive(ws: Any, type_: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if msg["type"] == type_:
            return msg


def test_off_duty_positions_are_refused_and_never_stored(center: RunningCenter,
                                                         db_dsn: str) -> None:
    phone = center.client("w-0111")
    assert phone.get(P + "/duty").json()["on_duty"] is False
    r = phone.post(P + "/positions", json=NEAR_VN)
    assert r.status_code == 409 and "off duty" in r.json()["detail"]
    assert _stored(db_dsn, "w-0111") == 0
    on = _duty(center, "w-0111", True)
    assert on["on_duty"] is True and on["since"]
    assert phone.post(P + "/positions", json=NEAR_VN).status_code == 201
    off = _duty(center, "w-0111", False)
    assert off["on_duty"] is False and off["since"] >= on["since"]
    # Duty is checked before thinning (services/presence.py report), so the 409 says off duty.
    r = phone.post(P + "/positions", json={**NEAR_VN, "lon": 120.1530})
    assert r.status_code == 409
    assert _stored(db_dsn, "w-0111") == 1
    # Off duty, the worker is not on anyone's map.
    assert center.client("op-01").get(P + "/positions").json() == []


def test_a_phone_sending_ten_a_second_is_thinned(center: RunningCenter, db_dsn: str) -> None:
    _duty(center, "w-0111", True)
    phone = center.client("w-0111")
    outcomes = []
    start = time.monotonic()
    for i in range(25):  # 10 a second for 2.5 s
        r = phone.post(P + "/positions", json={**NEAR_VN, "lon": 120.1522 + i * 1e-5})
        assert r.status_code in (200, 201), r.text
        outcomes.append(r.json()["outcome"])
        time.sleep(max(0.0, start + (i + 1) * 0.1 - time.monotonic()))
    elapsed = time.monotonic() - start
    stored = _stored(db_dsn, "w-0111")
    # One per second at most (min_interval_s = 1), and the first one is always kept.
    assert outcomes[0] == "stored" and outcomes.count("stored") == stored
    assert 1 <= stored <= int(elapsed) + 1, (stored, elapsed)
    assert outcomes.count("thinned") >= 25 - stored


def test_only_a_worker_sends_and_only_their_own(center: RunningCenter, db_dsn: str) -> None:
    _duty(center, "w-0111", True)
    _duty(center, "w-0112", True)
    r = center.client("w-0111").post(P + "/positions", json={**NEAR_VN, "person_id": "w-0112"})
    assert r.status_code == 403 and "only their own" in r.json()["detail"]
    r = center.client("w-0111").post(P + "/duty", json={"on_duty": False, "person_id": "w-0112"})
    assert r.status_code == 403
    for person in ("l-011", "op-01"):
        assert center.client(person).post(P + "/positions", json=NEAR_VN).status_code == 403
        assert center.client(person).post(P + "/duty", json={"on_duty": True}).status_code == 403
    assert _stored(db_dsn, "w-0112") == 0
    assert center.client("w-0112").get(P + "/duty").json()["on_duty"] is True
    for bad in ({"lon": 200, "lat": 30}, {"lon": 120}, {"lon": 120, "lat": 30, "x": 1},
                {"lon": 120, "lat": 30, "accuracy_m": -1}):
        assert center.client("w-0111").post(P + "/positions", json=bad).status_code == 422


def test_leaders_see_their_area_operators_everyone(center: RunningCenter) -> None:
    for person, pos in (("w-0111", NEAR_VN), ("w-0121", {"lon": 120.158, "lat": 30.272}),
                        ("w-0211", {"lon": 120.165, "lat": 30.268})):
        _duty(center, person, True)
        assert center.client(person).post(P + "/positions", json=pos).status_code == 201

    def seen(person: str) -> set[str]:
        r = center.client(person).get(P + "/positions")
        assert r.status_code == 200, r.text
        return {p["person_id"] for p in r.json()}

    assert seen("op-01") == seen("admin-01") == {"w-0111", "w-0121", "w-0211"}
    assert seen("l-011") == {"w-0111"}
    assert seen("l-g01") == {"w-0111", "w-0121"}  # grid g-01: mg-011 and mg-012
    assert seen("l-021") == {"w-0211"}
    assert seen("w-0111") == {"w-0111"}
    for person in ("eng-01", "d-urban-01"):
        assert center.client(person).get(P + "/positions").status_code == 403
    one = next(p for p in center.client("op-01").get(P + "/positions").json()
               if p["person_id"] == "w-0111")
    assert one["name"] and one["role"] == "worker" and one["post"] == "A"
    assert one["micro_grid_id"] == "mg-011" and one["stale"] is False
    # Today's track: the leader of the area and the worker themself, nobody else.
    assert len(center.client("l-011").get(P + "/tracks/w-0111/today").json()["points"]) == 1
    assert center.client("w-0111").get(P + "/tracks/w-0111/today").status_code == 200
    for person in ("l-021", "w-0112", "eng-01"):
        assert center.client(person).get(P + "/tracks/w-0111/today").status_code == 403


def test_a_position_reaches_the_wall_and_the_area_leader_within_2s(
        center: RunningCenter) -> None:
    _duty(center, "w-0111", True)
    with center.ws("op-01") as wall, center.ws("l-011") as leader, center.ws("l-021") as other:
        for ws in (wall, leader, other):
            _receive(ws, "hello", 5)
        sent = time.monotonic()
        assert center.client("w-0111").post(P + "/positions", json=NEAR_VN).status_code == 201
        for ws in (wall, leader):
            msg = _receive(ws, "position", 2)
            assert msg["data"]["person_id"] == "w-0111" and msg["data"]["lon"] == 120.1522
        assert time.monotonic() - sent < 2
        _duty(center, "w-0111", False)
        assert _receive(wall, "duty", 2)["data"]["on_duty"] is False
        # Another micro-grid's leader got neither: the next thing on their socket is their
        # own worker's check-in.
        _duty(center, "w-0211", True)
        msg = json.loads(other.recv(timeout=2))
        assert (msg["type"], msg["data"]["person_id"]) == ("duty", "w-0211")


def test_an_engineers_wall_gets_no_positions(center: RunningCenter) -> None:
    """Engineers' screens are walls (they see every alert) but not where workers are
    (docs/presence.md): their socket skips position and duty events."""
    with center.ws("eng-01") as engineer:
        _receive(engineer, "hello", 5)
        _duty(center, "w-0111", True)
        assert center.client("w-0111").post(P + "/positions", json=NEAR_VN).status_code == 201
        # The next thing an engineer's wall hears is an emergency switch, not the worker.
        assert center.client("op-01").put("/api/v1/emergency", json={
            "scope": "district", "active": True}).status_code == 200
        msg = json.loads(engineer.recv(timeout=5))
        assert msg["type"] == "emergency", msg


def test_the_suggestion_names_the_nearest_on_duty_worker_when_the_a_post_is_off(
        center: RunningCenter, mqtt_broker: Any) -> None:
    pub = Publisher(mqtt_broker.port)
    pub.alert(make_alert())  # cam-vn-01, micro-grid mg-011, A post w-0111
    pub.close()

    def dispatched() -> dict[str, Any] | None:
        return next((t for t in center.client("op-01").get("/api/v1/tickets?open=true").json()
                     if t["camera_id"] == "cam-vn-01"), None)

    ticket = wait_until(dispatched, what="the case dispatched")
    url = f"{P}/suggestion?ticket_id={ticket['id']}"
    r = center.client("l-011").get(url)
    assert r.status_code == 200, r.text
    assert r.json()["a_post_status"] == "off_duty" and r.json()["suggested"] is None
    _duty(center, "w-0112", True)
    center.client("w-0112").post(P + "/positions", json=NEAR_VN)
    got = center.client("op-01").get(url).json()
    assert got["suggested"]["person_id"] == "w-0112" and got["suggested"]["distance_m"] < 100
    # The A post on duty, free and near: keep them.
    _duty(center, "w-0111", True)
    center.client("w-0111").post(P + "/positions", json=NEAR_VN)
    assert center.client("l-011").get(url).json()["a_post_status"] == "available"
    for person in ("l-021", "w-0111", "eng-01"):
        assert center.client(person).get(url).status_code == 403
    assert center.client("op-01").get(f"{P}/suggestion?ticket_id=999999").status_code == 404


async def test_retention_drops_old_positions(db_dsn: str) -> None:
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await store.ensure_partitions(conn)
        for days in (40, 0):
            await store.check_in(conn, "w-0121", now - timedelta(days=days))
            assert await store.store_position(conn, store.Position(
                "w-0121", now - timedelta(days=days), 120.15, 30.27, 5.0), timedelta(seconds=1))
            await store.check_out(conn, "w-0121", now - timedelta(days=days))
        await store.sweep(conn, now, 30)
        kept = await store.track(conn, "w-0121", now - timedelta(days=60), now + timedelta(1))
        assert [p.at for p in kept] == [now - timedelta(days=0)]


async def test_patrol_distance_leaves_out_jumps_and_poor_fixes(db_dsn: str) -> None:
    t0 = datetime(2026, 12, 7, 2, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    step = haversine_m(120.15, 30.27, 120.151, 30.27)
    assert 95 < step < 97  # 0.001 degree of longitude at 30 degrees north
    fixes = [(0, 120.150, 5.0), (60, 120.151, 5.0), (120, 120.152, 5.0),  # a walk
             (125, 120.200, 5.0), (130, 120.152, 5.0),  # a jump 4.6 km away and back
             (135, 120.160, 500.0),  # a poor fix
             (180, 120.153, None)]  # no accuracy given: counted
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await store.check_in(conn, "w-0122", t0)
        for s, lon, acc in fixes:
            await store.store_position(conn, store.Position(
                "w-0122", t0 + timedelta(seconds=s), lon, 30.27, acc), timedelta(seconds=1))
        await store.check_out(conn, "w-0122", t0 + timedelta(minutes=90))
        [day] = await store.patrol_per_day(conn, t0 - timedelta(hours=2), t0 + timedelta(hours=2),
                                           "Asia/Shanghai", max_accuracy_m=50, max_speed_mps=15,
                                           person_ids=["w-0122"])
    assert day.day.isoformat() == "2026-12-07" and day.fixes == 6
    assert day.metres == pytest.approx(3 * step, rel=1e-3)


def test_presence_indicators_per_day_and_worker(center: RunningCenter) -> None:
    _duty(center, "w-0111", True)
    center.client("w-0111").post(P + "/positions", json=NEAR_VN)
    _duty(center, "w-0111", False)
    url = "/api/v1/indicators/presence?period=day"
    rows = center.client("op-01").get(url).json()["rows"]
    [mine] = [r for r in rows if r["person_id"] == "w-0111"]
    assert mine["fixes"] == 1 and mine["patrol_km"] == 0 and mine["on_duty_min"] >= 0
    assert mine["name"] and mine["micro_grid_id"] == "mg-011"
    assert [r["person_id"] for r in center.client("l-011").get(url).json()["rows"]] == ["w-0111"]
    assert center.client("l-021").get(url).json()["rows"] == []
    assert center.client("eng-01").get(url).status_code == 403
    csv_text = center.client("op-01").get(url + "&format=csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == (
        "day,person_id,name,micro_grid_id,on_duty_min,patrol_km,fixes")


async def test_patrol_bots_walk_their_micro_grid_on_duty_and_check_out(
        center: RunningCenter, db_dsn: str) -> None:
    from simulators.patrols import run_patrols
    from simulators.workers import PasswordBook
    from tests.conftest import password_for

    sent = await run_patrols(center.url, ["w-0121", "w-0211"], PasswordBook(password_for),
                             every_s=1.0, duration=3.5)
    assert sent["w-0121"] >= 2 and sent["w-0211"] >= 2, sent
    assert _stored(db_dsn, "w-0121") == sent["w-0121"]
    for person in ("w-0121", "w-0211"):
        assert center.client(person).get(P + "/duty").json()["on_duty"] is False
    track = center.client("op-01").get(P + "/tracks/w-0121/today").json()
    assert 0 < track["patrol_km"] < 0.05  # a few seconds at walking pace
