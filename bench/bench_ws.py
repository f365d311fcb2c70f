"""Wall-screen update latency: alert published over MQTT -> the alert message on N wall-screen
websockets (200 and 1,000 clients), for several websocket server variants side by side.

Starts its own PostgreSQL and Mosquitto (simulators.local_services); for each variant and client
count, a fresh database, the real center (``create_app`` under uvicorn) in a subprocess, and the
wall-screen clients (asyncio + ``websockets``, as a browser would: permessage-deflate offered) in
one or two further processes. Alerts (with a small evidence JPEG) are published at a steady rate
at the demo district's cameras, a few places each, so most attach to an open ticket and some
open one. Every client records when each ``alert`` message arrives; latency is receive time -
publish time over every (client, alert) pair (same machine clock). The first alerts are warm-up.

Variants: uvicorn's websocket implementation (``websockets-sansio``, the one the center runs,
the legacy ``websockets`` one, and ``wsproto`` when installed) and permessage-deflate on / off
(``ws_per_message_deflate``). Each message is serialised once per publish by the hub and shared
by all clients already; with deflate on, each connection still compresses it on its own.

Run: ``.venv/bin/python -m bench ws`` (GRIDWATCH_BENCH_WS_S seconds of publishing per run,
default 15; GRIDWATCH_BENCH_WS_RATE alerts/s, default 10; GRIDWATCH_BENCH_WS_CLIENTS, default
"200,1000"). Everything shares this machine's cores: the numbers are for the whole system on
one box.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import secrets
import signal
import subprocess
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import (
    helper_cli,
    serve_center,
    serve_options,
    services,
    spawn,
    wait_for,
    write_results,
)
from simulators.local_services import stop_process

SECONDS = float(os.environ.get("GRIDWATCH_BENCH_WS_S", "15"))
RATE = float(os.environ.get("GRIDWATCH_BENCH_WS_RATE", "10"))
CLIENTS = tuple(int(x) for x in os.environ.get("GRIDWATCH_BENCH_WS_CLIENTS", "200,1000").split(","))
WARMUP = 5  # first alerts of a run not counted
CLIENTS_PER_PROCESS = 500
TARGET_P99_MS = {200: 50.0, 1000: 150.0}
#: (label, uvicorn ws implementation, permessage-deflate). The hub is center/transport/push.py as
#: shipped: one sender task per client (an earlier hub made a task and an asyncio.wait per
#: message and cost twice the CPU; its numbers are kept in docs/performance.md).
VARIANTS: list[tuple[str, str, bool]] = [
    ("sansio, deflate on", "websockets-sansio", True),
    ("sansio, deflate off (shipped)", "websockets-sansio", False),
    ("legacy websockets, deflate off", "websockets", False),
]
if importlib.util.find_spec("wsproto") is not None:
    VARIANTS.append(("wsproto, deflate off", "wsproto", False))
#: The bench's center signs tokens with this run's secret (no login round trips, no rate limit).
BENCH_SECRET = secrets.token_urlsafe(48)
ONLY = os.environ.get("GRIDWATCH_BENCH_WS_VARIANTS")  # e.g. "1,4": numbers from the list
if ONLY:
    VARIANTS = [VARIANTS[int(i) - 1] for i in ONLY.split(",")]


# --- the center, in a subprocess ----------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    """The center with this variant's websocket server (``--ws``, ``--deflate``)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # uvicorn's legacy ws impl
    serve_center(args, "bench-ws", ws=args.ws, ws_per_message_deflate=args.deflate == "on")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- wall-screen clients, in a subprocess -------------------------------------------------------

async def _clients(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    from center.transport.push import auth_message

    received: list[dict[str, float]] = [{} for _ in range(args.n)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    dropped = 0

    async def one(i: int, ready: asyncio.Event) -> None:
        nonlocal dropped
        got = received[i]
        try:
            async with connect(args.url, max_queue=None, open_timeout=60,
                               ping_interval=None) as ws:
                await ws.send(auth_message(args.token))
                await ws.recv()  # the hello: logged in
                ready.set()
                async for text in ws:
                    now = time.time()
                    if '"type":"alert"' in text:
                        data = json.loads(text)["data"]
                        got.setdefault(data["alert_id"], now)
        except Exception:  # noqa: BLE001 (counted as dropped; its messages show as lost)
            dropped += 1
            ready.set()

    tasks = []
    for i in range(args.n):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(one(i, ready)))
        await ready.wait()
    print("ready", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(Path(args.out).write_text,
                            json.dumps({"received": received, "dropped": dropped}))


# --- the run ------------------------------------------------------------------------------------

def _spawn(*args: str, stdout: int | None = None) -> subprocess.Popen[str]:
    return spawn("bench.bench_ws", *args, stdout=stdout)


def _health(url: str) -> dict[str, Any] | None:
    import httpx

    try:
        r = httpx.get(url + "/healthz", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def _run(admin_dsn: str, mqtt_port: int, label: str, ws: str, deflate: bool, n: int,
         tmp: Path, seq: int) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    import psycopg

    from simulators.local_services import free_port
    from tests.mqtt_helpers import tiny_jpeg
    from wire.protocol import Alert, alert_topic

    db = f"bench_ws_{seq}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db} TEMPLATE bench_ws_template")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    center = _spawn("serve", "--dsn", psycopg.conninfo.make_conninfo(admin_dsn, dbname=db),
                    "--mqtt-port", str(mqtt_port), "--port", str(port), "--ws", ws,
                    "--deflate", "on" if deflate else "off", "--secret", BENCH_SECRET)
    procs: list[subprocess.Popen[str]] = []
    outs: list[Path] = []
    try:
        wait_for(lambda: (h := _health(url)) and h["mqtt"], 60, "center start", every=0.1)
        # Wall screens log in as the duty operator; the token is signed with this run's secret.
        from center.services.auth import issue_token

        token = issue_token(BENCH_SECRET, "op-01", 3600)[0]
        ws_url = url.replace("http://", "ws://") + "/ws"
        t0 = time.monotonic()
        left = n
        while left > 0:
            k = min(CLIENTS_PER_PROCESS, left)
            out = tmp / f"clients-{seq}-{len(procs)}.json"
            procs.append(_spawn("clients", "--url", ws_url, "--token", token, "--n", str(k),
                                "--out", str(out),
                                stdout=subprocess.PIPE))
            outs.append(out)
            left -= k
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"client process failed: {line!r}")
        connect_s = time.monotonic() - t0
        wait_for(lambda: (_health(url) or {}).get("websocket_clients") == n, 30, "clients",
                 every=0.1)

        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{seq}")
        pub.connect("127.0.0.1", mqtt_port)
        pub.loop_start()
        rng = random.Random(seq)
        jpeg = tiny_jpeg()
        cams = ("cam-vn-01", "cam-bj-01", "cam-vtest")
        sent: dict[str, float] = {}
        total = int(SECONDS * RATE) + WARMUP
        cpu0 = [_cpu_s(p.pid) for p in (center, *procs)]
        start = time.monotonic()
        for i in range(total):
            time.sleep(max(0.0, start + i / RATE - time.monotonic()))
            now = datetime.now(UTC)
            alert = Alert(alert_id=uuid.uuid4(), seq=0, kind="new", edge_id="edge-demo",
                          camera_id=rng.choice(cams), zone_id=f"z{rng.randrange(4)}",
                          event_type=rng.choice(("0506", "0504")), label="two_wheeler",
                          score=0.8, bbox=(0.6, 0.5, 0.7, 0.8),
                          started_at=now - timedelta(seconds=30), last_seen_at=now,
                          snapshot_jpeg=jpeg)
            payload = alert.model_dump_json()
            if i >= WARMUP:
                sent[str(alert.alert_id)] = time.time()
            pub.publish(alert_topic(alert.edge_id, alert.camera_id), payload, qos=1)
        time.sleep(2.0)
        wall = time.monotonic() - start
        cpu = [(_cpu_s(p.pid) - c0) / wall for p, c0 in zip((center, *procs), cpu0, strict=True)]
        pub.loop_stop()
        pub.disconnect()
        health = _health(url) or {}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        stop_process(center, signal.SIGINT, 30)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    lat: list[float] = []
    lost = dropped = 0
    per_alert: dict[str, list[float]] = {a: [] for a in sent}
    for out in outs:
        data = json.loads(out.read_text())
        dropped += data["dropped"]
        for got in data["received"]:
            for alert_id, at in sent.items():
                if alert_id in got:
                    lat.append((got[alert_id] - at) * 1000)
                    per_alert[alert_id].append(got[alert_id])
                else:
                    lost += 1
    # Split publish -> screen into ingest (publish -> first screen) and fan-out (first screen ->
    # each screen): a stall in ingest delays an alert for every screen at once.
    first = [(min(v) - sent[a]) * 1000 for a, v in per_alert.items() if v]
    spread = [(x - min(v)) * 1000 for v in per_alert.values() for x in v]
    return {"variant": label, "ws": ws, "deflate": deflate, "clients": n,
            "rate": RATE, "center_cpu": cpu[0], "clients_cpu": sum(cpu[1:]),
            "alerts": len(sent), "samples": len(lat), "lost": lost, "clients_dropped": dropped,
            "connect_s": round(connect_s, 1), "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
            "max_ms": max(lat, default=float("nan")),
            "first_p50_ms": _pct(first, 50), "first_p99_ms": _pct(first, 99),
            "fanout_p50_ms": _pct(spread, 50), "fanout_p99_ms": _pct(spread, 99),
            "clients_at_end": health.get("websocket_clients")}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gridwatch-bench-ws-"))
    print(f"{RATE:.0f} alerts/s for {SECONDS:.0f}s (+{WARMUP} warm-up) per run, clients "
          f"{'/'.join(map(str, CLIENTS))}; {os.cpu_count()} CPU cores shared by the clients, "
          "broker, center and PostgreSQL", flush=True)
    results = []
    with services(tmp, "bench_ws_template") as (admin, broker):
        seq = 0
        for n in CLIENTS:
            for label, ws, deflate in VARIANTS:
                seq += 1
                r = _run(admin, broker.port, label, ws, deflate, n, tmp, seq)
                results.append(r)
                target = TARGET_P99_MS.get(n)
                verdict = "" if target is None else (
                    f"  (target p99 < {target:.0f} ms:"
                    f" {'ok' if r['p99_ms'] < target else 'MISSED'})")
                print(f"{n:5} clients  {label:42} p50 {r['p50_ms']:7.1f} ms  p99 "
                      f"{r['p99_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  over {r['samples']}"
                      f" deliveries, late/lost {r['lost']}, dropped {r['clients_dropped']};"
                      f" CPU cores: center {r['center_cpu']:.2f}, clients"
                      f" {r['clients_cpu']:.2f}{verdict}", flush=True)
                print(f"{'':14}{'':42} publish -> first screen p50 {r['first_p50_ms']:.1f} ms,"
                      f" p99 {r['first_p99_ms']:.1f} ms; fan-out (first -> each screen) p50"
                      f" {r['fanout_p50_ms']:.1f} ms, p99 {r['fanout_p99_ms']:.1f} ms",
                      flush=True)
    write_results(tmp, results)


def _serve_options(s: argparse.ArgumentParser) -> None:
    serve_options(s)
    s.add_argument("--ws", required=True)
    s.add_argument("--deflate", choices=("on", "off"), required=True)


def _clients_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--url", required=True)
    c.add_argument("--token", required=True, help="sent as the first message")
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--out", required=True)


if __name__ == "__main__":
    helper_cli({"serve": (_serve, _serve_options), "clients": (_clients, _clients_options)})
