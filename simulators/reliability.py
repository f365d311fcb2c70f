"""The reliability drills, with figures (docs/reliability.md): scenarios of the one drill
frame (``simulators.drill``: ``gridwatch sim drill --scenario broker-outage,edge-restart,
api-fuzz``; ``python -m bench.drills`` runs them full length and prints the figures).

They run on a broker with accounts and the ACL of ``gridwatch mqtt gen-auth`` (the edges log in
like production edges) and the real center as a subprocess:

- ``broker_outage``: an edge's real publisher (``edge.publish.MqttPublisher`` with its on-disk
  outbox) sends an alert storm; Mosquitto is SIGKILLed in the middle, stays down ``outage_s``
  seconds and is started again on the same port and data folder. Every alert the edge produced
  must be stored by the center exactly once.
- ``edge_restart``: a real edge (``gridwatch edge run``, ``fake`` detector: one parked bike that
  never leaves) is SIGKILLed after its ``new`` and started again: the center must hold one
  ``new``, one alert id and one ticket for that bike.
- ``api_fuzz``: schemathesis generates requests for every operation of the center's
  ``/openapi.json``; no response may be a 5xx.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import yaml

from center.transport.mqtt_auth import AuthFiles
from simulators.alerts import district_cameras
from simulators.center_process import center_health
from simulators.local_services import Mosquitto, ServiceError, stop_process

if TYPE_CHECKING:
    from simulators.drill import Result, Stack


#: The API fuzz's hypothesis seed: the same requests every run, so figures compare.
FUZZ_SEED = 7


def _broker(stack: Stack) -> Mosquitto:
    assert stack.broker is not None, "the stack is prepared"
    return stack.broker


def _auth(stack: Stack) -> AuthFiles:
    assert stack.auth is not None, "these drills run with accounts"
    return stack.auth


def _edges(stack: Stack) -> list[tuple[str, list[str]]]:
    """The district's edges with their cameras, in id order: one storms, another restarts."""
    edges: dict[str, list[str]] = {}
    for cam in district_cameras(stack.district):
        edges.setdefault(cam.edge_id, []).append(cam.id)
    return sorted((e, sorted(c)) for e, c in edges.items())


def _counts(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]
            ) -> tuple[int, ...]:
    """The one row of an aggregate query (``count(*)`` always has one)."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def _stored(dsn: str, edge_id: str) -> tuple[int, int]:
    """(rows, distinct (alert_id, seq)) the center stored for ``edge_id``."""
    with psycopg.connect(dsn) as conn:
        rows, distinct = _counts(
            conn, "SELECT count(*), count(DISTINCT (alert_id, seq)) FROM alerts"
            " WHERE edge_id = %s", (edge_id,))
    return rows, distinct


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


# --- broker outage ------------------------------------------------------------------------


def broker_outage(stack: Stack, result: Result) -> None:
    """An alert storm at ``size.outage_rate`` messages/s from one edge; the broker SIGKILLed
    after ``outage_before_s`` and down for ``outage_s``. ``lost`` and ``duplicated`` must be 0.

    ``outage_before_s`` should exceed the broker's ``autosave_interval`` (5 s here): a
    SIGKILLed Mosquitto comes back with its last saved state, and a center session it never
    saved has no subscription, so what edges resend before the center re-subscribes goes
    nowhere."""
    from edge.config import BrokerConfig, OutboxConfig
    from edge.outbox import EdgeStore
    from edge.publish import MqttPublisher
    from wire.protocol import Alert

    size, s, auth = stack.size, _broker(stack), _auth(stack)
    rate, outage_s = size.outage_rate, size.outage_s
    edge_id, cameras = _edges(stack)[0]
    store = EdgeStore(stack.root / "edge-drill.sqlite", max_messages=500_000,
                      max_bytes=1024 * 1024 * 1024)
    broker = BrokerConfig(port=s.port, username=edge_id, password_file=auth.edge_secret(edge_id))
    pub = MqttPublisher(edge_id, broker, store=store, outbox=OutboxConfig(
        max_messages=500_000, max_bytes=1024 * 1024 * 1024))
    pub.start()
    if not pub.connected.wait(15):
        raise ServiceError("the drill edge could not connect")
    jpeg = _jpeg()
    sent = 0
    peak_queued = 0
    storm_s = size.outage_before_s + outage_s + size.outage_after_s
    t0 = time.monotonic()
    down_at = up_at = None
    violation: tuple[uuid.UUID, datetime] | None = None
    while (elapsed := time.monotonic() - t0) < storm_s:
        if down_at is None and elapsed >= size.outage_before_s:
            s.kill()
            down_at = time.monotonic()
        if down_at is not None and up_at is None and time.monotonic() - down_at >= outage_s:
            s.start()
            up_at = time.monotonic()
        seq = sent % 4  # each violation: new, update, update, update
        if seq == 0:
            violation = (uuid.uuid4(), datetime.now(UTC))
        assert violation is not None
        now = datetime.now(UTC)
        n = sent // 4
        pub.send(Alert(
            alert_id=violation[0], seq=seq, kind="new" if seq == 0 else "update",
            edge_id=edge_id, camera_id=cameras[n % len(cameras)], zone_id=f"drill-{n % 25}",
            event_type="0506", label="two_wheeler", score=0.8, bbox=(0.1, 0.2, 0.3, 0.4),
            started_at=violation[1], last_seen_at=max(now, violation[1] + timedelta(0)),
            snapshot_jpeg=jpeg if seq == 0 else None, simulated=True))
        sent += 1
        peak_queued = max(peak_queued, store.pending())
        time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    if up_at is None:
        s.start()
        up_at = time.monotonic()
    drained = pub.drain(size.outage_settle_s)
    deadline = time.monotonic() + size.outage_settle_s
    rows = distinct = 0
    while time.monotonic() < deadline:
        rows, distinct = _stored(stack.dsn, edge_id)
        if distinct >= sent:
            break
        time.sleep(0.5)
    caught_up_s = time.monotonic() - up_at
    time.sleep(1.0)  # late redeliveries would show up now
    rows, distinct = _stored(stack.dsn, edge_id)
    counters = store.counters()
    pub.close(2)
    store.close()
    ingest = center_health(stack.url).get("ingest", {})
    result.ok = drained and distinct == sent and rows == distinct
    result.figures = {"outage_s": outage_s, "rate_per_s": rate,
            "sent": sent, "stored": distinct, "lost": sent - distinct,
            "duplicated": rows - distinct, "peak_queued_on_edge": peak_queued,
            "edge_outbox_drained": drained, "edge_dropped": counters["dropped_updates"]
            + counters["dropped_new_end"], "redelivered_and_deduplicated":
            ingest.get("duplicates"), "caught_up_after_restart_s": round(caught_up_s, 1)}


# --- edge restarted mid-violation ---------------------------------------------------------


def _edge_yaml(stack: Stack, folder: Path, edge_id: str, camera_id: str) -> Path:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "street.jpg"), np.full((240, 320, 3), 120, np.uint8))
    (folder / "bike.yaml").write_text(yaml.safe_dump({
        "units": "norm", "hold": True,
        "frames": {0: [{"box": [0.4, 0.5, 0.5, 0.7], "label": "two_wheeler", "score": 0.9}]}}))
    config = {
        "edge_id": edge_id,
        "broker": {"host": "127.0.0.1", "port": _broker(stack).port, "username": edge_id,
                   "password_file": str(_auth(stack).edge_secret(edge_id))},
        "detector": {"model": "fake", "path": str(folder / "bike.yaml")},
        "state_dir": str(folder / "state"), "heartbeat_s": 1,
        "motion": {"tracker": "none"},
        "cameras": [{"id": camera_id, "source": str(folder / "street.jpg"), "sample_fps": 4,
                     "frozen_after_s": 3600,
                     "zones": [{"id": "restart-zone", "inertia": 1, "dwell_s": 1, "clear_s": 2,
                                "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                                "rules": [{"type": "illegal_parking"}]}]}],
    }
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _place(dsn: str, edge_id: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        news, ends, ids, rows = _counts(
            conn, "SELECT count(*) FILTER (WHERE kind = 'new'), count(*) FILTER (WHERE kind ="
            " 'end'), count(DISTINCT alert_id), count(*) FROM alerts WHERE edge_id = %s AND"
            " zone_id = 'restart-zone'", (edge_id,))
        (tickets,) = _counts(
            conn, "SELECT count(*) FROM tickets WHERE zone_id = 'restart-zone'", ())
    return {"new": news, "end": ends, "alert_ids": ids, "messages": rows, "tickets": tickets}


def edge_restart(stack: Stack, result: Result) -> None:
    """A real edge raises ``new`` for a parked bike, is SIGKILLed and started again while the
    bike is still there; the bike leaves ``size.stay_s`` after the restart. The center must
    hold one ``new``, one ``end``, one alert id and one ticket."""
    stay_s = stack.size.stay_s
    edge_id, cameras = _edges(stack)[1]
    folder = stack.root / "edge-restart"
    config = _edge_yaml(stack, folder, edge_id, cameras[0])
    cmd = [sys.executable, "-m", "gridwatch.cli", "edge", "run", "--config", str(config)]

    def start(n: int) -> subprocess.Popen[bytes]:
        log = open(folder / f"edge-{n}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return proc

    first = start(1)
    try:
        deadline = time.monotonic() + 60
        while _place(stack.dsn, edge_id)["new"] == 0:
            if time.monotonic() > deadline or first.poll() is not None:
                raise ServiceError(f"the edge raised no alert; see {folder}/edge-1.log")
            time.sleep(0.2)
        time.sleep(1.0)  # an update or two, mid-violation
    finally:
        first.kill()  # SIGKILL: no goodbye, no flush
        first.wait()
    before = _place(stack.dsn, edge_id)
    # After the restart the bike stays ``stay_s`` (frames at 4 fps), then leaves.
    (folder / "bike.yaml").write_text(yaml.safe_dump({
        "units": "norm", "hold": True,
        "frames": {0: [{"box": [0.4, 0.5, 0.5, 0.7], "label": "two_wheeler", "score": 0.9}],
                   int(stay_s * 4): []}}))
    second = start(2)
    try:
        deadline = time.monotonic() + 60 + stay_s
        while _place(stack.dsn, edge_id)["end"] == 0:  # the bike left: the same alert ends
            if time.monotonic() > deadline or second.poll() is not None:
                raise ServiceError(f"the restarted edge sent no end; see {folder}/edge-2.log")
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop_process(second, signal.SIGINT, 20)
    after = _place(stack.dsn, edge_id)
    result.figures = {"messages_before_kill": before["messages"],
                      "messages_after_restart": after["messages"] - before["messages"],
                      "new": after["new"], "end": after["end"], "alert_ids": after["alert_ids"],
                      "tickets": after["tickets"]}
    result.ok = (after["new"], after["end"], after["alert_ids"], after["tickets"]) == (1, 1, 1, 1)


# --- API fuzzing --------------------------------------------------------------------------


def api_fuzz(stack: Stack, result: Result) -> None:
    """``fuzz_api`` on the drill's center with ``size.fuzz_examples``; no 5xx allowed."""
    result.figures, failures = fuzz_api(stack.url, max_examples=stack.size.fuzz_examples)
    result.notes += failures[:20]
    result.ok = not failures


def fuzz_api(base_url: str, *, max_examples: int, seed: int = FUZZ_SEED
             ) -> tuple[dict[str, int], list[str]]:
    """schemathesis against ``/openapi.json``: ``max_examples`` generated requests per
    operation (positive and negative cases); the responses counted by class, and every 5xx,
    transport error or operation schemathesis cannot read (also ``tests/test_schemathesis.py``,
    on the tests' center)."""
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from schemathesis import GenerationMode
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    counts = {"operations": 0, "invalid_operations": 0, "requests": 0, "2xx": 0, "3xx": 0,
              "4xx": 0, "5xx": 0, "transport_errors": 0}
    failures: list[str] = []
    session = requests.Session()
    for found in schema.get_all_operations():
        if not isinstance(found, Ok):
            failures.append(f"operation not in the schema's terms: {found.err()}")
            counts["invalid_operations"] += 1
            continue
        op = found.ok()
        counts["operations"] += 1
        strategy = (op.as_strategy(GenerationMode.POSITIVE)
                    | op.as_strategy(GenerationMode.NEGATIVE))

        @hypothesis.settings(max_examples=max_examples, deadline=None, database=None,
                             derandomize=False, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.seed(seed)
        @given(case=strategy)
        def call(case: Any) -> None:
            counts["requests"] += 1
            where = f"{case.operation.method.upper()} {case.operation.path}"
            try:
                response = case.call(base_url=base_url, session=session, timeout=10,
                                     allow_redirects=False)
            except requests.RequestException as exc:
                counts["transport_errors"] += 1
                failures.append(f"{where}: {exc!r}")
                return
            counts[f"{response.status_code // 100}xx"] += 1
            if response.status_code >= 500:
                failures.append(f"{where} -> {response.status_code}: {case.as_curl_command()}")

        call()
    return counts, failures
