"""The capacity model for a city of 100,000 cameras (docs/scaling.md, "Capacity model for
100,000 cameras"): what a city costs in center cores, broker messages, database rows and bytes
and picture and clip storage, worked out from measured per-unit costs and stated assumptions,
so that the table can be redone when a cost or an assumption changes.

Two parts. ``measure()`` stores a realistic sample through the real center code path and
reads what it cost: the generated town (1,150 cameras, 4,600 places), the real center
(``create_app``, its own PostgreSQL and Mosquitto), violations sent as an edge sends them
(``new``, ``UPDATES`` updates, ``end``; every message with an evidence snapshot encoded as the
edge encodes it from a frame of the shared street clips, the ``new`` with the kept full frame)
through ``Ingest.handle_batch``, a wall and every A-post worker's phone attached to the hub
(so the notification rows and receipts are written), then every ticket it opened taken
through accept, resolve and verify by ``tickets.apply`` and announced, as the API does. Rows
and ``pg_total_relation_size`` per table (partitions summed) are read before and after, and
again after ``VACUUM FULL`` (no dead row versions: the compact size). ``model()`` then turns
those and the figures measured elsewhere (``MEASURED``, each with its source) into the table.

Run: ``.venv/bin/python -m bench capacity`` (GRIDWATCH_BENCH_CAPACITY_N alert messages in the
sample, default 10,000). Figures that are assumptions are in ``Assumptions``; change them
there, not in the doc.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

N = int(os.environ.get("GRIDWATCH_BENCH_CAPACITY_N", "10000"))
UPDATES = 2  # per violation, between its new and its end (Assumptions.messages_per_violation)
BATCH = 50
CLIPS = ("media/cn_beijing_uadetrac_intersection_8s.mp4",
         "media/vn_truccat_intersection_pavement_vendor_6s.mp4")

#: Per-unit costs measured elsewhere in this repository, with where each comes from.
MEASURED: dict[str, tuple[float, str]] = {
    "center_us_per_alert": (690.0, (
        "docs/performance.md 'CPU per alert by stage': center event loop, batches of 50"
        " (1,000 alerts/s), median after")),
    "center_us_per_alert_backlog": (513.0, "same, batches of 500 (a backlog)"),
    "pg_us_per_alert": (423.0, "same, PostgreSQL CPU per alert, batches of 50"),
    "store_alerts_per_s": (15600.0, (
        "docs/performance.md 'Throughput and latency': insert_alerts alone, low end of"
        " 15,600-22,300/s on 2 shared cores")),
    "ws_us_per_message_client": (17.0, (
        "docs/performance.md 'Wall-screen websocket fan-out': 0.34 center cores for 1,000"
        " walls x 10 alerts/s x 2 messages (lean hub)")),
    "camera_mbit_s_low": (2.2, "docs/performance.md 'Live view': Beijing 960x540 on the wire"),
    "camera_mbit_s_high": (3.5, "docs/performance.md 'Live view': Vietnam 1280x720 on the wire"),
    "broker_msgs_per_s_here": (3995.0, (
        "docs/performance.md 'Throughput and latency': Mosquitto 2.0 carried the backlog"
        " drain at 3,995 alerts/s QoS 1, sharing 2 cores with the center (a floor)")),
}


@dataclass(frozen=True)
class Assumptions:
    """Nothing here is measured: each is a planning input, to be replaced by a city's figures."""

    cameras: int = 100_000
    #: Violations a camera confirms per day (after dwell), across both event types.
    violations_per_camera_day: float = 10.0
    #: Share of a day's violations in its busiest hour (a morning market, the school run).
    peak_hour_share: float = 0.10
    #: Storm: the busiest hour times this (rain stops and every vendor comes out; a detector
    #: that misfires on one camera group until it is rolled back).
    storm_factor: float = 10.0
    #: new + updates + end; ``update`` only when a violation changes materially.
    messages_per_violation: int = 2 + UPDATES
    #: Violations that open a ticket; the others attach to their place's open ticket.
    tickets_per_violation: float = 0.5
    cameras_per_edge: int = 8
    edge_heartbeat_s: float = 10.0  # edge/config.py heartbeat_s default
    camera_frame_every_s: float = 60.0  # edge/config.py frame_every_s default
    #: Violation clip: dwell (two_wheeler default 60 s) + pre-roll 5 + post-roll 5; end clip 5.
    clip_seconds_per_violation: float = 60 + 5 + 5 + 5
    wall_screens: int = 50
    #: Workers with the phone app on duty on a day, each for ``duty_hours``, sending a position
    #: every ``position_every_s`` (presence.min_interval_s, the most that is stored).
    workers_on_duty: int = 5_000
    duty_hours: float = 8.0
    position_every_s: float = 5.0
    position_days: int = 30  # presence.retention_days
    #: A center replica runs at most this share of its one event-loop core.
    replica_target_utilisation: float = 0.5
    #: TimescaleDB native compression on the alert rows: the vendor's typical ratio,
    #: not measured here (TimescaleDB is not installed). JPEGs do not compress.
    timescale_compression_ratio: float = 10.0
    #: Default retention (center/platform/settings.py): days; None = kept forever.
    alert_days: int = 400
    snapshot_days: int = 180
    frame_days: int = 30
    clip_days: int = 30
    alert_key_days: int = 8  # MAX_ALERT_AGE (7 days) + 1


def _evidence() -> tuple[list[bytes], list[tuple[bytes, int, int]], list[int]]:
    """Snapshots (≤ 960 px, quality 80, a box drawn: edge/evidence.py), kept full frames
    (quality 90, undrawn) and 640-px camera frames (the engineers' zone pictures), encoded
    from a frame of each shared street clip."""
    import cv2

    from edge.evidence import JPEG_QUALITY, MAX_SIDE
    from wire.paths import shared_file

    snaps: list[bytes] = []
    frames: list[tuple[bytes, int, int]] = []
    zone_pictures: list[bytes] = []
    for clip in CLIPS:
        cap = cv2.VideoCapture(str(shared_file(clip)))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise RuntimeError(f"could not read a frame of {clip}")
        h, w = image.shape[:2]
        frames.append((cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(),
                       w, h))
        for side, out in ((MAX_SIDE, snaps), (640, zone_pictures)):
            scale = min(1.0, side / max(h, w))
            small = cv2.resize(image, (round(w * scale), round(h * scale)),
                               interpolation=cv2.INTER_AREA)
            if out is snaps:
                cv2.rectangle(small, (100, 100), (220, 260), (0, 0, 255), 2)
            out.append(cv2.imencode(".jpg", small,
                                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
    return snaps, frames, [len(z) for z in zone_pictures]


def _messages(cams: list[dict[str, str]], n: int, snaps: list[bytes],
              frames: list[tuple[bytes, int, int]],
              ) -> Iterator[tuple[str, bytes]]:
    """``n`` alert messages: n / (UPDATES + 2) violations at random places, sent round by
    round (every violation's new, then each update, then every end); made as they are sent
    (10,000 with their pictures are a gigabyte)."""
    from bench.bench_ingest import _places

    rng = random.Random(7)
    places = _places(cams)
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    violations = [(rng.choice(places), uuid.uuid4(), i % len(snaps))
                  for i in range(n // (UPDATES + 2))]
    for seq in range(UPDATES + 2):
        kind = "new" if seq == 0 else "end" if seq == UPDATES + 1 else "update"
        for (cam, zone, event_type), alert_id, pic in violations:
            x, y = rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.8)
            body: dict[str, Any] = {
                "schema_version": 1, "alert_id": str(alert_id), "seq": seq, "kind": kind,
                "edge_id": cam["edge_id"], "camera_id": cam["id"], "zone_id": zone,
                "event_type": event_type, "label": "two_wheeler",
                "score": round(rng.uniform(0.5, 0.99), 3), "bbox": [x, y, x + 0.1, y + 0.15],
                "started_at": t0.isoformat(),
                "last_seen_at": (t0 + timedelta(minutes=5 * seq)).isoformat(),
                "snapshot_jpeg": base64.b64encode(snaps[pic]).decode()}
            if kind == "new":
                jpeg, width, height = frames[pic]
                body["frame"] = {"jpeg": base64.b64encode(jpeg).decode(), "width": width,
                                 "height": height, "blurred": True, "boxes": []}
            yield (f"gridwatch/v1/alerts/{cam['edge_id']}/{cam['id']}",
                   json.dumps(body).encode())


def _tables(dsn: str) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes with indexes and TOAST); a partitioned table's partitions summed
    into it and not listed themselves."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        names = conn.execute(
            "SELECT c.relname, c.relkind = 'p' FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " ORDER BY 1").fetchall()
        out = {}
        for name, partitioned in names:
            rows = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
                " FROM pg_partition_tree(%s::regclass)" if partitioned
                else "SELECT pg_total_relation_size(%s::regclass)", (name,)).fetchone()
            assert rows is not None and size is not None
            out[name] = (int(rows[0]), int(size[0]))
    return out


def _delta(after: dict[str, tuple[int, int]], before: dict[str, tuple[int, int]],
           ) -> dict[str, dict[str, float]]:
    out = {}
    for name, (rows, size) in after.items():
        r0, s0 = before.get(name, (0, 0))
        if rows > r0:
            out[name] = {"rows": rows - r0, "bytes": size - s0,
                         "bytes_per_row": (size - s0) / (rows - r0)}
    return out


async def _lifecycle(app: Any, ticket_ids: list[int]) -> None:
    """Accept, resolve and verify every ticket, each announced, as the tickets API does."""
    from center.services import tickets as service

    center = app.state.center
    ctx = center.ctx
    for tid in ticket_ids:
        for action in ("accept", "resolve", "verify"):
            async with center.pool.connection() as conn, conn.transaction():
                t = await service.get(conn, tid)
                leader = ctx.district.leader_of(t.micro_grid_id)
                actor = leader.id if action == "verify" and leader else t.assignee_id
                assert actor is not None, f"ticket {tid} has no assignee"
                change = await service.apply(conn, ctx, tid, action, actor_id=actor,
                                             role=ctx.role_of(actor) or "worker")
            center.announce(change)


async def _positions(app: Any, workers: list[str], per_worker: int) -> None:
    """Check the workers in (the presence service), then store ``per_worker`` positions each,
    5 s apart (the thinning interval), through the store's writer the service uses."""
    from center.store import presence as store

    presence, ctx = app.state.presence, app.state.center.ctx
    t0 = ctx.clock.now() - timedelta(hours=1)
    for pid in workers:
        await presence.set_duty(ctx.district.people[pid], True)
        async with presence.pool.connection() as conn, conn.transaction():
            for k in range(per_worker):
                await store.store_position(
                    conn, store.Position(pid, t0 + timedelta(seconds=5 * k), 120.15 + k * 1e-5,
                                         30.27, 8.0), timedelta(seconds=5))


def measure() -> dict[str, Any]:
    """The sample's rows and bytes per table, per alert message and per ticket."""
    import psycopg

    from bench.bench_ingest import _Center, _new_db
    from bench.bench_intake_cpu import _attach_screens, _settled
    from bench.harness import generated_district, services

    snaps, frames, zone_pictures = _evidence()
    tmp, district, d, _ = generated_district("gridwatch-bench-capacity-")
    cams = [{"id": c.id, "edge_id": c.edge_id or ""} for c in d.cameras.values()]
    workers = sorted(p.id for p in d.people.values() if p.role == "worker" and p.post == "A")
    messages = _messages(cams, N, snaps, frames)
    sent = N // (UPDATES + 2) * (UPDATES + 2)
    with services(tmp, "cap_template") as (admin, broker):
        dsn = _new_db(admin, "cap_sample", "cap_template")
        with _Center(dsn, broker.port, district, 500, "bench-capacity") as c:
            sockets = c.call(_attach_screens(c.app.state.center.hub, workers))
            empty = _tables(dsn)
            while batch := list(islice(messages, BATCH)):
                c.call(c.app.state.ingest.handle_batch(batch))
                c.call(_settled(c.app, sockets))
            stored, dead = c.stats.stored, c.stats.dead_letters
            after_alerts = _tables(dsn)
            with psycopg.connect(dsn) as conn:
                ids = [r[0] for r in conn.execute(
                    "SELECT id FROM tickets WHERE state = 'dispatched' ORDER BY id")]
            c.call(_lifecycle(c.app, ids))
            c.call(_settled(c.app, sockets))
            c.call(_positions(c.app, workers[:20], 50))
        written = _tables(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM FULL ANALYZE")
        compact = _tables(dsn)
    shutil.rmtree(tmp, ignore_errors=True)  # the sample's database is a gigabyte
    tickets = compact["tickets"][0] - empty["tickets"][0]
    return {
        "alert_messages": sent, "stored": stored, "dead_letters": dead,
        "violations": sent // (UPDATES + 2), "tickets": tickets,
        "tickets_through_lifecycle": len(ids),
        "snapshot_bytes": [len(s) for s in snaps], "frame_bytes": [len(f[0]) for f in frames],
        "zone_picture_bytes": zone_pictures,
        "ingest": _delta(after_alerts, empty), "lifecycle": _delta(written, after_alerts),
        "written": _delta(written, empty), "compact": _delta(compact, empty),
    }


def model(m: dict[str, Any], a: Assumptions = Assumptions()) -> list[tuple[str, str, str]]:
    """(figure, value, how) rows for the doc's table."""
    rows: list[tuple[str, str, str]] = []

    def row(what: str, value: str, how: str) -> None:
        rows.append((what, value, how))

    def cost(key: str) -> float:
        return MEASURED[key][0]

    per_day_violations = a.cameras * a.violations_per_camera_day
    per_day_messages = per_day_violations * a.messages_per_violation
    per_day_tickets = per_day_violations * a.tickets_per_violation
    peak = per_day_messages * a.peak_hour_share / 3600
    storm = peak * a.storm_factor
    row("alert messages per day", f"{per_day_messages:,.0f}",
        f"{a.cameras:,} cameras x {a.violations_per_camera_day:g} violations x"
        f" {a.messages_per_violation} messages")
    row("alert messages/s, day average", f"{per_day_messages / 86400:,.0f}", "per day / 86,400")
    row("alert messages/s, busiest hour (normal)", f"{peak:,.0f}",
        f"{a.peak_hour_share:.0%} of the day in one hour")
    row("alert messages/s, storm", f"{storm:,.0f}", f"busiest hour x {a.storm_factor:g}")
    for label, rate in (("normal", peak), ("storm", storm)):
        us = cost("center_us_per_alert") if label == "normal" else cost(
            "center_us_per_alert_backlog")
        cores = rate * us / 1e6
        replicas = max(1, math.ceil(cores / a.replica_target_utilisation))
        row(f"center replica cores, {label}", f"{cores:.2f} ({replicas} replicas + 1 spare)",
            f"{rate:,.0f}/s x {us:g} µs; a replica is one event-loop core, run at"
            f" {a.replica_target_utilisation:.0%}")
        row(f"PostgreSQL CPU for ingest, {label}", f"{rate * cost('pg_us_per_alert') / 1e6:.2f}"
            " cores", f"x {cost('pg_us_per_alert'):g} µs")
    walls = peak * 2 * a.wall_screens * cost("ws_us_per_message_client") / 1e6
    row("wall pushes, normal", f"{peak * 2 * a.wall_screens:,.0f} messages/s, {walls:.2f} cores",
        f"{a.wall_screens} walls x 2 messages per alert x {cost('ws_us_per_message_client'):g}"
        " µs; in a storm walls coalesce (latest state per ticket), so this is the ceiling")
    per_alert = m["ingest"].get("notifications", {"rows": 0})["rows"] / m["alert_messages"]
    row("phone pushes/s, normal / storm", f"{peak * per_alert:,.0f} / {storm * per_alert:,.0f}",
        f"{per_alert:.2f} notification rows (one push each) per alert message, measured in the"
        " sample; their CPU is in the center's µs per alert")
    edges = a.cameras / a.cameras_per_edge
    heartbeats = edges / a.edge_heartbeat_s
    zone_pics = a.cameras / a.camera_frame_every_s
    zone_kb = sum(m["zone_picture_bytes"]) / len(m["zone_picture_bytes"]) / 1000
    snap_kb = sum(m["snapshot_bytes"]) / len(m["snapshot_bytes"]) / 1000
    frame_kb = sum(m["frame_bytes"]) / len(m["frame_bytes"]) / 1000
    in_storm = storm + heartbeats + zone_pics
    row("broker connections", f"{edges:,.0f} edges + center replicas",
        f"{a.cameras_per_edge} cameras per edge box")
    row("broker messages/s in, normal / storm",
        f"{peak + heartbeats + zone_pics:,.0f} / {in_storm:,.0f}",
        f"alerts + {heartbeats:,.0f} heartbeats + {zone_pics:,.0f} zone pictures (QoS 0);"
        " clip chunks below")
    here = cost("broker_msgs_per_s_here")
    row("broker nodes", f"Mosquitto: {math.ceil(in_storm / here)} by the floor measured here"
        " (it does not cluster: one per group of districts); EMQX cluster: 3 (availability)",
        f"storm {in_storm:,.0f} msgs/s in / {here:,.0f} (a measured floor: Mosquitto's"
        " limit on a core of its own was not measured); EMQX's rate per node is the"
        " vendor's, not measured here")
    row("PostgreSQL store stage headroom, storm", f"{storm / cost('store_alerts_per_s'):.0%}"
        " of one primary's measured insert rate", f"{storm:,.0f} / "
        f"{cost('store_alerts_per_s'):,.0f} alerts/s")
    row("broker bytes/s in, normal / storm",
        f"{(peak * (snap_kb * 1.37 + 1) + zone_pics * zone_kb) / 1000:,.1f} /"
        f" {(storm * (snap_kb * 1.37 + 1) + zone_pics * zone_kb) / 1000:,.1f} MB/s",
        f"snapshot {snap_kb:.0f} kB ({snap_kb * 1.37:.0f} kB in base64) per alert (measured),"
        " zone picture"
        f" {zone_kb:.0f} kB; kept frames and clips not included")
    clip_mb = [a.clip_seconds_per_violation * cost(k) / 8 for k in
               ("camera_mbit_s_low", "camera_mbit_s_high")]
    row("clip storage per day", f"{per_day_violations * clip_mb[0] / 1e6:,.0f}-"
        f"{per_day_violations * clip_mb[1] / 1e6:,.0f} TB",
        f"{a.clip_seconds_per_violation:g} s per violation x {cost('camera_mbit_s_low'):g}-"
        f"{cost('camera_mbit_s_high'):g} Mbit/s = {clip_mb[0]:.0f}-{clip_mb[1]:.0f} MB each;"
        f" x {a.clip_days} days kept = {per_day_violations * clip_mb[0] * a.clip_days / 1e9:,.1f}-"
        f"{per_day_violations * clip_mb[1] * a.clip_days / 1e9:,.1f} PB")
    row("clip chunks through the broker, day average",
        f"{per_day_violations * clip_mb[0] / 86400 * 8:,.0f}-"
        f"{per_day_violations * clip_mb[1] / 86400 * 8:,.0f} Mbit/s", "256 KiB per message")
    # Database: measured bytes per row (compact) x rows per day.
    compact = m["compact"]
    ingest, lifecycle = m["ingest"], m["lifecycle"]
    msgs, sample_tickets = m["alert_messages"], m["tickets"]

    def per_row(table: str) -> float:
        return float(compact[table]["bytes_per_row"]) if table in compact else 0.0

    def rows_of(part: dict[str, Any], table: str) -> float:
        return float(part[table]["rows"]) if table in part else 0.0

    daily = {
        "alerts": (per_day_messages, a.alert_days),
        "alert_keys": (per_day_messages, a.alert_key_days),
        "alert_snapshots": (per_day_messages, a.snapshot_days),
        "alert_frames": (per_day_violations, a.frame_days),
        "tickets": (per_day_tickets, None),
        "ticket_events": (per_day_tickets * (rows_of(ingest, "ticket_events")
                                             + rows_of(lifecycle, "ticket_events"))
                          / max(1, sample_tickets), None),
        "ticket_timers": (per_day_tickets * rows_of(compact, "ticket_timers")
                          / max(1, sample_tickets), None),
        "worker_positions": (a.workers_on_duty * a.duty_hours * 3600 / a.position_every_s,
                             a.position_days),
        "notifications": (per_day_messages * rows_of(ingest, "notifications") / msgs
                          + per_day_tickets * rows_of(lifecycle, "notifications")
                          / max(1, sample_tickets), None),
    }
    total_day = total_kept = 0.0
    for table, (rows_day, days) in daily.items():
        size = rows_day * per_row(table)
        kept = size * (days if days is not None else 365)
        total_day += size
        total_kept += kept
        row(f"db {table}", f"{rows_day:,.0f} rows/day, {size / 1e9:,.1f} GB/day",
            f"{per_row(table):,.0f} B/row measured; kept "
            + (f"{days} days: {kept / 1e12:,.2f} TB" if days is not None
               else f"forever: {kept / 1e12:,.2f} TB a year"))
    row("db total", f"{total_day / 1e9:,.1f} GB/day",
        f"{total_kept / 1e12:,.1f} TB at the default retention (a year of tickets)")
    snaps = daily["alert_snapshots"][0] * per_row("alert_snapshots") * a.snapshot_days
    frames = daily["alert_frames"][0] * per_row("alert_frames") * a.frame_days
    alerts_rows = daily["alerts"][0] * per_row("alerts") * a.alert_days
    row("db with TimescaleDB compression (assumed)",
        f"{(total_kept - alerts_rows + alerts_rows / a.timescale_compression_ratio) / 1e12:,.1f}"
        " TB", f"alerts rows / {a.timescale_compression_ratio:g} (vendor's typical ratio,"
        f" not measured); pictures ({(snaps + frames) / 1e12:,.1f} TB) do not compress")
    row("evidence pictures in the sample", f"snapshot {snap_kb:.0f} kB, kept frame"
        f" {frame_kb:.0f} kB", "encoded from the shared street clips as the edge does")
    return rows


def main() -> None:
    measured = measure()
    print(json.dumps({k: v for k, v in measured.items()
                      if k not in ("ingest", "lifecycle", "written")}, indent=1))
    print("\n| table | rows | bytes/row as written | bytes/row compact |\n|---|---:|---:|---:|")
    for table, c in sorted(measured["compact"].items()):
        w = measured["written"].get(table, {"bytes_per_row": float("nan")})
        print(f"| {table} | {c['rows']:,.0f} | {w['bytes_per_row']:,.0f} |"
              f" {c['bytes_per_row']:,.0f} |")
    print("\nAssumptions:", json.dumps(asdict(Assumptions())))
    print("\n| figure | value | how |\n|---|---:|---|")
    for what, value, how in model(measured):
        print(f"| {what} | {value} | {how} |")
