"""CPU per alert by stage in one center process: where the ~240-380 µs of Python per alert go
(issue 16), measured so that other load on a shared box does not change the figure much.

Throughput and latency on a shared 2-core box say as much about the other engineers' tests as
about the center; CPU time per alert does not (much): this counts the center thread's own CPU
(``time.thread_time`` of its event loop) and PostgreSQL's (utime + stime of the postmaster's
children, from ``/proc``) per alert, not wall time.

The real center (``create_app``, its event loop in a thread, PostgreSQL and Mosquitto of its
own) on the generated town (1,150 cameras, 4,600 places, every place with its open, dispatched
ticket first), with one wall screen and a phone for every A-post worker attached to the hub as
in-process sockets that take every message at once (the websocket framing is not counted:
uvicorn's, the same whatever the center does). Then N alerts as the latency test sends them
(random places, 1 % at a place with no open ticket: a new ticket, dispatched) go through
``Ingest.handle_batch`` in batches of ``GRIDWATCH_BENCH_CPU_BATCH`` (MQTT itself not counted:
paho's, per message), each batch followed by waiting until the phone path is done (the
notification rows written and every message handed to its socket), so the phone path's work
is in the figure. ``RUNS`` runs, one fresh database each; median and worst. A last profiled run
(cProfile, which slows Python down; shares only) says which stage the time goes to.

Run: ``.venv/bin/python -m bench intake_cpu`` (GRIDWATCH_BENCH_CPU_N alerts per run, default
5,000; GRIDWATCH_BENCH_CPU_BATCH, default 50: the size batches have at 1,000 alerts/s;
GRIDWATCH_BENCH_CPU_RUNS, default 3).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_ingest import _Center, _new_db, _payload, _places, _stamped_id
from bench.harness import generated_district, services, write_results

N = int(os.environ.get("GRIDWATCH_BENCH_CPU_N", "5000"))
BATCH = int(os.environ.get("GRIDWATCH_BENCH_CPU_BATCH", "50"))
RUNS = max(1, int(os.environ.get("GRIDWATCH_BENCH_CPU_RUNS", "3")))
FRESH = 0.01

#: Stage -> the functions whose cumulative times it is the sum of (``dir/file:function``); a
#: function a version lacks reads 0, so one table fits the code before and after a change.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("decode + checks (parse_alert, check_alert)", ("transport/ingest.py:_alert",)),
    ("store alerts (keys + rows)", ("store/alerts.py:insert_alerts", "store/alerts.py:claim_keys",
                                    "store/alerts.py:insert_rows")),
    ("  of which content_digest", ("store/alerts.py:content_digest",)),
    ("redeliveries (_conflicts)", ("services/alert_intake.py:_conflicts",)),
    ("ticket work (_ticket_work)", ("services/alert_intake.py:_ticket_work",)),
    ("  of which attach_to_open (one UPDATE)", ("services/tickets.py:attach_to_open",)),
    ("  of which new tickets (open_or_attach_many)", ("services/tickets.py:open_or_attach_many",)),
    ("link alerts to tickets", ("store/alerts.py:link_alerts_to_tickets",)),
    ("wall alert pushes (_push_alert)", ("services/alert_intake.py:_push_alert",)),
    ("ticket announce (views.ticket, wall push, queue)", ("transport/fanout.py:__call__",)),
    ("  of which views.ticket", ("services/views.py:ticket",)),
    ("notification rows (Notifications._insert)", ("notify/service.py:_insert",)),
    ("phone pushes (Hub.send_to)", ("transport/push.py:send_to",)),
    ("  all event serialisation (push._text)", ("transport/push.py:_text",)),
    ("socket send loops (Hub._send_loop)", ("transport/push.py:_send_loop",)),
    ("receipts (Notifications._write_receipts)", ("notify/service.py:_write_receipts",)),
    ("this bench waiting for the phone path", ("bench/bench_intake_cpu.py:_settled",)),
)


class _Socket:
    """A websocket that takes every message at once (counts them)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_text(self, text: str) -> None:
        self.sent += 1

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


def _pg_cpu_s(pg_dir: Path) -> float:
    """CPU seconds (user + system) of PostgreSQL's postmaster and its children so far."""
    master = int((pg_dir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == master or int(fields[1]) == master:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _alerts(cams: list[dict[str, str]], n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    places = _places(cams)
    out = []
    for i in range(n):
        place = rng.choice(places)
        if rng.random() < FRESH:
            place = (place[0], f"n{seed}-{i}", place[2])
        out.append(_payload(place, rng, _stamped_id(rng), datetime.now(UTC)))
    return out


async def _attach_screens(hub: Any, workers: list[str]) -> list[_Socket]:
    """A wall and a phone per worker, registered with the hub as ``serve`` does."""
    from center.transport.push import _Client

    sockets = []
    for worker in [None, *workers]:
        ws = _Socket()
        client = _Client(ws, worker, person_id=worker or "op-01",  # type: ignore[arg-type]
                         batch=True)  # as the pages ask (live-socket.js)
        hub.register(client) if hasattr(hub, "register") else hub._clients.add(client)
        asyncio.get_running_loop().create_task(hub._send_loop(client))
        sockets.append(ws)
    return sockets


async def _settled(app: Any, sockets: list[_Socket]) -> None:
    """Wait until the phone path has caught up: no notification job queued, every outbox
    empty, and nothing more handed to a socket over three polls (a job the writer has taken
    is in no queue while its rows are written)."""
    notify = app.state.center.announce.notify
    clients = app.state.center.hub._clients
    last, calm = -1, 0
    while calm < 3:
        await asyncio.sleep(0.002)
        sent = sum(s.sent for s in sockets)
        busy = notify._jobs.qsize() or any(c.outbox for c in clients)
        calm = 0 if busy or sent != last else calm + 1
        last = sent


async def _feed(app: Any, sockets: list[_Socket], messages: list[tuple[str, bytes]],
                profile: cProfile.Profile | None) -> float:
    """All messages through ``handle_batch`` in batches, each settled; this thread's CPU s."""
    ingest = app.state.ingest
    t0 = time.thread_time()
    if profile is not None:
        profile.enable()
    for i in range(0, len(messages), BATCH):
        await ingest.handle_batch(messages[i:i + BATCH])
        await _settled(app, sockets)
    if profile is not None:
        profile.disable()
    return time.thread_time() - t0


def _stage_table(profile: cProfile.Profile) -> list[dict[str, Any]]:
    """Each stage's share of the profiled run's CPU: its functions' cumulative time over the
    time in all functions but the event loop's wait for sockets (``epoll.poll``: idle)."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_name: dict[str, float] = {}
    busy = 0.0
    for (path, _line, func), (_cc, _nc, tt, ct, _callers) in stats.items():
        key = f"{Path(path).parent.name}/{Path(path).name}:{func}"
        by_name[key] = by_name.get(key, 0.0) + ct
        if "epoll" not in func:
            busy += tt
    return [{"stage": stage, "share": sum(by_name.get(k, 0.0) for k in names) / busy}
            for stage, names in STAGES]


def main() -> None:
    tmp, district, d, _ = generated_district("gridwatch-bench-intake-cpu-")
    cams = [{"id": c.id, "edge_id": c.edge_id or ""} for c in d.cameras.values()]
    workers = sorted(p.id for p in d.people.values() if p.role == "worker" and p.post == "A")
    print(f"{len(cams)} cameras, {len(workers)} phones + 1 wall; {N} alerts a run in batches of"
          f" {BATCH}; {RUNS} runs; load average {os.getloadavg()[0]:.2f}", flush=True)
    results: list[dict[str, Any]] = []
    with services(tmp, "bench_template") as (admin, broker):
        warm_dsn = _new_db(admin, "cpu_warm", "bench_template")
        with _Center(warm_dsn, broker.port, district, 500, "bench-cpu-warm") as c:
            rng = random.Random(1)
            now = datetime.now(UTC)
            warm = [_payload(p, rng, uuid.uuid4(), now) for p in _places(cams)]
            for i in range(0, len(warm), 500):
                c.call(c.app.state.ingest.handle_batch(warm[i:i + 500]))
        import psycopg

        with psycopg.connect(warm_dsn) as conn:
            conn.execute("UPDATE notifications SET delivered_at = now()"
                         " WHERE delivered_at IS NULL")
        runs = []
        for run in range(RUNS + 1):
            profiled = run == RUNS
            dsn = _new_db(admin, f"cpu_run_{run}", "cpu_warm")
            messages = _alerts(cams, N, 100 + run)
            load = os.getloadavg()[0]
            with _Center(dsn, broker.port, district, 500, f"bench-cpu-{run}") as c:
                sockets = c.call(_attach_screens(c.app.state.center.hub, workers))
                profile = cProfile.Profile() if profiled else None
                pg0, w0 = _pg_cpu_s(tmp / "pg"), time.perf_counter()
                center_s = c.call(_feed(c.app, sockets, messages, profile))
                wall_s, pg_s = time.perf_counter() - w0, _pg_cpu_s(tmp / "pg") - pg0
                stored = c.stats.stored
            r = {"run": run + 1, "profiled": profiled, "n": N, "stored": stored,
                 "center_us": center_s / N * 1e6, "pg_us": pg_s / N * 1e6,
                 "wall_us": wall_s / N * 1e6, "load_before": load}
            if profile is not None:
                r["stages"] = _stage_table(profile)
                profile.dump_stats(tmp / "profile.pstats")
            else:
                runs.append(r)
            results.append(r)
            print(f"run {r['run']}{' (profiled)' if profiled else ''} (load {load:.2f}):"
                  f" center {r['center_us']:.0f} µs CPU/alert, PostgreSQL {r['pg_us']:.0f}"
                  f" µs CPU/alert, {r['wall_us']:.0f} µs wall/alert; stored {stored}",
                  flush=True)
        for key in ("center_us", "pg_us"):
            values = [r[key] for r in runs]
            print(f"{key}: median {statistics.median(values):.0f}, worst {max(values):.0f}")
        center_us = statistics.median(r["center_us"] for r in runs)
        print("stage (share of the profiled run's CPU; µs = share x the unprofiled median):")
        for row in results[-1].get("stages", []):
            print(f"  {row['stage']:50} {row['share']:6.1%}  ~{row['share'] * center_us:4.0f} µs")
    write_results(tmp, results)
    print(json.dumps({"center_us_median": statistics.median(r["center_us"] for r in runs),
                      "pg_us_median": statistics.median(r["pg_us"] for r in runs)}))
