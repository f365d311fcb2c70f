"""Reliability drills against real services, with figures (issue 7; docs/reliability.md).

    .venv/bin/python -m bench.drills                      # full: 60 s broker outage
    .venv/bin/python -m bench.drills --outage-s 10 --json drills.json

Each drill runs on a private PostgreSQL and Mosquitto (with accounts and the ACL of
``gridwatch mqtt gen-auth``: the drills log in like production edges) and the real center as a
subprocess (``gridwatch center run``):

- ``broker_outage``: an edge's real publisher (``edge.publish.MqttPublisher`` with its on-disk
  outbox) sends an alert storm; Mosquitto is SIGKILLed in the middle, stays down ``outage_s``
  seconds and is started again on the same port and data folder. Every alert the edge produced
  must be stored by the center exactly once.
- ``edge_restart``: a real edge (``gridwatch edge run``, ``fake`` detector: one parked bike that
  never leaves) is SIGKILLed after its ``new`` and started again: the center must hold one
  ``new``, one alert id and one ticket for that bike.
- ``api_fuzz``: schemathesis generates requests for every operation of the center's
  ``/openapi.json``; no response may be a 5xx.

The functions take a ``Stack`` so tests (``tests/test_drills.py``) and ``gridwatch sim drill``
can call them with their own durations.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from center.mqtt_auth import AuthFiles, gen_auth
from simulators.center_process import center_health, start_center, stop_center
from simulators.local_services import Mosquitto, Postgres, ServiceError, free_port, stop_process

DRILL_EDGE = "edge-drill"
RESTART_EDGE = "edge-restart"
#: The drill edges' cameras: an edge may speak only for the cameras its district gives it, so
#: the drills' center runs the default district with these in place of the demo edge's.
CAMERAS = ("cam-drill-01", "cam-drill-02", "cam-drill-03")
RESTART_CAMERA = "cam-restart"


def drill_district(folder: Path) -> Path:
    """The default district (same grids and people) whose cameras belong to the drill edges,
    at the demo cameras' places; returns its ``district.yaml``."""
    import shutil

    import yaml

    from center.paths import DEFAULTS_DIR

    src = DEFAULTS_DIR / "district"
    spec = yaml.safe_load((src / "district.yaml").read_text())
    places = [(c["lon"], c["lat"]) for c in spec["cameras"]]
    owners = [(c, DRILL_EDGE) for c in CAMERAS] + [(RESTART_CAMERA, RESTART_EDGE)]
    spec["cameras"] = [{"id": cam, "lon": places[i % len(places)][0],
                        "lat": places[i % len(places)][1], "edge_id": edge}
                       for i, (cam, edge) in enumerate(owners)]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / spec["grids"], folder / spec["grids"])
    (folder / "district.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return folder / "district.yaml"


@dataclass
class Stack:
    """A database, an authenticated broker and the center (a subprocess) for one drill."""

    root: Path
    dsn: str
    auth: AuthFiles
    broker: Mosquitto
    http_port: int = 0
    center: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_center(self, timeout: float = 60) -> None:
        self.http_port = self.http_port or free_port()
        self.env = {**os.environ, "GRIDWATCH_DB__DSN": self.dsn,
                    "GRIDWATCH_MQTT__PORT": str(self.broker.port),
                    "GRIDWATCH_MQTT__USERNAME": self.auth.center_user,
                    "GRIDWATCH_MQTT__PASSWORD_FILE": str(self.auth.center_secret),
                    "GRIDWATCH_MQTT__CLIENT_ID": f"center-{uuid.uuid4().hex[:8]}",
                    "GRIDWATCH_HTTP__PORT": str(self.http_port),
                    "GRIDWATCH_DISTRICT": str(drill_district(self.root / "district"))}
        self.center = start_center(self.env, self.url, self.root / "center.log", timeout)

    def health(self) -> dict[str, Any]:
        return center_health(self.url)

    def stop(self) -> None:
        stop_center(self.center)
        self.broker.stop()


@contextmanager
def stack(root: Path, dsn: str, edges: tuple[str, ...] = (DRILL_EDGE, RESTART_EDGE)
          ) -> Iterator[Stack]:
    """An authenticated broker and a center on the (migrated) database ``dsn``."""
    root.mkdir(parents=True, exist_ok=True)
    auth = gen_auth(edges, root / "mqtt-auth")
    broker = Mosquitto(root / "mosquitto", password_file=auth.password_file,
                       acl_file=auth.acl_file).start()
    s = Stack(root, dsn, auth, broker)
    try:
        s.start_center()
        yield s
    finally:
        s.stop()


@contextmanager
def private_database(root: Path) -> Iterator[str]:
    """A private PostgreSQL with a migrated ``gridwatch`` database (for the command line)."""
    from center.db.migrate import ensure_database, migrate

    pg = Postgres(root / "postgres").start()
    try:
        dsn = pg.dsn("gridwatch")
        ensure_database(dsn)
        migrate(dsn, commit=True)
        yield dsn
    finally:
        pg.stop("immediate")


def _stored(dsn: str, edge_id: str) -> tuple[int, int]:
    """(rows, distinct (alert_id, seq)) the center stored for ``edge_id``."""
    with psycopg.connect(dsn) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (alert_id, seq)) FROM alerts WHERE edge_id = %s",
            (edge_id,)).fetchone()
    return int(rows), int(distinct)


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


# --- broker outage ------------------------------------------------------------------------


def broker_outage(s: Stack, *, outage_s: float = 60.0, rate: float = 50.0, before_s: float = 5.0,
                  after_s: float = 5.0, settle_s: float = 120.0) -> dict[str, Any]:
    """An alert storm at ``rate`` messages/s; the broker SIGKILLed after ``before_s`` and down
    for ``outage_s``. Returns the figures (``lost`` and ``duplicated`` must be 0).

    ``before_s`` must exceed the broker's ``autosave_interval`` (5 s here): a SIGKILLed
    Mosquitto comes back with its last saved state, and a center session it never saved has no
    subscription, so what edges resend before the center re-subscribes goes nowhere."""
    from center.protocol import Alert
    from edge.config import BrokerConfig, OutboxConfig
    from edge.outbox import EdgeStore
    from edge.publish import MqttPublisher

    store = EdgeStore(s.root / "edge-drill.sqlite", max_messages=500_000,
                      max_bytes=1024 * 1024 * 1024)
    broker = BrokerConfig(port=s.broker.port, username=DRILL_EDGE,
                          password_file=s.auth.edge_secret(DRILL_EDGE))
    pub = MqttPublisher(DRILL_EDGE, broker, store=store, outbox=OutboxConfig(
        max_messages=500_000, max_bytes=1024 * 1024 * 1024))
    pub.start()
    if not pub.connected.wait(15):
        raise ServiceError("the drill edge could not connect")
    jpeg = _jpeg()
    sent = 0
    peak_queued = 0
    storm_s = before_s + outage_s + after_s
    t0 = time.monotonic()
    down_at = up_at = None
    violation: tuple[uuid.UUID, datetime] | None = None
    while (elapsed := time.monotonic() - t0) < storm_s:
        if down_at is None and elapsed >= before_s:
            s.broker.kill()
            down_at = time.monotonic()
        if down_at is not None and up_at is None and time.monotonic() - down_at >= outage_s:
            s.broker.start()
            up_at = time.monotonic()
        seq = sent % 4  # each violation: new, update, update, update
        if seq == 0:
            violation = (uuid.uuid4(), datetime.now(UTC))
        assert violation is not None
        now = datetime.now(UTC)
        n = sent // 4
        pub.send(Alert(
            alert_id=violation[0], seq=seq, kind="new" if seq == 0 else "update",
            edge_id=DRILL_EDGE, camera_id=CAMERAS[n % len(CAMERAS)], zone_id=f"drill-{n % 25}",
            event_type="0506", label="two_wheeler", score=0.8, bbox=(0.1, 0.2, 0.3, 0.4),
            started_at=violation[1], last_seen_at=max(now, violation[1] + timedelta(0)),
            snapshot_jpeg=jpeg if seq == 0 else None))
        sent += 1
        peak_queued = max(peak_queued, store.pending())
        time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    if up_at is None:
        s.broker.start()
        up_at = time.monotonic()
    drained = pub.drain(settle_s)
    deadline = time.monotonic() + settle_s
    rows = distinct = 0
    while time.monotonic() < deadline:
        rows, distinct = _stored(s.dsn, DRILL_EDGE)
        if distinct >= sent:
            break
        time.sleep(0.5)
    caught_up_s = time.monotonic() - up_at
    time.sleep(1.0)  # late redeliveries would show up now
    rows, distinct = _stored(s.dsn, DRILL_EDGE)
    counters = store.counters()
    pub.close(2)
    store.close()
    ingest = s.health().get("ingest", {})
    return {"drill": "broker_outage", "outage_s": outage_s, "rate_per_s": rate,
            "sent": sent, "stored": distinct, "lost": sent - distinct,
            "duplicated": rows - distinct, "peak_queued_on_edge": peak_queued,
            "edge_outbox_drained": drained, "edge_dropped": counters["dropped_updates"]
            + counters["dropped_new_end"], "redelivered_and_deduplicated":
            ingest.get("duplicates"), "caught_up_after_restart_s": round(caught_up_s, 1),
            "ok": drained and distinct == sent and rows == distinct}


# --- edge restarted mid-violation ---------------------------------------------------------


def _edge_yaml(s: Stack, folder: Path) -> Path:
    import cv2
    import numpy as np
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "street.jpg"), np.full((240, 320, 3), 120, np.uint8))
    (folder / "bike.yaml").write_text(yaml.safe_dump({
        "units": "norm", "hold": True,
        "frames": {0: [{"box": [0.4, 0.5, 0.5, 0.7], "label": "two_wheeler", "score": 0.9}]}}))
    config = {
        "edge_id": RESTART_EDGE,
        "broker": {"host": "127.0.0.1", "port": s.broker.port, "username": RESTART_EDGE,
                   "password_file": str(s.auth.edge_secret(RESTART_EDGE))},
        "detector": {"model": "fake", "path": str(folder / "bike.yaml")},
        "state_dir": str(folder / "state"), "heartbeat_s": 1,
        "motion": {"tracker": "none"},
        "cameras": [{"id": RESTART_CAMERA, "source": str(folder / "street.jpg"), "sample_fps": 4,
                     "frozen_after_s": 3600,
                     "zones": [{"id": "restart-zone", "inertia": 1, "dwell_s": 1, "clear_s": 2,
                                "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                                "rules": [{"type": "illegal_parking"}]}]}],
    }
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _place(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        news, ends, ids, rows = conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'new'), count(*) FILTER (WHERE kind = 'end'),"
            " count(DISTINCT alert_id), count(*) "
            "FROM alerts WHERE edge_id = %s AND zone_id = 'restart-zone'",
            (RESTART_EDGE,)).fetchone()
        tickets = conn.execute("SELECT count(*) FROM tickets WHERE zone_id = 'restart-zone'"
                               ).fetchone()[0]
    return {"new": int(news), "end": int(ends), "alert_ids": int(ids), "messages": int(rows),
            "tickets": int(tickets)}


def edge_restart(s: Stack, *, stay_s: float = 4.0) -> dict[str, Any]:
    """A real edge raises ``new`` for a parked bike, is SIGKILLed and started again while the
    bike is still there; the bike leaves ``stay_s`` after the restart. The center must hold one
    ``new``, one ``end``, one alert id and one ticket."""
    import yaml

    folder = s.root / "edge-restart"
    config = _edge_yaml(s, folder)
    cmd = [sys.executable, "-m", "center.cli", "edge", "run", "--config", str(config)]

    def start(n: int) -> subprocess.Popen[bytes]:
        log = open(folder / f"edge-{n}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=s.env or None, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return proc

    first = start(1)
    try:
        deadline = time.monotonic() + 60
        while _place(s.dsn)["new"] == 0:
            if time.monotonic() > deadline or first.poll() is not None:
                raise ServiceError(f"the edge raised no alert; see {folder}/edge-1.log")
            time.sleep(0.2)
        time.sleep(1.0)  # an update or two, mid-violation
    finally:
        first.kill()  # SIGKILL: no goodbye, no flush
        first.wait()
    before = _place(s.dsn)
    # After the restart the bike stays ``stay_s`` (frames at 4 fps), then leaves.
    (folder / "bike.yaml").write_text(yaml.safe_dump({
        "units": "norm", "hold": True,
        "frames": {0: [{"box": [0.4, 0.5, 0.5, 0.7], "label": "two_wheeler", "score": 0.9}],
                   int(stay_s * 4): []}}))
    second = start(2)
    try:
        deadline = time.monotonic() + 60 + stay_s
        while _place(s.dsn)["end"] == 0:  # the bike left: the same alert ends
            if time.monotonic() > deadline or second.poll() is not None:
                raise ServiceError(f"the restarted edge sent no end; see {folder}/edge-2.log")
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop_process(second, signal.SIGINT, 20)
    after = _place(s.dsn)
    return {"drill": "edge_restart", "messages_before_kill": before["messages"],
            "messages_after_restart": after["messages"] - before["messages"],
            "new": after["new"], "end": after["end"], "alert_ids": after["alert_ids"],
            "tickets": after["tickets"],
            "ok": after["new"] == 1 and after["end"] == 1 and after["alert_ids"] == 1
            and after["tickets"] == 1}


# --- API fuzzing --------------------------------------------------------------------------


def api_fuzz(base_url: str, *, max_examples: int = 10, seed: int = 7) -> dict[str, Any]:
    """schemathesis against ``/openapi.json``: ``max_examples`` generated requests per
    operation (positive and negative cases); counts responses by class and lists every 5xx."""
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    counts = {"operations": 0, "requests": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0,
              "transport_errors": 0}
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        op = result.ok()
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
    return {"drill": "api_fuzz", **counts, "failures": failures[:20],
            "ok": counts["5xx"] == 0 and counts["transport_errors"] == 0}


# --- command line -------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| drill | figures | result |", "|---|---|---|"]
    for r in results:
        figures = ", ".join(f"{k} {v}" for k, v in r.items()
                            if k not in ("drill", "ok", "failures"))
        lines.append(f"| {r['drill']} | {figures} | {'ok' if r['ok'] else 'FAILED'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage-s", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    parser.add_argument("--examples", type=int, default=25,
                        help="schemathesis examples per API operation")
    parser.add_argument("--only", choices=["broker_outage", "edge_restart", "api_fuzz"],
                        action="append")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the services' folders here")
    args = parser.parse_args(argv)
    chosen = args.only or ["broker_outage", "edge_restart", "api_fuzz"]
    root = args.keep or Path(tempfile.mkdtemp(prefix="gridwatch-drills-"))
    results: list[dict[str, Any]] = []
    with private_database(root) as dsn, stack(root / "stack", dsn) as s:
        if "broker_outage" in chosen:
            results.append(broker_outage(s, outage_s=args.outage_s, rate=args.rate))
            print(table(results[-1:]), flush=True)
        if "edge_restart" in chosen:
            results.append(edge_restart(s))
            print(table(results[-1:]), flush=True)
        if "api_fuzz" in chosen:
            results.append(api_fuzz(s.url, max_examples=args.examples))
            print(table(results[-1:]), flush=True)
    print("\n" + table(results))
    for r in results:
        for failure in r.get("failures", []):
            print(f"  {r['drill']}: {failure}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
