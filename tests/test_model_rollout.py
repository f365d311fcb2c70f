"""Model rollout (docs/model-rollout.md) against the real center, PostgreSQL and Mosquitto, with
real edges running in-process on a real clip and the ``fake`` detector, whose "weights" are its
replay file: a rollout reaches a running canary edge, which swaps its model between frames
without reopening its violation and reports the SHA-256; the center records the confirmation;
promote assigns every edge, rollback restores what each ran. Weights the edge cannot check keep
the old model, and the refusal shows in ``rollout status``; malformed assignments are refused
with a logged reason; the broker's ACL lets only the center write, and only that edge read, an
edge's assignment."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from center.transport.mqtt_auth import CENTER_USER, acl_text, gen_auth
from edge.config import EdgeConfig
from edge.model_switch import ModelSwitcher, Refused, Switch
from edge.runner import open_detector, run
from simulators.local_services import Mosquitto
from tests.conftest import RunningCenter, shared
from tests.mqtt_helpers import close_client, wait_until
from wire.protocol import ModelAssignment, model_assignment_topic

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
#: The fake detector's boxes (normalised): a parked two-wheeler in each of two zones.
BIKE_EAST = [0.60, 0.55, 0.70, 0.80]
BIKE_WEST = [0.15, 0.55, 0.25, 0.80]


def _replay(path: Path, *boxes: list[float]) -> Path:
    path.write_text(yaml.safe_dump({"units": "norm", "hold": True, "times": {0.0: [
        {"box": box, "label": "two_wheeler", "score": 0.8} for box in boxes]}}))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zone(zone_id: str, x1: float, x2: float, *, dwell_s: float = 1,
          clear_s: float = 30) -> dict[str, Any]:
    return {"id": zone_id, "dwell_s": dwell_s, "clear_s": clear_s,
            "polygon": [[x1, 0.5], [x2, 0.5], [x2, 0.95], [x1, 0.95]],
            "rules": [{"type": "illegal_parking"}]}


def _config(edge_id: str, camera_id: str, port: int, replay: Path,
            zones: list[dict[str, Any]]) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": edge_id, "broker": {"port": port},
        "detector": {"model": "fake", "path": str(replay)}, "heartbeat_s": 1,
        "cameras": [{"id": camera_id, "source": str(shared(VN_CLIP)), "loop": True,
                     "sample_fps": 2, "zones": zones}]})


class Edges:
    """Real edges (``edge.runner.run``) in threads of the test, stopped when it ends."""

    def __init__(self) -> None:
        self.configs: list[EdgeConfig] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for config in self.configs:
            thread = threading.Thread(target=run, args=(config,),
                                      kwargs={"speed": 2, "stop_event": self.stop}, daemon=True)
            thread.start()
            self.threads.append(thread)


@pytest.fixture
def edges() -> Iterator[Edges]:
    running = Edges()
    try:
        yield running
    finally:
        running.stop.set()
        for thread in running.threads:
            thread.join(20)


def gridwatch(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", "model", *args],
                          env={**os.environ, "GRIDWATCH_DB__DSN": dsn}, capture_output=True,
                          text=True, timeout=60, check=False)


def _one(dsn: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _reported(dsn: str, edge_id: str) -> Any:
    """The model the edge reported in its config state, as the center stored it."""
    return _one(dsn, "SELECT model FROM edge_configs WHERE edge_id = %s", edge_id)


def _alerts(dsn: str, zone_id: str, kind: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT alert_id FROM alerts WHERE zone_id = %s AND kind = %s ORDER BY received_at",
            (zone_id, kind))]


def test_a_rollout_swaps_a_running_edge_live_then_promote_and_rollback(
        center: RunningCenter, mqtt_broker: Any, edges: Edges,
        tmp_path: Path) -> None:
    dsn = center.settings.db.dsn
    current = _replay(tmp_path / "current.yaml", BIKE_EAST)
    # The candidate sees the same bike, and one more in the west zone: its alert shows that
    # the candidate runs, and the east zone's open violation must carry on without a `new`.
    candidate = _replay(tmp_path / "candidate.yaml", BIKE_EAST, BIKE_WEST)
    edges.configs.append(_config("edge-demo", "cam-vn-01", mqtt_broker.port, current,
                         [_zone("east", 0.5, 0.9), _zone("west", 0.05, 0.45, clear_s=1)]))
    edges.configs.append(_config("edge-sim", "cam-sim-12", mqtt_broker.port, current,
                         [_zone("sim", 0.5, 0.9, dwell_s=600)]))
    edges.start()
    for edge_id in ("edge-demo", "edge-sim"):
        wait_until(partial(_reported, dsn, edge_id), 30, f"{edge_id}'s model report")
        assert _reported(dsn, edge_id)["sha256"] == _sha(current)
    [east] = wait_until(lambda: _alerts(dsn, "east", "new"), 30, "the east zone's alert")

    done = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path", str(candidate),
                     "--edge", "edge-demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("rollout 1: fake (sha256 " + _sha(candidate)[:12])
    wait_until(lambda: _one(dsn, "SELECT confirmed_at FROM model_rollout_edges WHERE"
                                 " rollout_id = 1 AND edge_id = 'edge-demo'"),
               30, "edge-demo's confirmation")
    report = _reported(dsn, "edge-demo")
    assert (report["sha256"], report["rollout_id"], report["refused"]) == (
        _sha(candidate), 1, None)
    config = _one(dsn, "SELECT config FROM edge_configs WHERE edge_id = 'edge-demo'")
    assert config["detector"]["path"] == str(candidate)
    # The candidate runs (the west bike alerts); the east bike is still the first alert.
    wait_until(lambda: _alerts(dsn, "west", "new"), 30, "the candidate's west alert")
    assert _alerts(dsn, "east", "new") == [east]
    assert _reported(dsn, "edge-sim")["sha256"] == _sha(current)  # not a canary

    status = gridwatch(dsn, "rollout", "status", "1")
    assert status.returncode == 0, status.stderr
    assert "rollout 1: fake " + str(candidate) in status.stdout and "canary" in status.stdout
    assert "edge-demo (canary): confirmed" in status.stdout
    assert f"before: fake {current} ({_sha(current)[:12]})" in status.stdout

    # No verdict yet: the canary check holds, and so does promote unless forced.
    check = gridwatch(dsn, "canary-check", "--rollout", "1", "--min-days", "0")
    assert check.returncode == 1 and "hold: no judged alert" in check.stdout, check.stdout
    held = gridwatch(dsn, "rollout", "promote", "1", "--min-days", "0")
    assert held.returncode == 1 and "not promoted" in held.stderr, held.stdout + held.stderr
    forced = gridwatch(dsn, "rollout", "promote", "1", "--min-days", "0", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "assigned to edge-sim" in forced.stdout
    wait_until(lambda: (_reported(dsn, "edge-sim") or {}).get("rollout_id") == 1, 30,
               "edge-sim on the promoted model")
    assert _reported(dsn, "edge-sim")["sha256"] == _sha(candidate)
    shown = gridwatch(dsn, "rollout", "status", "1").stdout
    assert "promoted" in shown and "FORCED; the check said: hold: no judged alert" in shown
    assert "edge-sim (promoted): confirmed" in shown

    back = gridwatch(dsn, "rollout", "rollback", "1")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "previous model assigned to edge-demo, edge-sim" in back.stdout
    for edge_id in ("edge-demo", "edge-sim"):
        wait_until(partial(_one, dsn, "SELECT restored_at FROM model_rollout_edges"
                                      " WHERE rollout_id = 1 AND edge_id = %s", edge_id),
                   30, f"{edge_id} back on its model")
        report = _reported(dsn, edge_id)
        assert (report["sha256"], report["rollback"]) == (_sha(current), True)
    # The current model again: the west bike is gone (its violation ends), the east one stays.
    wait_until(lambda: _alerts(dsn, "west", "end"), 30, "the west violation's end")
    assert _alerts(dsn, "east", "new") == [east] and not _alerts(dsn, "east", "end")
    assert "rolled_back" in gridwatch(dsn, "rollout", "status", "1").stdout
    assert gridwatch(dsn, "rollout", "promote", "1", "--force").returncode == 1


def test_weights_the_edge_cannot_check_keep_its_model_and_the_refusal_shows(
        center: RunningCenter, mqtt_broker: Any, edges: Edges,
        tmp_path: Path) -> None:
    dsn = center.settings.db.dsn
    current = _replay(tmp_path / "current.yaml", BIKE_EAST)
    edges.configs.append(_config("edge-demo", "cam-vn-01", mqtt_broker.port, current,
                         [_zone("east", 0.5, 0.9, dwell_s=600)]))
    # The center refuses what it can tell is wrong before anything is assigned.
    unknown = gridwatch(dsn, "rollout", "start", "--model", "no-such-model", "--sha256",
                        "0" * 64, "--edge", "edge-demo")
    assert unknown.returncode == 1 and "unknown model 'no-such-model'" in unknown.stderr
    differs = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path", str(current),
                        "--sha256", "0" * 64, "--edge", "edge-demo")
    assert differs.returncode == 1 and f"has SHA-256 {_sha(current)} here" in differs.stderr
    unseen = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path",
                       str(tmp_path / "elsewhere.yaml"), "--edge", "edge-demo")
    assert unseen.returncode == 1 and "give the weights' SHA-256 with --sha256" in unseen.stderr
    early = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path", str(current),
                      "--edge", "edge-demo")
    assert early.returncode == 1 and "edge-demo has not reported its config" in early.stderr

    edges.start()
    wait_until(lambda: _reported(dsn, "edge-demo"), 30, "edge-demo's model report")
    # Weights the center cannot see (another box): the digest is taken as given, and the edge,
    # which has no such file either, refuses and keeps its model.
    missing = tmp_path / "not-on-the-edge.yaml"
    done = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path", str(missing),
                     "--sha256", "ab" * 32, "--edge", "edge-demo")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(lambda: _one(dsn, "SELECT refusal FROM model_rollout_edges WHERE rollout_id = 1"),
               30, "edge-demo's refusal")
    status = gridwatch(dsn, "rollout", "status", "1").stdout
    assert "edge-demo (canary): REFUSED" in status
    assert f"weights {missing} are not on this edge" in status
    report = _reported(dsn, "edge-demo")
    assert (report["sha256"], report["rollout_id"]) == (_sha(current), None)
    assert report["refused"]["rollout_id"] == 1
    check = gridwatch(dsn, "canary-check", "--rollout", "1")
    assert check.returncode == 1 and "not confirmed by edge-demo (refused: " in check.stderr
    # A canary edge is in one rollout at a time.
    again = gridwatch(dsn, "rollout", "start", "--model", "fake", "--path", str(current),
                      "--edge", "edge-demo")
    assert again.returncode == 1 and "edge edge-demo is a canary of rollout 1" in again.stderr


def _assignment(**changes: Any) -> bytes:
    doc = {"edge_id": "edge-x", "rollout_id": 7, "model": "fake", "sha256": "0" * 64,
           "at": datetime.now(UTC).isoformat(), **changes}
    return json.dumps(doc).encode()


def test_the_edge_checks_every_assignment_before_loading_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The switcher on its own (the runner's own loader, no broker): wrong digest, unknown
    model, another edge's assignment and malformed payloads keep the running model, each with
    its reason; a good one is loaded beside it."""
    current = _replay(tmp_path / "current.yaml", BIKE_EAST)
    candidate = _replay(tmp_path / "candidate.yaml", BIKE_WEST)
    config = _config("edge-x", "cam-x", 1883, current, [_zone("east", 0.5, 0.9)])
    switcher = ModelSwitcher(config, lambda c: open_detector(c, threading.Event()))

    def answer(payload: bytes) -> Any:
        switcher.offer(payload)
        return wait_until(switcher.take, 10, "the switcher's answer")

    try:
        assert switcher.state.sha256 == _sha(current) and switcher.state.rollout_id is None
        caplog.set_level(logging.ERROR, logger="edge.model_switch")
        cases = {
            "SHA-256": _assignment(path=str(candidate), sha256="1" * 64),
            "unknown model 'yolo-nope'": _assignment(model="yolo-nope"),
            "names edge 'edge-y', not this edge": _assignment(edge_id="edge-y"),
            "malformed model assignment: path: Value error, path must be absolute":
                _assignment(path="relative/boxes.yaml"),
            "malformed model assignment: sha256: String should match pattern":
                _assignment(sha256="not-hex"),
        }
        for reason, payload in cases.items():
            got = answer(payload)
            assert isinstance(got, Refused), reason
            assert got.state.refused is not None and reason in got.state.refused.reason
            assert (got.state.model, got.state.sha256) == ("fake", _sha(current))
            assert reason in caplog.text and "REFUSED, model fake keeps running" in caplog.text
        # Without a rollout id to answer to, a payload is only logged.
        caplog.clear()
        for payload in (b"not json", b'{"rollout_id": true}', json.dumps(
                {"edge_id": "edge-x", "model": "fake"}).encode()):
            switcher.offer(payload)
        assert caplog.text.count("malformed model assignment") == 3
        assert "rollout_id: Field required" in caplog.text
        assert switcher.take() is None

        got = answer(_assignment(path=str(candidate), sha256=_sha(candidate)))
        assert isinstance(got, Switch) and got.handle is not None
        assert (got.detector.model, got.detector.path) == ("fake", str(candidate))
        assert (got.state.sha256, got.state.rollout_id, got.state.refused) == (
            _sha(candidate), 7, None)
        got.handle.close()
        switcher.running(config.model_copy(update={"detector": got.detector}))  # as the runner
        # Assigned again, what runs now is confirmed without loading anything.
        again = answer(_assignment(path=str(candidate), sha256=_sha(candidate),
                                   rollout_id=8))
        assert isinstance(again, Switch) and again.handle is None
        assert again.state.rollout_id == 8 and again.state.since == got.state.since
    finally:
        switcher.close()


def test_only_the_center_writes_and_only_that_edge_reads_its_model_assignment(
        tmp_path: Path) -> None:
    assert "pattern read gridwatch/v1/model/%u" in acl_text()
    auth = gen_auth(["edge-a", "edge-b"], tmp_path / "auth")
    with Mosquitto(tmp_path / "mqtt", password_file=auth.password_file,
                   acl_file=auth.acl_file) as broker:
        got: dict[str, list[tuple[str, bytes]]] = {}
        subscribed: list[int] = []
        clients = {}
        for user in (CENTER_USER, "edge-a"):
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                 client_id=f"t-{uuid.uuid4().hex[:8]}")
            client.username_pw_set(user, auth.password(user))
            got[user] = []
            client.on_message = lambda c, u, m, user=user: got[user].append(
                (m.topic, bytes(m.payload)))
            client.on_subscribe = lambda *args: subscribed.append(1)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            clients[user] = client
        try:
            center, edge_a = clients[CENTER_USER], clients["edge-a"]
            wait_until(lambda: center.is_connected() and edge_a.is_connected(), 10, "logins")
            center.subscribe(model_assignment_topic("+"), qos=1)
            edge_a.subscribe(model_assignment_topic("edge-b"), qos=1)  # never delivered
            edge_a.subscribe(model_assignment_topic("edge-a"), qos=1)
            wait_until(lambda: len(subscribed) == 3, 10, "the subscriptions")
            # An edge may write no assignment, not even its own (acknowledged, then dropped).
            for target in ("edge-b", "edge-a"):
                edge_a.publish(model_assignment_topic(target), b"forged",
                               qos=1).wait_for_publish(5)
            for target in ("edge-b", "edge-a"):
                payload = ModelAssignment(edge_id=target, rollout_id=1, model="fake",
                                          sha256="0" * 64, at=datetime.now(UTC))
                center.publish(model_assignment_topic(target), payload.model_dump_json(),
                               qos=1).wait_for_publish(5)
            wait_until(lambda: len(got[CENTER_USER]) >= 2 and got["edge-a"], 10,
                       "the center's assignments")
            assert [t for t, _ in got["edge-a"]] == [model_assignment_topic("edge-a")]
            assert b"forged" not in [p for _, p in got[CENTER_USER] + got["edge-a"]]
        finally:
            for client in clients.values():
                close_client(client)
