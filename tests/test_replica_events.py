"""The wall's live events other than tickets across center replicas (issue 16, docs/scaling.md
"Replicas"): the alert feed, camera status, worker presence, the emergency switch, verdicts
and clips that one replica took reach the wall connected to another, each alert message
exactly once, and the switch changes the other replica's own emergency scopes; a replica whose
listener lost its connection tells its walls to reload.

Two replicas (``gridwatch center run`` processes, tests/test_replicas.py's ``_Replica``) in
one share group on the session's Mosquitto and a real PostgreSQL; the broker's round robin
gives each some of the messages, and the test checks that it did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from center.domain.district import load_district
from center.services.auth import issue_token
from simulators.district_gen import generate
from simulators.local_services import Mosquitto
from tests import plain_http
from tests.conftest import shared
from tests.mqtt_helpers import Publisher, make_alert
from tests.test_clips_center import chunks, send
from tests.test_replicas import SECRET, WALL, _Replica, _unique, _Wall, walls_on
from tests.waiting import wait_until
from wire.protocol import CameraStatus, camera_status_topic

N_ALERTS = 60
#: A real H.264 MP4 (several chunks, so both replicas take some).
CLIP_BYTES = shared("media/vn_truccat_intersection_pavement_vendor_6s.mp4").read_bytes()


def _alert_keys(screen: _Wall) -> Counter[tuple[str, int]]:
    return Counter((a["alert_id"], a["seq"]) for a in screen.of("alert"))


@pytest.fixture
def district(tmp_path: Path) -> Path:
    return generate(tmp_path / "district", communities=2, micro_grids=4, cameras=20)


@pytest.fixture
def pair(db_dsn: str, mqtt_broker: Mosquitto, district: Path,
         tmp_path: Path) -> Iterator[tuple[_Replica, _Replica]]:
    """Replicas A and B of one share group, each with its own client id."""
    group = _unique("centers")
    a, b = (_Replica(_unique(f"center-{x}"), group, db_dsn, mqtt_broker.port, district,
                     tmp_path / f"{x}.log") for x in ("a", "b"))
    try:
        a.start()  # first: it imports the district
        b.start()
        yield a, b
    finally:
        a.forget()
        b.forget()


def test_each_wall_gets_every_alert_once_and_every_camera_state_whichever_replica_took_it(
        pair: tuple[_Replica, _Replica], district: Path, mqtt_broker: Mosquitto) -> None:
    a, b = pair
    screens = walls_on([a, b])
    cameras = sorted(load_district(district).cameras.values(), key=lambda c: c.id)
    alerts = [make_alert(camera_id=c.id, edge_id=str(c.edge_id), zone_id=z, snapshot=False)
              for c in cameras for z in ("z1", "z2", "z3")][:N_ALERTS]
    sent = {(str(x.alert_id), x.seq) for x in alerts}
    publisher = Publisher(mqtt_broker.port, client_id=_unique("edges"))
    for x in alerts:
        publisher.alert(x)
    now = datetime.now(UTC)
    for c in cameras:
        publisher.send(camera_status_topic(str(c.edge_id), c.id),
                       CameraStatus(edge_id=str(c.edge_id), camera_id=c.id, state="frozen",
                                    at=now, detail="no new frame").model_dump_json())
    publisher.close()

    for s in screens:
        wait_until(lambda s=s: set(_alert_keys(s)) >= sent, timeout=15,
                   what=f"every alert on {s.replica.name}'s wall")
        wait_until(lambda s=s: {c["id"] for c in s.of("camera_status")
                                if c["state"] == "frozen"} >= {c.id for c in cameras},
                   timeout=15, what=f"every camera frozen on {s.replica.name}'s wall")
    # Both replicas took some (the round robin), so each wall got some from the other.
    took = [r.health()["ingest"]["acked"] for r in (a, b)]
    assert all(n > 0 for n in took) and sum(took) == len(alerts) + len(cameras), took
    for s in screens:
        twice = [k for k, n in _alert_keys(s).items() if n > 1]
        assert not twice, f"{s.replica.name}'s wall got {len(twice)} alerts twice: {twice[:3]}"
        assert set(_alert_keys(s)) == sent
    relayed = [r.health()["replica"] for r in (a, b)]
    assert all(x["alerts_pushed"] > 0 and x["cameras_pushed"] > 0 for x in relayed), relayed
    assert sum(x["alerts_pushed"] for x in relayed) == len(alerts), relayed
    for s in screens:
        s.close()


def test_presence_and_the_emergency_switch_made_on_one_replica_reach_the_other(
        pair: tuple[_Replica, _Replica], district: Path, db_dsn: str) -> None:
    """Presence and the switch go through HTTP (a phone's and the operator's requests land on
    A, the wall is on B); then B's listener loses its connection and B's wall is told to
    reload (a ``summary``)."""
    a, b = pair
    (wall_b,) = walls_on([b])
    d = load_district(district)
    worker = next(p for p in sorted(d.people.values(), key=lambda p: p.id)
                  if p.role == "worker")
    cam = d.cameras[sorted(d.cameras)[0]]
    auth = {"Authorization": f"Bearer {issue_token(SECRET, worker.id, 3600)[0]}"}
    r = plain_http.post(f"{a.url}/api/v1/presence/duty", headers=auth, json={"on_duty": True},
                        timeout=10)
    assert r.status_code == 200, r.text
    r = plain_http.post(f"{a.url}/api/v1/presence/positions", headers=auth,
                        json={"lon": cam.lon, "lat": cam.lat, "accuracy_m": 8}, timeout=10)
    assert r.status_code == 201, r.text

    def on_b(type_: str) -> dict[str, Any] | None:
        return next((e for e in wall_b.of(type_) if e["person_id"] == worker.id), None)

    duty = wait_until(lambda: on_b("duty"), timeout=10, what="the check-in on B's wall")
    assert duty["on_duty"] is True
    fix = wait_until(lambda: on_b("position"), timeout=10, what="the position on B's wall")
    assert (fix["lon"], fix["lat"], fix["on_duty"]) == (cam.lon, cam.lat, True)
    assert b.health()["replica"]["presence_pushed"] >= 2

    operator = {"Authorization": f"Bearer {issue_token(SECRET, WALL, 3600)[0]}"}
    r = plain_http.put(f"{a.url}/api/v1/emergency", headers=operator, timeout=10,
                       json={"scope": "district", "active": True, "note": "flood",
                        "broadcast": "everyone to the river gates"})
    assert r.status_code == 200, r.text
    switched = wait_until(lambda: wall_b.of("emergency"), timeout=10,
                          what="the emergency switch on B's wall")
    assert switched[0]["scope"] == "district" and switched[0]["active"] is True
    told = wait_until(lambda: wall_b.of("broadcast"), timeout=10,
                      what="the broadcast on B's wall")
    assert told[0]["text"] == "everyone to the river gates" and told[0]["from"] == WALL
    # B's own cases follow the switch: its emergency scopes changed, not only its wall.
    r = plain_http.get(f"{b.url}/api/v1/emergency", headers=operator, timeout=10)
    assert r.json()["active"] == ["district"], r.text

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"gridwatch-replica-listener {b.name}",)).fetchall()
    assert killed == [(True,)], killed
    wait_until(lambda: wall_b.of("summary"), timeout=15,
               what="B's wall told to reload after its listener came back")
    wall_b.close()


def test_a_verdict_and_a_clip_stored_by_one_replica_reach_the_others_wall(
        pair: tuple[_Replica, _Replica], district: Path, mqtt_broker: Mosquitto) -> None:
    """The operator judges a three-alert case on A: B's wall gets the one ``verdict`` event
    naming all three alerts and the case's worker. A clip's chunks go round robin to both
    replicas (their clip folders are one: the same working directory), one of them stores it,
    and each wall gets its ``clip`` event once."""
    a, b = pair
    screens = walls_on([a, b])
    cam = load_district(district).cameras[sorted(load_district(district).cameras)[0]]
    alerts = [make_alert(camera_id=cam.id, edge_id=str(cam.edge_id), zone_id="z1",
                         snapshot=False) for _ in range(3)]
    publisher = Publisher(mqtt_broker.port, client_id=_unique("edges"))
    for x in alerts:
        publisher.alert(x)

    def case() -> dict[str, Any] | None:
        return next((t for t in screens[1].tickets.values()
                     if t["camera_id"] == cam.id and t["alert_count"] == 3), None)

    ticket = wait_until(case, timeout=15, what="the three-alert case on B's wall")
    operator = {"Authorization": f"Bearer {issue_token(SECRET, WALL, 3600)[0]}"}
    r = plain_http.post(f"{a.url}/api/v1/verdicts", headers=operator, timeout=10,
                        json={"ticket_id": ticket["id"], "verdict": "false_alarm",
                         "reason": "other", "note": "a delivery, not parked"})
    assert r.status_code == 201, r.text
    for s in screens:
        (judged,) = wait_until(lambda s=s: s.of("verdict"), timeout=10,
                               what=f"the verdict on {s.replica.name}'s wall")
        assert judged["ticket_id"] == ticket["id"] and judged["verdict"] == "false_alarm"
        assert set(judged["alert_ids"]) == {str(x.alert_id) for x in alerts}
        assert judged["assignee_id"] == ticket["assignee_id"] and judged["actor_id"] == WALL
    assert b.health()["replica"]["verdicts_pushed"] == 1

    docs = chunks(CLIP_BYTES, alerts[0].alert_id, edge=str(cam.edge_id), camera=cam.id)
    send(publisher, docs, camera=cam.id, edge=str(cam.edge_id))
    publisher.close()
    for s in screens:
        (clip,) = wait_until(lambda s=s: s.of("clip"), timeout=30,
                             what=f"the clip on {s.replica.name}'s wall")
        assert clip["alert_id"] == str(alerts[0].alert_id) and clip["size"] == len(CLIP_BYTES)
        assert clip["ticket_id"] == ticket["id"]
    took = [r.health()["ingest"]["acked"] for r in (a, b)]
    assert all(n > 0 for n in took), took
    assert sum(r.health()["replica"]["clips_pushed"] for r in (a, b)) == 1
    for s in screens:
        assert len(s.of("clip")) == 1, f"{s.replica.name}'s wall got the clip twice"
        s.close()
