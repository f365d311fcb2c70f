"""Center ingest and dispatch with the district of one real town (172 micro-grids, 1,150 cameras).

Starts its own PostgreSQL and Mosquitto (simulators.local_services) and the real center (uvicorn
in a thread of this process) on the generated district, and measures, for each ingest variant
(``AlertIntake.batch_max`` = 1: one transaction per message, the old path; 500: batched):

* throughput, backlog: publishers queue N distinct alerts (+5 % redeliveries) at the broker
  for the center's persistent session while it is down, then the center starts and drains
  them: alerts stored per second, then rows counted (0 lost, 0 duplicated by (alert_id, seq));
* throughput, live: two publisher processes publish flat out while the center ingests;
* latency: one publisher process at a steady 1,000 alerts/s over the whole district, a phone
  websocket for every A-post worker (172) and one wall screen; each alert id carries its publish
  time (high 64 bits, microseconds), so a ticket push naming it as ``last_alert_id`` gives
  publish -> worker's websocket. p50/p95/p99 over every push received. Run
  ``GRIDWATCH_BENCH_LATENCY_RUNS`` times (3 by default; each on a fresh center and database),
  reported as the median and the worst of the runs' p50 and p99, and whether the target
  (p99 < 200 ms) held in every run: one run lands on either side of saturation by luck
  (issue 16), so a single figure says little. The load average before each run is printed
  beside it: on a shared box the figures are the box's, not the center's.

Publishers and websocket clients are separate processes (the paho client tops out near
10-12k msg/s per process). Everything shares this machine's cores: the numbers are for the
whole system on one box, not for the center alone.

Run: ``.venv/bin/python -m bench ingest`` (sizes: GRIDWATCH_BENCH_N, GRIDWATCH_BENCH_LATENCY_S,
GRIDWATCH_BENCH_LATENCY_RUNS; ``GRIDWATCH_BENCH_ONLY_LATENCY=1`` for the latency runs alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from bench.harness import generated_district, helper_cli, services, spawn, wait_for, write_results

N_ALERTS = int(os.environ.get("GRIDWATCH_BENCH_N", "40000"))
LATENCY_S = float(os.environ.get("GRIDWATCH_BENCH_LATENCY_S", "30"))
LATENCY_RATE = 1000
LATENCY_RUNS = max(1, int(os.environ.get("GRIDWATCH_BENCH_LATENCY_RUNS", "3")))
#: The latency target (issue 16): p99 alert -> worker's phone under this, in every run.
LATENCY_TARGET_P99_MS = 200.0
FRESH = 0.01  # share of latency-test alerts at a place with no open ticket (a new dispatch)
#: (label, AlertIntake.batch_max, AlertIntake.touch_interval_s). Per-message (the pre-batching path)
#: takes minutes at these sizes: GRIDWATCH_BENCH_PER_MESSAGE=1 adds it.
VARIANTS: tuple[tuple[str, int, float], ...] = (
    ("batched, every push", 500, 0.0),
    ("batched, touches <=1/2s", 500, 2.0),
) + ((("per-message", 1, 0.0),) if os.environ.get("GRIDWATCH_BENCH_PER_MESSAGE") else ())
MAX_UNACKED = 2000  # far below the 65,535 packet ids of one MQTT connection
#: The paced publisher sends what is due in bursts of this long (10 alerts at 1,000/s); each
#: alert is stamped when it is sent, so latencies count from the send.
PACING_TICK_S = 0.01
ALERT_TOPICS = "gridwatch/v1/alerts/+/+"


# --- publisher process --------------------------------------------------------------------------

def _places(cams: list[dict[str, str]]) -> list[tuple[dict[str, str], str, str]]:
    """Every place of the district: camera x zone (2 per camera) x event type (2)."""
    return [(c, z, e) for c in cams for z in ("z1", "z2") for e in ("0506", "0504")]


def _payload(place: tuple[dict[str, str], str, str], rng: random.Random, alert_id: uuid.UUID,
             at: datetime) -> tuple[str, bytes]:
    """An alert as an edge sends it (no snapshot: this measures the record, not the picture)."""
    cam, zone, event_type = place
    x, y = rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.8)
    return f"gridwatch/v1/alerts/{cam['edge_id']}/{cam['id']}", json.dumps({
        "schema_version": 1, "alert_id": str(alert_id), "seq": 0, "kind": "new",
        "edge_id": cam["edge_id"], "camera_id": cam["id"], "zone_id": zone,
        "event_type": event_type, "label": "two_wheeler",
        "score": round(rng.uniform(0.5, 0.99), 3), "bbox": [x, y, x + 0.1, y + 0.15],
        "started_at": (at - timedelta(seconds=30)).isoformat(), "last_seen_at": at.isoformat(),
    }).encode()


def _stamped_id(rng: random.Random) -> uuid.UUID:
    """A UUID whose high 64 bits are the publish time in microseconds."""
    return uuid.UUID(int=(time.time_ns() // 1000) << 64 | rng.getrandbits(64))


def _publish(args: argparse.Namespace) -> None:
    import paho.mqtt.client as mqtt

    cams = json.loads(Path(args.cameras).read_text())
    rng = random.Random(args.seed)
    acked = 0
    lock = threading.Condition()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1
            lock.notify()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{args.seed}")
    client.on_publish = on_publish
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    now = datetime.now(UTC)
    places = _places(cams)
    if args.mode == "paced":  # ids and timestamps made at send time
        items = None
    elif args.mode == "warm":  # one alert per place: every place gets its open ticket
        items = [_payload(p, rng, uuid.uuid4(), now) for p in places]
    else:  # flat out over the places; redeliveries (the same bytes again) mixed in
        items = [_payload(rng.choice(places), rng, uuid.uuid4(), now)
                 for _ in range(args.n)]
        items += rng.sample(items, int(args.n * args.dup))
        rng.shuffle(items)
    total = args.n if items is None else len(items)
    t0 = time.monotonic()
    for i in range(total):
        if items is None:
            # Sleep only once a tick ahead: a wake-up (and paho's loop wake-up) per message
            # cost this process 0.42 of a core at 1,000/s, taken from the center it measures.
            delay = t0 + i / args.rate - time.monotonic()
            if delay > PACING_TICK_S:
                time.sleep(delay)
            place = rng.choice(places)
            if rng.random() < args.fresh:  # a violation at a spot with no open ticket yet
                place = (place[0], f"n{args.seed}-{i}", place[2])
            topic, payload = _payload(place, rng, _stamped_id(rng), datetime.now(UTC))
        else:
            topic, payload = items[i]
        with lock:
            while i - acked >= MAX_UNACKED:
                lock.wait(1)
        client.publish(topic, payload, qos=1)
    with lock:
        while acked < total:
            if not lock.wait(30):
                break
    elapsed = time.monotonic() - t0
    client.loop_stop()
    client.disconnect()
    print(json.dumps({"sent": total, "acked": acked, "elapsed_s": elapsed}), flush=True)


# --- websocket listener process -----------------------------------------------------------------

async def _listen(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    from center.transport.push import auth_message

    latencies: list[tuple[float, bool]] = []
    wall_alerts: list[float] = []
    stop = time.monotonic() + args.seconds
    counts = {"wall": 0, "dropped": 0, "wall_summaries": 0}

    tokens = json.loads(await asyncio.to_thread(Path(args.tokens).read_text))

    async def phone(worker: str | None) -> None:
        async with connect(args.url, max_queue=None, compression=None) as ws:
            # As the pages do: several events per frame when the center is busy.
            await ws.send(auth_message(tokens[worker or BENCH_OPERATOR], batch=True))
            while (left := stop - time.monotonic()) > 0:
                try:
                    text = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    return
                now_us = time.time_ns() // 1000
                parsed = json.loads(text)
                for event in parsed if isinstance(parsed, list) else [parsed]:
                    take(worker, event, now_us)

    def take(worker: str | None, event: dict[str, Any], now_us: int) -> None:
        if worker is None:
            counts["wall"] += 1
            # The hub coalesced for this screen (it fell behind): alerts were folded.
            counts["wall_summaries"] += event["type"] == "summary"
            if event["type"] == "alert":  # every alert, pushed at once
                sent_us = uuid.UUID(event["data"]["alert_id"]).int >> 64
                wall_alerts.append((now_us - sent_us) / 1000)
        elif (event["type"] == "ticket" and event["data"].get("last_alert_id")
              and not event["data"].get("catch_up")):
            sent_us = uuid.UUID(event["data"]["last_alert_id"]).int >> 64
            created = event["data"]["alert_count"] == 1  # a new ticket, dispatched
            latencies.append(((now_us - sent_us) / 1000, created))

    workers = args.workers.split(",")
    results = await asyncio.gather(*(phone(w) for w in [None, *workers]),
                                   return_exceptions=True)
    counts["dropped"] = sum(isinstance(r, Exception) for r in results)
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(
        {"latencies_ms": latencies, "wall_alert_ms": wall_alerts, **counts}))


# --- the run ------------------------------------------------------------------------------------

#: The bench's center signs tokens with this run's secret, so its screens and phones log in
#: without going through the (rate-limited) login: the wall as the district's duty operator.
BENCH_SECRET = secrets.token_urlsafe(48)
BENCH_OPERATOR = "op-01"


def _tokens(people: list[str]) -> dict[str, str]:
    from center.services.auth import issue_token

    return {p: issue_token(BENCH_SECRET, p, 3600)[0] for p in people}


class _Center:
    """The real center in a thread of this process, with ``AlertIntake.batch_max`` set."""

    def __init__(self, dsn: str, mqtt_port: int, district: Path, batch_max: int,
                 client_id: str, touch_interval_s: float = 0.0) -> None:
        import uvicorn

        from center.app import create_app, server_options
        from center.platform.settings import (
            CenterSettings,
            DatabaseSettings,
            HttpSettings,
            MqttSettings,
        )
        from center.services.alert_intake import AlertIntake
        from simulators.local_services import free_port

        AlertIntake.batch_max = batch_max
        AlertIntake.touch_interval_s = touch_interval_s
        self.port = free_port()
        settings = CenterSettings(
            db=DatabaseSettings(dsn=dsn, pool_min=2, pool_max=8),
            mqtt=MqttSettings(port=mqtt_port, client_id=client_id),
            http=HttpSettings(port=self.port), district=district, secret_key=BENCH_SECRET)
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                **server_options(settings.http))
        self.server = uvicorn.Server(config)
        # The loop ``gridwatch center run`` gets (``server_options`` names it: asyncio's own),
        # so the figures are the shipped center's.
        factory = config.get_loop_factory()
        self.loop = factory() if factory else asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=lambda: self.loop.run_until_complete(self.server.serve()), daemon=True)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the center's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __enter__(self) -> Self:
        import logging

        logging.getLogger("center").setLevel(logging.WARNING)
        self.thread.start()
        wait_for(lambda: self.server.started, 60, "center start")
        wait_for(lambda: self.app.state.ingest.connected, 30, "center mqtt")
        return self

    @property
    def stats(self) -> Any:
        return self.app.state.ingest.stats

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return spawn("bench.bench_ingest", *args, stdout=subprocess.PIPE)


def _publishers(port: int, cameras: Path, n: int, procs: int, mode: str, dup: float = 0.0,
                rate: float = 0, fresh: float = 0.0) -> list[subprocess.Popen[str]]:
    return [_spawn("publish", "--port", str(port), "--cameras", str(cameras), "--n",
                   str(n // procs), "--seed", str(1000 + i + int(rate)), "--dup", str(dup),
                   "--rate", str(rate / procs), "--mode", mode, "--fresh", str(fresh))
            for i in range(procs)]


def _finish(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=600)
        if p.returncode:
            raise RuntimeError(f"bench subprocess failed ({p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _done(stats: Any) -> int:
    """Messages fully handled (received counts a batch when it starts)."""
    return stats.stored + stats.duplicates + stats.dead_letters


def _verify(dsn: str, expected: int) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (alert_id, seq)) FROM alerts").fetchone()
        tickets, counted = conn.execute(
            "SELECT count(*), coalesce(sum(alert_count), 0) FROM tickets").fetchone()
    return {"rows": rows, "lost": expected - distinct, "duplicated": rows - distinct,
            "tickets": tickets, "ticket_alert_count": counted}


def _new_db(admin_dsn: str, name: str, template: str = "bench_warm") -> str:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)


def _drop_db(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _warm(admin_dsn: str, broker: Any, district: Path, cameras: Path) -> dict[str, Any]:
    """One alert at every place (4 per camera), so each has its open, dispatched ticket; the
    result is the template of every other test. Measures opening tickets (cold places)."""
    dsn = _new_db(admin_dsn, "bench_warm", "bench_template")
    with _Center(dsn, broker.port, district, 500, "bench-center-warm") as c:
        t0 = time.monotonic()
        sent = sum(r["sent"] for r in _finish(_publishers(broker.port, cameras, 0, 1, "warm")))
        wait_for(lambda: _done(c.stats) >= sent, 900, "warm-up", every=0.01)
        elapsed = time.monotonic() - t0
        stats = dict(vars(c.stats))
    import psycopg

    with psycopg.connect(dsn) as conn:  # no phone was connected: the latency test must not
        conn.execute("UPDATE notifications SET delivered_at = now()"  # start with a catch-up
                     " WHERE delivered_at IS NULL")
    return {"test": "warm", "sent": sent, "elapsed_s": elapsed,
            "tickets_per_s": stats["stored"] / elapsed, "stats": stats, **_verify(dsn, sent)}


def _backlog(admin_dsn: str, broker: Any, district: Path, cameras: Path,
             variant: tuple[str, int, float], key: str) -> dict[str, Any]:
    """Queue N alerts for the center's session while it is down, then let it drain them."""
    import paho.mqtt.client as mqtt

    label, batch_max, touch = variant
    dsn = _new_db(admin_dsn, f"bench_backlog_{key}")
    client_id = f"bench-center-backlog-{key}"
    session = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                          clean_session=False)
    session.connect("127.0.0.1", broker.port)
    session.loop_start()
    session.subscribe(ALERT_TOPICS, qos=1)
    time.sleep(0.5)
    session.loop_stop()
    session.disconnect()
    sent = sum(r["sent"] for r in _finish(
        _publishers(broker.port, cameras, N_ALERTS, 2, "flat", dup=0.05)))
    with _Center(dsn, broker.port, district, batch_max, client_id, touch) as center:
        wait_for(lambda: center.stats.received > 0, 60, "first message")
        t0 = time.monotonic()
        wait_for(lambda: _done(center.stats) >= sent, 900, "backlog drained", every=0.01)
        elapsed = time.monotonic() - t0
        stats = dict(vars(center.stats))
    check = _verify(dsn, N_ALERTS + _WARM_PLACES[0])
    return {"variant": label, "test": "backlog", "sent": sent, "elapsed_s": elapsed,
            "stored_per_s": stats["stored"] / elapsed, "stats": stats, **check}


def _live(admin_dsn: str, broker: Any, district: Path, cameras: Path,
          variant: tuple[str, int, float], key: str) -> dict[str, Any]:
    """Two publisher processes flat out while the center ingests."""
    label, batch_max, touch = variant
    dsn = _new_db(admin_dsn, f"bench_live_{key}")
    with _Center(dsn, broker.port, district, batch_max, f"bench-center-live-{key}",
                 touch) as c:
        t0 = time.monotonic()
        pubs = _finish(_publishers(broker.port, cameras, N_ALERTS, 2, "flat", dup=0.05))
        publish_s = max(r["elapsed_s"] for r in pubs)
        sent = sum(r["sent"] for r in pubs)
        wait_for(lambda: _done(c.stats) >= sent, 900, "live ingest done", every=0.01)
        elapsed = time.monotonic() - t0
        stats = dict(vars(c.stats))
    check = _verify(dsn, N_ALERTS + _WARM_PLACES[0])
    return {"variant": label, "test": "live", "sent": sent, "publish_s": publish_s,
            "elapsed_s": elapsed, "stored_per_s": stats["stored"] / elapsed, "stats": stats,
            **check}


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def _spread(label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst of the runs' p50 and p99, and whether the target held in each run."""
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    p50s = [r["p50_ms"] for r in runs]
    p99s = [r["p99_ms"] for r in runs]
    held = [r["p99_ms"] < LATENCY_TARGET_P99_MS and r["ws_clients_dropped"] == 0 for r in runs]
    return {"variant": label, "test": "latency spread", "runs": len(runs),
            "p50_median_ms": median(p50s), "p50_worst_ms": max(p50s),
            "p99_median_ms": median(p99s), "p99_worst_ms": max(p99s),
            "p99_each_ms": p99s, "target_p99_ms": LATENCY_TARGET_P99_MS,
            "target_held_runs": sum(held), "target_held_every_run": all(held),
            "load_before_each": [r["load_before"] for r in runs]}


def _latency(admin_dsn: str, broker: Any, district: Path, cameras: Path,
             variant: tuple[str, int, float], key: str, workers: list[str],
             tmp: Path) -> dict[str, Any]:
    label, batch_max, touch = variant
    load_before = os.getloadavg()[0]
    dsn = _new_db(admin_dsn, f"bench_latency_{key}")
    out = tmp / f"latency-{key}.json"
    with _Center(dsn, broker.port, district, batch_max, f"bench-center-lat-{key}",
                 touch) as c:
        tokens = tmp / f"tokens-{key}.json"
        tokens.write_text(json.dumps(_tokens([BENCH_OPERATOR, *workers])))
        listener = _spawn("listen", "--url", f"ws://127.0.0.1:{c.port}/ws", "--workers",
                          ",".join(workers), "--seconds", str(LATENCY_S + 8), "--out", str(out),
                          "--tokens", str(tokens))
        wait_for(lambda: c.app.state.center.hub.client_count >= len(workers) + 1, 30,
              "websocket clients")
        n = int(LATENCY_RATE * LATENCY_S)
        pubs = _finish(_publishers(broker.port, cameras, n, 1, "paced", rate=LATENCY_RATE,
                                   fresh=FRESH))
        listener.wait(LATENCY_S + 60)
        stats = dict(vars(c.stats))
    data = json.loads(out.read_text())
    lat = sorted(x for x, _ in data["latencies_ms"])
    new = sorted(x for x, created in data["latencies_ms"] if created)
    wall = sorted(data["wall_alert_ms"])
    check = _verify(dsn, n + _WARM_PLACES[0])
    # Gone before the next run: its autovacuum and checkpoints are no part of the next one.
    _drop_db(admin_dsn, f"bench_latency_{key}")
    return {"variant": label, "test": "latency", "sent": pubs[0]["sent"],
            "rate": pubs[0]["sent"] / pubs[0]["elapsed_s"], "samples": len(lat),
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99),
            "max_ms": lat[-1] if lat else float("nan"), "new_samples": len(new),
            "new_p50_ms": _pct(new, 50), "new_p99_ms": _pct(new, 99),
            "wall_alerts": len(wall), "wall_p50_ms": _pct(wall, 50),
            "wall_p99_ms": _pct(wall, 99),
            "wall_events": data["wall"], "wall_summaries": data["wall_summaries"],
            "ws_clients_dropped": data["dropped"], "stats": stats,
            "load_before": load_before, **check}


def _alerts_for_stages(cameras: Path, n: int) -> list[tuple[str, bytes]]:
    cams = json.loads(cameras.read_text())
    rng = random.Random(5)
    places = _places(cams)
    now = datetime.now(UTC)
    return [_payload(rng.choice(places), rng, uuid.uuid4(), now) for _ in range(n)]


def _store_stage(admin_dsn: str, messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """``queries.insert_alerts`` alone (no MQTT, no tickets, no pushes): the "stored
    idempotently" number. Batches of 500, one transaction each; then the same alerts again
    (every one a duplicate)."""
    import psycopg

    from center.store import alerts as queries
    from wire.protocol import parse_alert

    alerts = [parse_alert(payload) for _, payload in messages]
    dsn = _new_db(admin_dsn, "bench_store")

    async def run() -> tuple[float, float]:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                for i in range(0, len(alerts), 500):
                    async with conn.transaction():
                        await queries.insert_alerts(conn, alerts[i:i + 500])
                times.append(time.perf_counter() - t0)
            return times[0], times[1]

    new_s, dup_s = asyncio.run(run())
    return [{"test": "store", "variant": "insert_alerts", "n": len(alerts),
             "new_per_s": len(alerts) / new_s, "dup_per_s": len(alerts) / dup_s,
             **_verify(dsn, len(alerts) + _WARM_PLACES[0])}]


def _handle_stage(admin_dsn: str, broker: Any, district: Path,
                  messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """``Ingest.handle_batch`` without MQTT (validation, store, tickets, views, pushes and
    notification rows; no websocket clients), batches of 500: the center's own ceiling."""
    out = []
    for i, (label, batch_max, touch) in enumerate(VARIANTS):
        if batch_max == 1:
            continue
        dsn = _new_db(admin_dsn, f"bench_handle_{i}")
        with _Center(dsn, broker.port, district, batch_max, f"bench-center-handle-{i}",
                     touch) as c:
            ingest = c.app.state.ingest
            t0 = time.perf_counter()
            for j in range(0, len(messages), batch_max):
                c.call(ingest.handle_batch(messages[j:j + batch_max]))
            elapsed = time.perf_counter() - t0
            stats = dict(vars(c.stats))
        out.append({"test": "handle_batch", "variant": label, "n": len(messages),
                    "per_s": len(messages) / elapsed, "us_per_alert": elapsed / len(messages)
                    * 1e6, "stats": stats, **_verify(dsn, len(messages) + _WARM_PLACES[0])})
    return out


_WARM_PLACES = [0]


def main() -> None:
    tmp, district, d, cameras = generated_district("gridwatch-bench-ingest-")
    workers = sorted(p.id for p in d.people.values() if p.role == "worker" and p.post == "A")
    print(f"district: {len(d.cameras)} cameras, "
          f"{sum(a.level == 'micro_grid' for a in d.areas.values())} micro-grids, "
          f"{len(workers)} A-post workers; N={N_ALERTS}; latency {LATENCY_RATE}/s x "
          f"{LATENCY_S:.0f}s ({FRESH:.0%} at new places); {os.cpu_count()} CPU cores shared by "
          "publishers, broker, center and PostgreSQL", flush=True)
    results = []
    with services(tmp, "bench_template") as (admin, broker):
        w = _warm(admin, broker, district, cameras)
        _WARM_PLACES[0] = w["sent"]
        results.append(w)
        print(f"warm-up  {w['sent']} places, each a new ticket: {w['tickets_per_s']:.0f} tickets"
              f" opened and dispatched per s (batched); tickets {w['tickets']}, lost {w['lost']}",
              flush=True)
        skip = bool(os.environ.get("GRIDWATCH_BENCH_ONLY_LATENCY"))
        stage_msgs = [] if skip else _alerts_for_stages(cameras, N_ALERTS)
        for r in [] if skip else _store_stage(admin, stage_msgs):
            results.append(r)
            print(f"store    {r['variant']:28} {r['new_per_s']:8.0f} new alerts/s stored,"
                  f" {r['dup_per_s']:.0f}/s all duplicates (insert_alerts alone, 500 a"
                  f" transaction); rows {r['rows']}, lost {r['lost']}, duplicated"
                  f" {r['duplicated']}", flush=True)
        for r in [] if skip else _handle_stage(admin, broker, district, stage_msgs):
            results.append(r)
            print(f"handle   {r['variant']:28} {r['per_s']:8.0f} alerts/s"
                  f" ({r['us_per_alert']:.0f} us each; handle_batch alone, no MQTT, no"
                  f" clients; {r['stats']['touches_coalesced']} touch pushes coalesced);"
                  f" lost {r['lost']}, sum(alert_count) {r['ticket_alert_count']}", flush=True)
        if os.environ.get("GRIDWATCH_BENCH_ONLY_STAGES"):
            return
        for test in () if skip else (_backlog, _live):
            for i, variant in enumerate(VARIANTS):
                label = variant[0]
                r = test(admin, broker, district, cameras, variant, str(i))
                results.append(r)
                extra = f", publishers took {r['publish_s']:.1f}s" if "publish_s" in r else ""
                print(f"{r['test']:8} {label:28} {r['stored_per_s']:8.0f} alerts/s stored"
                      f"  ({r['stats']['stored']} new + {r['stats']['duplicates']} duplicates"
                      f" in {r['elapsed_s']:.1f}s{extra}; {r['stats']['batches']} batches,"
                      f" largest {r['stats']['largest_batch']}); rows {r['rows']}, lost"
                      f" {r['lost']}, duplicated {r['duplicated']}, tickets {r['tickets']},"
                      f" sum(alert_count) {r['ticket_alert_count']}", flush=True)
        for i, variant in enumerate(VARIANTS):
            label = variant[0]
            runs = []
            for run in range(LATENCY_RUNS):
                r = _latency(admin, broker, district, cameras, variant, f"{i}_{run}", workers,
                             tmp)
                runs.append(r)
                results.append(r)
                _print_latency(label, run, r)
            s = _spread(label, runs)
            results.append(s)
            print(f"latency  {label:28} over {s['runs']} runs: p50 median"
                  f" {s['p50_median_ms']:.0f} ms, worst {s['p50_worst_ms']:.0f} ms; p99 median"
                  f" {s['p99_median_ms']:.0f} ms, worst {s['p99_worst_ms']:.0f} ms; target p99 <"
                  f" {LATENCY_TARGET_P99_MS:.0f} ms with no client dropped held in"
                  f" {s['target_held_runs']}/{s['runs']} runs"
                  f" ({'met in every run' if s['target_held_every_run'] else 'NOT met'}); load"
                  f" average before each run: "
                  + ", ".join(f"{x:.1f}" for x in s["load_before_each"]), flush=True)
    write_results(tmp, results)


def _print_latency(label: str, run: int, r: dict[str, Any]) -> None:
    print(f"latency  {label:28} run {run + 1} (load {r['load_before']:.1f}) at"
          f" {r['rate']:.0f}/s: p50 {r['p50_ms']:.1f} ms,"
          f" p95 {r['p95_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.0f} ms"
          f" over {r['samples']} pushes to phones; new tickets ({r['new_samples']}):"
          f" p50 {r['new_p50_ms']:.1f} ms, p99 {r['new_p99_ms']:.1f} ms;"
          f" wall alert events ({r['wall_alerts']}): p50 {r['wall_p50_ms']:.1f} ms,"
          f" p99 {r['wall_p99_ms']:.1f} ms;"
          f" {r['wall_events']} wall events ({r['wall_summaries']} summaries),"
          f" {r['ws_clients_dropped']} clients dropped;"
          f" lost {r['lost']}, duplicated {r['duplicated']},"
          f" {r['stats']['batches']} batches, {r['stats']['touches_coalesced']}"
          f" touch pushes coalesced, slowest batch {r['stats']['slowest_batch_ms']:.0f}"
          " ms", flush=True)


def _publish_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cameras", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dup", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--mode", choices=("warm", "flat", "paced"), default="flat")
    p.add_argument("--fresh", type=float, default=0.0)


def _listen_options(w: argparse.ArgumentParser) -> None:
    w.add_argument("--url", required=True)
    w.add_argument("--workers", required=True)
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--tokens", required=True, help="JSON: person id -> bearer token")


if __name__ == "__main__":
    helper_cli({"publish": (_publish, _publish_options), "listen": (_listen, _listen_options)})
