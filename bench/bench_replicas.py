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
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.bench_ingest import _finish, _new_db, _publishers, _verify, _warm
from bench.harness import generated_district, services, wait_for, write_results

N_ALERTS = int(os.environ.get("GRIDWATCH_BENCH_REPLICA_ALERTS", "20000"))
#: (label, replicas, with a share group)
VARIANTS = (("1 center, no share group", 1, False), ("1 replica", 1, True),
            ("2 replicas", 2, True), ("3 replicas", 3, True))


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
        for i, (label, n, grouped) in enumerate(VARIANTS):
            r = _variant(admin, broker, district, cameras, tmp, w["sent"], label, n, grouped,
                         str(i))
            results.append(r)
            print(f"{label:26s} {r['alerts_per_s']:7.0f} alerts/s end to end "
                  f"({r['sent']} in {r['elapsed_s']:.1f} s; per replica "
                  f"{r['acked_per_replica']}; lost {r['lost']}, duplicated "
                  f"{r['duplicated']}, tickets {r['tickets']})", flush=True)
    write_results(tmp, results)
