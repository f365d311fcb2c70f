"""Alerts/s end to end through MQTT with 1, 2 and 3 center replicas side by side
(docs/scaling.md "Replicas").

Each variant gets a fresh copy of the warm database (bench_ingest's warm-up: every one of
the 4,600 places of the generated town, 1,150 cameras, has its open, dispatched ticket), its
own share group and client ids, and N real centers as processes (``gridwatch center run``,
the way replicas are run); ``GRIDWATCH_BENCH_REPLICA_ALERTS`` alerts (default 20,000, no
snapshots, each attaching to its place's ticket) are published flat out by two publisher
processes (``bench.bench_ingest publish``, at most 2,000 unacknowledged each), and the clock
runs from starting the publishers until every alert is a row. The first variant is one center
without a share group (today's deployment), the second one replica in a group (what the
shared subscription and the cross-replica NOTIFY cost one process).

On the 2-core box this measures the overhead of replicas, not a speed-up: every replica,
PostgreSQL, Mosquitto and the publishers share the same two cores, so a second process only
competes for them. The gain needs cores (or machines) per replica.

Then the cost of relaying the wall's alert feed across replicas (migration 0030,
center/transport/replica_events.py): two replicas, the duty operator's wall on each, alerts
paced at ``GRIDWATCH_BENCH_RELAY_RATE`` per second (default 1,000) for
``GRIDWATCH_BENCH_RELAY_S`` seconds (default 20), with the alert trigger in place ("relay on":
each wall gets every alert) and dropped from the variant's database ("relay off": each wall
gets its own replica's half), ``GRIDWATCH_BENCH_RELAY_RUNS`` times each (default 2),
alternating. Counted: CPU seconds (user + system, from ``/proc``) of the two replica processes
and of PostgreSQL (the postmaster and its children) per alert, so that other load on a shared
box changes the figure less than it changes wall time; the load average is printed with each.
``GRIDWATCH_BENCH_REPLICAS_ONLY_RELAY=1`` runs only this part.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_ingest import (
    BENCH_OPERATOR,
    BENCH_SECRET,
    _finish,
    _new_db,
    _publishers,
    _tokens,
    _verify,
    _warm,
)
from bench.bench_intake_cpu import _pg_cpu_s
from bench.harness import generated_district, services, wait_for, write_results

N_ALERTS = int(os.environ.get("GRIDWATCH_BENCH_REPLICA_ALERTS", "20000"))
#: (label, replicas, with a share group)
VARIANTS = (("1 center, no share group", 1, False), ("1 replica", 1, True),
            ("2 replicas", 2, True), ("3 replicas", 3, True))
RELAY_RATE = float(os.environ.get("GRIDWATCH_BENCH_RELAY_RATE", "1000"))
RELAY_S = float(os.environ.get("GRIDWATCH_BENCH_RELAY_S", "20"))
RELAY_RUNS = max(1, int(os.environ.get("GRIDWATCH_BENCH_RELAY_RUNS", "2")))
ONLY_RELAY = os.environ.get("GRIDWATCH_BENCH_REPLICAS_ONLY_RELAY") == "1"


def _rows(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM alerts").fetchone()
    return int(row[0]) if row else 0


def _forget_sessions(port: int, client_ids: list[str]) -> None:
    """Drop the persistent sessions a variant left on the broker (clean-session connects), so
    no later variant's messages are queued for replicas that are gone."""
    import paho.mqtt.client as mqtt

    for client_id in client_ids:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=True)
        c.connect("127.0.0.1", port)
        c.loop_start()
        wait_for(c.is_connected, 10, f"clean session {client_id}")
        c.disconnect()
        c.loop_stop()


def _variant(admin: str, broker: Any, district: Path, cameras: Path, tmp: Path, warm: int,
             label: str, n: int, grouped: bool, key: str) -> dict[str, Any]:
    from simulators.center_process import center_health, start_center, stop_center
    from simulators.local_services import free_port

    dsn = _new_db(admin, f"bench_replicas_{key}", "bench_warm")
    ids = [f"bench-replica-{key}-{i + 1}" for i in range(n)]
    procs, urls = [], []
    try:
        for client_id in ids:  # one by one: the first start imports the district
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "GRIDWATCH_DB__DSN": dsn,
                   "GRIDWATCH_MQTT__PORT": str(broker.port),
                   "GRIDWATCH_MQTT__CLIENT_ID": client_id,
                   "GRIDWATCH_MQTT__SHARE_GROUP": f"bench-{key}" if grouped else "",
                   "GRIDWATCH_HTTP__PORT": str(port), "GRIDWATCH_DISTRICT": str(district)}
            procs.append(start_center(env, url, tmp / f"{client_id}.log", timeout=120))
            urls.append(url)
        t0 = time.monotonic()
        sent = sum(r["sent"] for r in _finish(
            _publishers(broker.port, cameras, N_ALERTS, 2, "flat")))
        wait_for(lambda: _rows(dsn) >= warm + sent, 900, f"{label}: {sent} alerts stored",
                 every=0.2)
        elapsed = time.monotonic() - t0
        per_replica = [center_health(u)["ingest"]["acked"] for u in urls]
    finally:
        for p in procs:
            stop_center(p)
        _forget_sessions(broker.port, ids)
    return {"test": "replicas", "variant": label, "replicas": n, "share_group": grouped,
            "sent": sent, "elapsed_s": elapsed, "alerts_per_s": sent / elapsed,
            "acked_per_replica": per_replica, **_verify(dsn, warm + sent)}


class _WallCount(threading.Thread):
    """The duty operator's wall on one replica, counting the ``alert`` and ``summary`` events
    it is sent (by substring: parsing 2,000 messages a second here would take a core from
    the processes measured)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url.replace("http://", "ws://") + "/ws", token
        self.alerts = self.summaries = 0
        self.hello = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        from center.transport.push import auth_message

        with connect(self.url, open_timeout=10, max_size=None) as ws:
            ws.send(auth_message(self.token))
            while not self.stopping.is_set():
                try:
                    text = str(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                except ConnectionClosed:  # its replica stopped (the end of the variant)
                    return
                self.alerts += '"type":"alert"' in text
                self.summaries += '"type":"summary"' in text
                if '"type":"hello"' in text:
                    self.hello.set()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_DROP_ALERT_RELAY = "DROP TRIGGER replica_alerts_stored ON alerts"


def _relay_cost(admin: str, broker: Any, district: Path, cameras: Path, tmp: Path, warm: int,
                relay: bool, key: str) -> dict[str, Any]:
    """Two replicas, a wall on each, alerts paced at ``RELAY_RATE``: CPU per alert of the
    replicas and of PostgreSQL, with the alert feed relayed across them or not."""
    import psycopg

    from simulators.center_process import start_center, stop_center
    from simulators.local_services import free_port

    dsn = _new_db(admin, f"bench_relay_{key}", "bench_warm")
    if not relay:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(_DROP_ALERT_RELAY)
    ids = [f"bench-relay-{key}-{i + 1}" for i in range(2)]
    token = _tokens([BENCH_OPERATOR])[BENCH_OPERATOR]
    procs, walls = [], []
    n = int(RELAY_RATE * RELAY_S)
    try:
        for client_id in ids:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "GRIDWATCH_DB__DSN": dsn,
                   "GRIDWATCH_MQTT__PORT": str(broker.port),
                   "GRIDWATCH_MQTT__CLIENT_ID": client_id,
                   "GRIDWATCH_MQTT__SHARE_GROUP": f"bench-relay-{key}",
                   "GRIDWATCH_HTTP__PORT": str(port), "GRIDWATCH_DISTRICT": str(district),
                   "GRIDWATCH_SECRET_KEY": BENCH_SECRET}
            procs.append(start_center(env, url, tmp / f"{client_id}.log", timeout=120))
            walls.append(_WallCount(url, token))
            walls[-1].start()
            assert walls[-1].hello.wait(30), f"no hello from {client_id}"
        load_before = os.getloadavg()
        cpu0, pg0 = [_cpu_s(p.pid) for p in procs], _pg_cpu_s(tmp / "pg")
        t0 = time.monotonic()
        sent = sum(r["sent"] for r in _finish(
            _publishers(broker.port, cameras, n, 1, "paced", rate=RELAY_RATE)))
        wait_for(lambda: _rows(dsn) >= warm + sent, 300, f"{sent} alerts stored", every=0.2)
        # Every alert on both walls (relay on) or on one of them (off), unless a wall fell
        # behind and got them folded (its summaries say so).
        want = sent * (2 if relay else 1)
        try:
            wait_for(lambda: sum(w.alerts for w in walls) >= want, 60, "the walls' alerts",
                     every=0.2)
        except Exception as exc:  # noqa: BLE001 - reported with the counts below
            print(f"  walls short of {want} alerts: {exc}", flush=True)
        elapsed = time.monotonic() - t0
        center_s = sum(_cpu_s(p.pid) for p in procs) - sum(cpu0)
        pg_s = _pg_cpu_s(tmp / "pg") - pg0
        load_after = os.getloadavg()
    finally:
        for w in walls:
            w.stopping.set()
        for p in procs:
            stop_center(p)
        for w in walls:
            w.join(5)
        _forget_sessions(broker.port, ids)
    return {"test": "relay", "relay": relay, "sent": sent, "elapsed_s": elapsed,
            "rate": RELAY_RATE, "center_cpu_s": center_s, "pg_cpu_s": pg_s,
            "center_us_per_alert": center_s / sent * 1e6, "pg_us_per_alert": pg_s / sent * 1e6,
            "wall_alerts": [w.alerts for w in walls],
            "wall_summaries": [w.summaries for w in walls],
            "load_before": load_before, "load_after": load_after, **_verify(dsn, warm + sent)}


def _print_relay(runs: list[dict[str, Any]]) -> None:
    for relay in (True, False):
        mine = [r for r in runs if r["relay"] is relay]
        label = "relay on " if relay else "relay off"
        for key in ("center_us_per_alert", "pg_us_per_alert"):
            values = [r[key] for r in mine]
            print(f"{label} {key}: median {statistics.median(values):.0f} µs, runs "
                  f"{', '.join(f'{v:.0f}' for v in values)}", flush=True)


def main() -> None:
    tmp, district, d, cameras = generated_district("gridwatch-bench-replicas-")
    print(f"district: {len(d.cameras)} cameras; N={N_ALERTS} alerts flat out per variant; "
          f"{os.cpu_count()} CPU cores shared by publishers, broker, PostgreSQL and every "
          "replica (overhead, not speed-up)", flush=True)
    results = []
    with services(tmp, "bench_template") as (admin, broker):
        w = _warm(admin, broker, district, cameras)
        _forget_sessions(broker.port, ["bench-center-warm"])
        results.append(w)
        print(f"warm-up: {w['sent']} places, each with its open ticket", flush=True)
        for i, (label, n, grouped) in enumerate(() if ONLY_RELAY else VARIANTS):
            r = _variant(admin, broker, district, cameras, tmp, w["sent"], label, n, grouped,
                         str(i))
            results.append(r)
            print(f"{label:26s} {r['alerts_per_s']:7.0f} alerts/s end to end "
                  f"({r['sent']} in {r['elapsed_s']:.1f} s; per replica "
                  f"{r['acked_per_replica']}; lost {r['lost']}, duplicated "
                  f"{r['duplicated']}, tickets {r['tickets']})", flush=True)
        relay_runs = []
        for i in range(RELAY_RUNS * 2):
            r = _relay_cost(admin, broker, district, cameras, tmp, w["sent"], i % 2 == 0,
                            f"r{i}")
            relay_runs.append(r)
            results.append(r)
            print(f"relay {'on ' if r['relay'] else 'off'}: {r['sent']} alerts at "
                  f"{r['rate']:.0f}/s in {r['elapsed_s']:.1f} s; CPU per alert: replicas "
                  f"{r['center_us_per_alert']:.0f} µs, PostgreSQL {r['pg_us_per_alert']:.0f} µs;"
                  f" wall alerts {r['wall_alerts']}, summaries {r['wall_summaries']}; load "
                  f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}; lost {r['lost']}, "
                  f"duplicated {r['duplicated']}", flush=True)
        _print_relay(relay_runs)
    write_results(tmp, results)
