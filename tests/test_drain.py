"""Removing a replica without losing its share (issue 16, docs/deployment.md "Removing a
replica", docs/scaling.md): two center replicas in one share group take a storm; one gets
SIGTERM mid-storm, as Kubernetes sends it on a rolling update or a scale-down, and is NOT
started again. It must at once answer /healthz with 503 "draining", unsubscribe so the broker
gives the rest of the storm to the other replica, store and acknowledge what it had been
given, close its websockets with 1012 (service restart: clients reconnect through the
balancer) and exit within ``drain_s``. Then every alert is stored once -- unlike after a
``kill -9`` (tests/test_replicas.py), where the killed replica's session keeps its share
until the replica comes back under its client id."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from simulators.local_services import Mosquitto
from tests import plain_http
from tests.mqtt_helpers import Storm
from tests.test_replicas import (
    _assert_each_alert_once_one_ticket_per_place,
    _Replica,
    _stored,
    _storm,
    _walls_current,
    district,
    started_replicas,
    walls_on,
)
from tests.waiting import wait_until

__all__ = ["district"]

DRAIN_S = 20
N_ALERTS = 2000


@pytest.fixture
def pair(db_dsn: str, mqtt_broker: Mosquitto, district: Path,
         tmp_path: Path) -> Iterator[list[_Replica]]:
    with started_replicas(2, "drain", db_dsn, mqtt_broker.port, district, tmp_path,
                          env={"GRIDWATCH_DRAIN_S": str(DRAIN_S)}) as started:
        yield started


def _draining(replica: _Replica) -> bool:
    try:
        answer = plain_http.get(replica.url + "/healthz", timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 503 and answer.json()["status"] == "draining"


def test_a_replica_drained_by_sigterm_mid_storm_loses_nothing_and_closes_walls_with_1012(
        pair: list[_Replica], district: Path, db_dsn: str,
        mqtt_broker: Mosquitto) -> None:
    leaving = pair[1]
    walls = walls_on(pair)
    messages, distinct = _storm(district, N_ALERTS)
    edges = Storm(mqtt_broker.port, messages)
    edges.start()
    wait_until(lambda: _stored(db_dsn) >= len(distinct) // 3, timeout=60,
               what="a third of the storm stored")
    assert leaving.health()["ingest"]["acked"] > 0, "the leaving replica took no share"
    assert leaving.proc is not None
    sent = time.monotonic()
    leaving.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: _draining(leaving), timeout=3, what="/healthz 503 draining at once")
    leaving.proc.wait(DRAIN_S + 10)
    took = time.monotonic() - sent
    assert took <= DRAIN_S + 2, f"exited {took:.1f}s after SIGTERM (bound {DRAIN_S}s)"
    log = leaving.log.read_text()
    assert "drained: everything this replica was given is stored" in log, log[-3000:]

    # its wall was told to come back elsewhere: close code 1012 (service restart)
    walls[1].join(10)
    assert isinstance(walls[1].error, ConnectionClosed), walls[1].error
    assert walls[1].error.rcvd is not None and walls[1].error.rcvd.code == 1012, walls[1].error

    assert edges.done.wait(120) and edges.error is None, edges.error
    # the leaving replica is not started again: the survivor alone stores the rest
    wait_until(lambda: _stored(db_dsn) >= len(distinct), timeout=120,
               what=f"{len(distinct)} alerts stored without the drained replica")
    _assert_each_alert_once_one_ticket_per_place(db_dsn, distinct)
    try:
        wait_until(lambda: not _walls_current([walls[0]], db_dsn), timeout=60,
                   what="the surviving wall holding every ticket's final state")
    except AssertionError:
        raise AssertionError(_walls_current([walls[0]], db_dsn)) from None
    finally:
        walls[0].stopping.set()


def test_the_last_replica_of_its_group_drains_in_place_and_its_session_keeps_the_rest(
        db_dsn: str, mqtt_broker: Mosquitto, district: Path, tmp_path: Path) -> None:
    """Alone in its share group, a replica must not unsubscribe: the broker would drop the
    group's messages until a replica is back. It finishes its batch, stays subscribed and
    exits; started again under its client id, it stores what its session kept."""
    with started_replicas(1, "alone", db_dsn, mqtt_broker.port, district, tmp_path,
                          env={"GRIDWATCH_DRAIN_S": str(DRAIN_S)}) as [alone]:
        messages, distinct = _storm(district, N_ALERTS, seed=61)
        edges = Storm(mqtt_broker.port, messages)
        edges.start()
        wait_until(lambda: _stored(db_dsn) >= len(distinct) // 3, timeout=60,
                   what="a third of the storm stored")
        assert alone.proc is not None
        alone.proc.send_signal(signal.SIGTERM)
        alone.proc.wait(DRAIN_S + 10)
        log = alone.log.read_text()
        assert "the last replica of share group" in log and "drained in place" in log, log[-3000:]
        assert edges.done.wait(120) and edges.error is None, edges.error
        assert _stored(db_dsn) < len(distinct), "the storm was over before the drain"
        alone.start()  # the same client id: its session held the rest
        wait_until(lambda: _stored(db_dsn) >= len(distinct), timeout=120,
                   what=f"{len(distinct)} alerts stored after the restart")
        _assert_each_alert_once_one_ticket_per_place(db_dsn, distinct)
