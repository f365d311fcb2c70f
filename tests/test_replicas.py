"""Three center replicas on one Mosquitto and one PostgreSQL (issue 16, docs/scaling.md
"Replicas"): alerts shared by an MQTT shared subscription, ticket changes pushed across
replicas through LISTEN/NOTIFY, one replica killed with SIGKILL mid-storm.

Each replica is the real center as its own process (``gridwatch center run``), with its own
client id and the share group set. A wall (the duty operator's websocket) is connected to each.
A storm of alerts over 400 places (a generated district of 100 cameras), with some messages
sent twice as an edge's redeliveries would be, goes to the broker; a third of the way in one
replica is killed. Mosquitto keeps that replica's share in its persistent session -- what it
had received and not acknowledged, and what the group gave it while it was down -- so it is
started again under the same client id, as a supervisor would, and drains it. Then: every
alert stored once, one open ticket per place, and each surviving wall holds every ticket's
final state, whichever replica wrote it. Last, every ticket's accept deadline is made due and
the replicas' timers race for them: each fires once.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from center.domain.district import load_district
from center.services.auth import issue_token
from center.transport.mqtt_auth import gen_auth
from center.transport.push import auth_message
from simulators.district_gen import generate
from simulators.local_services import Mosquitto, free_port, stop_process
from tests import plain_http
from tests.mqtt_helpers import Publisher, Storm, forget_session, make_alert
from tests.waiting import wait_until
from wire.protocol import Alert, alert_topic

N_REPLICAS = 3
N_ALERTS = int(os.environ.get("GRIDWATCH_TEST_REPLICA_ALERTS", "3000"))
SECRET = secrets.token_urlsafe(48)
WALL = "op-01"  # the generated district's duty operator


class _Replica:
    """``python -m gridwatch.cli center run`` as replica ``name`` of share group ``group``.

    The broker is the session's: each test names its own group and client ids and drops
    their sessions at the end (``_forget``), since a stopped replica's persistent session
    stays a member of its group and would take its turn of a later test's messages."""

    def __init__(self, name: str, group: str, dsn: str, mqtt_port: int, district: Path,
                 log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.log, self.mqtt_port = name, log, mqtt_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRIDWATCH_DB__DSN": dsn,
                    "GRIDWATCH_MQTT__PORT": str(mqtt_port),
                    "GRIDWATCH_MQTT__CLIENT_ID": name,
                    "GRIDWATCH_MQTT__SHARE_GROUP": group,
                    "GRIDWATCH_HTTP__PORT": str(self.port),
                    "GRIDWATCH_DISTRICT": str(district),
                    "GRIDWATCH_SECRET_KEY": SECRET, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> _Replica:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridwatch.cli", "center", "run"], env=self.env,
                cwd=self.log.parent, stdout=out, stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=60,
                   what=f"replica {self.name} subscribed and listening to the others")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"replica {self.name} exited:\n{self.log.read_text()[-3000:]}")
        try:
            health = plain_http.get(self.url + "/healthz", timeout=2).json()
        except httpx.HTTPError:
            return False
        return bool(health["mqtt"] and health["replica"] and health["replica"]["listening"])

    def health(self) -> dict[str, Any]:
        return dict(plain_http.get(self.url + "/healthz", timeout=5).json())

    def kill(self) -> None:
        assert self.proc is not None
        stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout=15)

    def forget(self) -> None:
        """Stop, and drop its persistent session (a clean-session connect under its id)."""
        self.stop()
        forget_session(self.mqtt_port, self.name)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class _Wall(threading.Thread):
    """The duty operator's websocket on one replica: every event it is sent, in order, and the
    latest view of each ticket it was pushed, by ticket id, keeping the newest ``updated_at``
    as the wall does."""

    def __init__(self, replica: _Replica) -> None:
        super().__init__(daemon=True)
        self.replica = replica
        self.events: list[dict[str, Any]] = []
        self.tickets: dict[int, dict[str, Any]] = {}
        self.hello = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        url = self.replica.url.replace("http://", "ws://") + "/ws"
        try:
            with connect(url, open_timeout=5, max_size=None) as ws:
                ws.send(auth_message(issue_token(SECRET, WALL, 3600)[0]))
                while not self.stopping.is_set():
                    try:
                        message = json.loads(ws.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    self.events.append(message)
                    if message["type"] == "hello":
                        self.hello.set()
                    elif message["type"] == "ticket":
                        self._keep(message["data"])
        except ConnectionClosed as exc:
            if not self.stopping.is_set():
                self.error = exc
        except BaseException as exc:  # noqa: BLE001 - the test asserts there was none
            self.error = exc

    def _keep(self, data: dict[str, Any]) -> None:
        held = self.tickets.get(data["id"])
        if held is None or _at(data["updated_at"]) >= _at(held["updated_at"]):
            self.tickets[data["id"]] = data

    def of(self, type_: str) -> list[dict[str, Any]]:
        """The data of the events of one type, in order."""
        return [e["data"] for e in list(self.events) if e["type"] == type_]

    def close(self) -> None:
        self.stopping.set()
        self.join(5)
        assert self.error is None, self.error


def walls_on(replicas: list[_Replica]) -> list[_Wall]:
    """The duty operator's wall on each replica, connected and greeted."""
    walls = [_Wall(r) for r in replicas]
    for wall in walls:
        wall.start()
        assert wall.hello.wait(10), f"no hello from {wall.replica.name}"
    return walls


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _storm(district: Path, n: int, seed: int = 16) -> tuple[list[Alert], set[uuid.UUID]]:
    """``n`` new alerts over every place of the district (camera x zone x event type), and a
    twentieth of them again (an edge's redeliveries), shuffled."""
    rng = random.Random(seed)
    cameras = sorted(load_district(district).cameras.values(), key=lambda c: c.id)
    places = [(c, z, e) for c in cameras for z in ("z1", "z2") for e in ("0506", "0504")]
    alerts = [make_alert(camera_id=c.id, edge_id=str(c.edge_id), zone_id=z, event_type=e,
                         snapshot=False)
              for c, z, e in (rng.choice(places) for _ in range(n))]
    messages = alerts + rng.sample(alerts, n // 20)
    rng.shuffle(messages)
    return messages, {a.alert_id for a in alerts}


@pytest.fixture
def district(tmp_path: Path) -> Path:
    return generate(tmp_path / "district", communities=5, micro_grids=20, cameras=100)


@contextmanager
def started_replicas(n: int, name: str, dsn: str, mqtt_port: int, district: Path,
                     folder: Path, env: dict[str, str] | None = None
                     ) -> Iterator[list[_Replica]]:
    """``n`` replicas ``<name>-1``... in a share group of their own, started one by one (the
    first start imports the district); their sessions dropped at the end."""
    group = _unique(f"{name}s")
    started = [_Replica(_unique(f"{name}-{i + 1}"), group, dsn, mqtt_port, district,
                        folder / f"{name}-{i + 1}.log", env) for i in range(n)]
    try:
        for r in started:
            r.start()
        yield started
    finally:
        for r in started:
            r.forget()


@pytest.fixture
def replicas(db_dsn: str, mqtt_broker: Mosquitto, district: Path,
             tmp_path: Path) -> Iterator[list[_Replica]]:
    with started_replicas(N_REPLICAS, "center", db_dsn, mqtt_broker.port, district,
                          tmp_path) as started:
        yield started


def _stored(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def _tickets(dsn: str) -> dict[int, tuple[datetime, int, str]]:
    with psycopg.connect(dsn) as conn:
        return {tid: (at, n, state) for tid, at, n, state in conn.execute(
            "SELECT id, updated_at, alert_count, state FROM tickets")}


def _walls_current(walls: list[_Wall], dsn: str) -> list[str]:
    """What each wall lacks of the tickets' final states (empty: every wall is current)."""
    final = _tickets(dsn)
    behind = []
    for wall in walls:
        missing = [tid for tid, (at, n, state) in final.items()
                   if (seen := wall.tickets.get(tid)) is None
                   or (_at(seen["updated_at"]), seen["alert_count"], seen["state"]) != (at, n,
                                                                                       state)]
        if missing:
            behind.append(f"{wall.replica.name}: {len(missing)} of {len(final)} tickets "
                          f"not current (e.g. {missing[:5]})")
    return behind


def _assert_each_alert_once_one_ticket_per_place(dsn: str, distinct: set[uuid.UUID]) -> None:
    with psycopg.connect(dsn) as conn:
        stored = [r[0] for r in conn.execute("SELECT alert_id FROM alerts")]
        assert len(stored) == len(set(stored)), "an alert stored twice"
        assert set(stored) == distinct, (f"lost {len(distinct - set(stored))}, "
                                         f"unexpected {len(set(stored) - distinct)}")
        per_place = conn.execute(
            "SELECT camera_id, zone_id, event_type, count(*), count(*) FILTER (WHERE is_open)"
            " FROM tickets GROUP BY 1, 2, 3").fetchall()
        assert all(n == 1 and n_open == 1 for *_, n, n_open in per_place), [
            p for p in per_place if p[3:] != (1, 1)]
        assert conn.execute("SELECT sum(alert_count) FROM tickets").fetchone()[0] == len(stored)


def test_three_replicas_share_a_storm_survive_a_kill_and_push_to_every_wall(
        replicas: list[_Replica], district: Path, db_dsn: str, mqtt_broker: Mosquitto) -> None:
    walls = walls_on(replicas)
    messages, distinct = _storm(district, N_ALERTS)
    edges = Storm(mqtt_broker.port, messages)
    edges.start()
    victim, survivors = replicas[1], [replicas[0], replicas[2]]
    wait_until(lambda: _stored(db_dsn) >= len(distinct) // 3, timeout=60,
               what="a third of the storm stored")
    victim.kill()
    walls[1].stopping.set()
    assert edges.done.wait(120) and edges.error is None, edges.error
    # The group shared the storm: every replica took some of it before the kill.
    assert all(r.health()["ingest"]["acked"] > 0 for r in survivors)
    victim.start()  # same client id: it takes back its session and drains what it held
    wait_until(lambda: _stored(db_dsn) >= len(distinct), timeout=120,
               what=f"{len(distinct)} alerts stored")
    _assert_each_alert_once_one_ticket_per_place(db_dsn, distinct)
    assert victim.health()["ingest"]["acked"] > 0, "the restarted replica drained nothing"

    surviving_walls = [walls[0], walls[2]]
    try:
        wait_until(lambda: not _walls_current(surviving_walls, db_dsn), timeout=60,
                   what="every surviving wall holding every ticket's final state")
    except AssertionError:
        raise AssertionError(_walls_current(surviving_walls, db_dsn)) from None
    for r in survivors:
        relayed = r.health()["replica"]
        assert relayed["tickets_pushed"] > 0 and relayed["own"] > 0, relayed

    # Every accept deadline due at once: three schedulers race, each timer fires once.
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        due = conn.execute(
            "UPDATE ticket_timers SET due_at = now() - interval '1 second' WHERE kind = 'accept'"
            " AND fired_at IS NULL AND cancelled_at IS NULL RETURNING ticket_id").fetchall()
    assert due, "no accept timers to race for"

    def escalations() -> list[tuple[int, int]]:
        with psycopg.connect(db_dsn) as conn:
            return conn.execute(
                "SELECT ticket_id, count(*) FROM ticket_events WHERE action = 'escalate'"
                " AND ticket_id = ANY(%s) GROUP BY 1", ([t for (t,) in due],)).fetchall()

    wait_until(lambda: len(escalations()) == len(due), timeout=60,
               what=f"{len(due)} accept deadlines fired")
    assert all(n == 1 for _, n in escalations()), "a deadline fired twice"
    wait_until(lambda: not _walls_current(surviving_walls, db_dsn), timeout=60,
               what="every surviving wall holding every escalation")
    for wall in walls:
        wall.stopping.set()
        wall.join(5)
    assert all(w.error is None for w in surviving_walls), [w.error for w in surviving_walls]


def test_a_phone_on_one_replica_gets_the_notification_another_replica_wrote(
        db_dsn: str, mqtt_broker: Mosquitto, district: Path, tmp_path: Path) -> None:
    """An operator reassigns a case on replica A; the new assignee's phone is connected to
    replica B. B hears A's notification row, pushes it with its id, and the phone's read
    receipt, taken by B, marks A's row."""
    group = _unique("centers")
    a, b = (_Replica(_unique(f"center-{x}"), group, db_dsn, mqtt_broker.port, district,
                     tmp_path / f"{x}.log") for x in ("a", "b"))
    try:
        a.start()
        b.start()
        d = load_district(district)
        camera = sorted(d.cameras.values(), key=lambda c: c.id)[0]
        publisher = Publisher(mqtt_broker.port, client_id="replica-phone")
        publisher.alert(make_alert(camera_id=camera.id, edge_id=str(camera.edge_id),
                                   zone_id="z1", snapshot=False))
        publisher.close()

        def dispatched() -> tuple[int, str] | None:
            with psycopg.connect(db_dsn) as conn:
                row = conn.execute("SELECT id, assignee_id FROM tickets WHERE state ="
                                   " 'dispatched'").fetchone()
            return (row[0], row[1]) if row else None

        ticket_id, first = wait_until(dispatched, timeout=30, what="the case dispatched")
        other = next(p.id for p in sorted(d.people.values(), key=lambda p: p.id)
                     if p.role == "worker" and p.id != first)
        with connect(b.url.replace("http://", "ws://") + "/ws", open_timeout=5) as phone:
            phone.send(auth_message(issue_token(SECRET, other, 3600)[0]))
            assert json.loads(phone.recv(timeout=10))["type"] == "hello"
            r = plain_http.post(f"{a.url}/api/v1/tickets/{ticket_id}/actions",
                                headers={"Authorization":
                                    f"Bearer {issue_token(SECRET, WALL, 3600)[0]}"},
                                json={"action": "reassign", "assignee_id": other}, timeout=10)
            assert r.status_code == 200, r.text
            event = json.loads(phone.recv(timeout=15))
            assert event["type"] == "ticket" and event["data"]["id"] == ticket_id
            data = event["data"]
            assert data["assignee_id"] == other and data["reason"] == "reassigned"
            nid = data["notification_id"]
            assert data["notification_ids"] == [nid]
            phone.send(json.dumps({"type": "read", "notification_id": nid}))

            def read() -> bool:
                with psycopg.connect(db_dsn) as conn:
                    row = conn.execute("SELECT person_id, delivered_at, read_at FROM"
                                       " notifications WHERE id = %s", (nid,)).fetchone()
                return bool(row and row[0] == other and row[1] and row[2])

            wait_until(read, timeout=15, what=f"notification {nid} delivered and read")
        assert b.health()["replica"]["phone_pushes"] >= 1

        # More alerts at the case's place, shared between A and B: each is a touch (no
        # notification row); the phone on B gets B's own and, relayed, A's, up to the last.
        with connect(b.url.replace("http://", "ws://") + "/ws", open_timeout=5) as phone:
            phone.send(auth_message(issue_token(SECRET, other, 3600)[0]))
            assert json.loads(phone.recv(timeout=10))["type"] == "hello"
            publisher = Publisher(mqtt_broker.port, client_id="replica-phone-touches")
            for _ in range(20):
                publisher.alert(make_alert(camera_id=camera.id, edge_id=str(camera.edge_id),
                                           zone_id="z1", snapshot=False))
            publisher.close()
            counts: list[int] = []
            deadline = time.monotonic() + 30
            while not counts or counts[-1] < 21:
                assert time.monotonic() < deadline, f"the phone got counts {counts}"
                event = json.loads(phone.recv(timeout=deadline - time.monotonic()))
                if event["type"] == "ticket" and event["data"]["id"] == ticket_id:
                    counts.append(event["data"]["alert_count"])
        assert a.health()["ingest"]["acked"] >= 2, "A took none of the touches"
    finally:
        a.forget()
        b.forget()


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_replicas_with_broker_accounts_each_log_in_as_their_own_and_share_the_alerts(
        db_dsn: str, district: Path, tmp_path: Path) -> None:
    """``gridwatch mqtt gen-auth --center-replicas 2``: an account per replica (the broker
    binds client ids to accounts, so two replicas of one account would throw each other off),
    whose ``center-<i>.env`` names its client id and the share group, and an ACL under which
    ``$share/...`` subscriptions receive the edges' alerts. Both replicas stay logged in once
    each and store the edge's alerts between them."""
    d = load_district(district)
    cameras = sorted(d.cameras.values(), key=lambda c: c.id)[:20]
    edge_ids = sorted({str(c.edge_id) for c in d.cameras.values()})
    auth = gen_auth(edge_ids, tmp_path / "auth", center_replicas=2)
    envs = [_env_file(tmp_path / "auth" / "center.env"),
            _env_file(tmp_path / "auth" / "center-2.env")]
    assert [e["GRIDWATCH_MQTT__CLIENT_ID"] for e in envs] == ["gridwatch-center",
                                                             "gridwatch-center-2"]
    assert {e["GRIDWATCH_MQTT__SHARE_GROUP"] for e in envs} == {"gridwatch-center"}
    broker = Mosquitto(tmp_path / "mqtt-accounts", password_file=auth.password_file,
                       acl_file=auth.acl_file).start()
    started: list[_Replica] = []
    try:
        for i, env in enumerate(envs):
            env["GRIDWATCH_MQTT__PORT"] = str(broker.port)
            started.append(_Replica(env["GRIDWATCH_MQTT__CLIENT_ID"],
                                    env["GRIDWATCH_MQTT__SHARE_GROUP"], db_dsn, broker.port,
                                    district, tmp_path / f"account-{i}.log", env).start())
        alerts = [make_alert(camera_id=c.id, edge_id=str(c.edge_id), zone_id=z, snapshot=False)
                  for c in cameras for z in ("z1", "z2") for _ in range(3)]
        by_edge: dict[str, list[Alert]] = {}
        for a in alerts:
            by_edge.setdefault(a.edge_id, []).append(a)
        for edge_id, theirs in by_edge.items():
            edge = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=edge_id)
            edge.username_pw_set(edge_id, auth.password(edge_id))
            edge.connect("127.0.0.1", broker.port)
            edge.loop_start()
            for info in [edge.publish(alert_topic(a.edge_id, a.camera_id), a.model_dump_json(),
                                      qos=1) for a in theirs]:
                info.wait_for_publish(10)
            edge.loop_stop()
            edge.disconnect()
        wait_until(lambda: _stored(db_dsn) == len(alerts), timeout=30,
                   what=f"{len(alerts)} alerts stored by the two replicas")
        acked = [r.health()["ingest"]["acked"] for r in started]
        assert all(n > 0 for n in acked) and sum(acked) == len(alerts), acked
        log = broker.log_path.read_text(errors="replace")
        for user in ("gridwatch-center", "gridwatch-center-2"):
            assert log.count(f"u'{user}'") == 1, f"{user} was thrown off and came back"
    finally:
        for r in started:
            r.stop()
        broker.stop()


def test_a_replica_whose_listener_lost_its_connection_pushes_what_changed_meanwhile(
        db_dsn: str, mqtt_broker: Mosquitto, district: Path, tmp_path: Path) -> None:
    """NOTIFYs sent while a replica's listener is away are lost to it; back, it pushes every
    ticket changed since the last one it heard. The change here is made by plain SQL (a
    connection of no replica: no NOTIFY at all), so only that catch-up can bring it to the
    wall."""
    replica = _Replica(_unique("center-r"), _unique("centers"), db_dsn, mqtt_broker.port,
                       district, tmp_path / "r.log").start()
    try:
        wall = _Wall(replica)
        wall.start()
        assert wall.hello.wait(10)
        camera = sorted(load_district(district).cameras.values(), key=lambda c: c.id)[0]
        publisher = Publisher(mqtt_broker.port, client_id=_unique("pub"))
        publisher.alert(make_alert(camera_id=camera.id, edge_id=str(camera.edge_id),
                                   zone_id="z1", snapshot=False))
        publisher.close()
        ticket_id = wait_until(lambda: next(iter(wall.tickets), None), timeout=30,
                               what="the new case on the wall")
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("UPDATE tickets SET escalation_level = 2, updated_at = now()"
                         " WHERE id = %s", (ticket_id,))
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (f"gridwatch-replica-listener {replica.name}",)).fetchall()
        assert killed == [(True,)], killed
        wait_until(lambda: wall.tickets[ticket_id]["escalation_level"] == 2, timeout=30,
                   what="the change made while the listener was away on the wall")
        assert replica.health()["replica"]["reconnects"] >= 1
        wall.stopping.set()
        wall.join(5)
        assert wall.error is None, wall.error
    finally:
        replica.forget()
